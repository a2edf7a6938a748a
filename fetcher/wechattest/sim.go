// Package wechattest provides a faithful simulator of the WeChat credential
// APIs (classic and stable access tokens, WeCom tokens, JS-SDK and card
// tickets, and the Open Platform's component and authorizer tokens with
// their encrypted pushes: see Platform) for tests, demos and a standalone
// server.
//
// A Sim is an http.Handler that serves the paths of both api.weixin.qq.com
// and qyapi.weixin.qq.com. It keeps a ledger of every token and ticket fetch,
// answers whether a token was valid at any instant, enforces daily quotas and
// an IP whitelist, and injects faults on request. NewServer runs a Sim on a
// loopback port, the way httptest.NewServer does.
package wechattest

import (
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultTokenTTL         = 7200 * time.Second
	DefaultOverlap          = 5 * time.Minute
	DefaultDailyQuota       = 2000
	DefaultStableDailyQuota = 500000
	DefaultForceLimit       = 20
	DefaultForceInterval    = 30 * time.Second
)

// Kinds of credential, as used in Fetch.Kind and Current.
const (
	KindClassic = "classic" // /cgi-bin/token
	KindStable  = "stable"  // /cgi-bin/stable_token
	KindWeCom   = "wecom"   // /cgi-bin/gettoken
	KindTicket  = "ticket"  // /cgi-bin/ticket/getticket

	// Open Platform (see Platform).
	KindComponent      = "component"         // api_component_token
	KindStartPush      = "start_push_ticket" // api_start_push_ticket
	KindPreAuth        = "preauth"           // api_create_preauthcode
	KindQueryAuth      = "query_auth"        // api_query_auth
	KindAuthorizer     = "authorizer"        // api_authorizer_token
	KindAuthorizerList = "authorizer_list"   // api_get_authorizer_list
)

// CodeNoAnswer is the Fetch.Errcode of a call that got no WeChat answer:
// an injected HTTP 5xx, broken JSON or timeout.
const CodeNoAnswer = -2

// chinaTime is Asia/Shanghai without tzdata: daily quotas reset at its
// midnight.
var chinaTime = time.FixedZone("CST", 8*3600)

// Config holds the simulator's timing and limits. Zero fields take the
// Default... values; Now defaults to time.Now. An Overlap not shorter than
// TokenTTL makes every normal stable call rotate the token.
type Config struct {
	// TokenTTL is the lifetime of every token and ticket issued. It is
	// reported as expires_in in whole seconds, rounded up, at least 1.
	TokenTTL time.Duration
	// Overlap is how long the previous classic token (or ticket) stays
	// valid after the next fetch, and the window before expiry in which a
	// normal stable call rotates the stable token.
	Overlap time.Duration
	// DailyQuota limits /cgi-bin/token calls per appid per China day
	// (UTC+8); the same number limits gettoken per corpid and getticket
	// per appid.
	DailyQuota int
	// StableDailyQuota limits /cgi-bin/stable_token calls per appid per day.
	StableDailyQuota int
	// ForceLimit limits stable force_refresh calls per appid per day.
	ForceLimit int
	// ForceInterval: a forced call less than this after the previous forced
	// refresh returns the current token without minting.
	ForceInterval time.Duration
	// AllowIPs is the IP whitelist for token fetches (addresses or CIDR
	// prefixes). Empty allows every caller; otherwise the caller's IP, taken
	// from r.RemoteAddr, must match or the answer is 40164 (60020 on WeCom).
	AllowIPs []string
	// Now is the simulator's clock; see FakeClock.
	Now func() time.Time
	// Seed makes tokens reproducible; 0 seeds from the current time.
	Seed int64
	// PushClient makes the Open Platform's pushes to Platform.PushURL;
	// default: a client with a 5 s timeout that follows no redirect.
	PushClient *http.Client
}

// Sim is the WeChat simulator. It is an http.Handler, and all its methods
// are safe for concurrent use. Create it with New.
type Sim struct {
	cfg     Config
	mux     *http.ServeMux
	release chan struct{} // closed by Server.Close: held requests end
	relOnce sync.Once

	mu         sync.Mutex
	rng        *rand.Rand
	apps       map[string]string          // appid -> secret
	corps      map[string]map[string]bool // corpid -> secrets (one per agent)
	allowAll   bool
	allow      []netip.Prefix
	tokens     map[string]*token
	series     map[seriesKey]*series
	newest     map[seriesKey]string
	quota      map[quotaKey]int
	lastForced map[string]time.Time // appid -> last forced stable refresh
	ledger     []Fetch
	fault      Fault
	faultOn    bool
	faultGen   chan struct{} // closed by ClearFault: held calls end
	refusals   map[string]refusal
	useHold    UseLatency
	useGen     chan struct{} // closed by ClearUseLatency: held uses end
	usesOK     int
	usesDead   int

	platforms   map[string]*platform // component appid -> platform
	pushes      []Push
	pushWake    chan struct{} // RunPushes re-plans when it receives
	inflight    map[credKey]int
	maxInflight map[credKey]int
	inflightAll int // Open Platform calls in progress, of every kind and credential
	maxAll      int // the most of them at once since New or ResetMaxInFlightAll
}

// New returns a simulator with no apps; add them with AddApp and AddCorp.
func New(cfg Config) *Sim {
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.Overlap <= 0 {
		cfg.Overlap = DefaultOverlap
	}
	if cfg.DailyQuota <= 0 {
		cfg.DailyQuota = DefaultDailyQuota
	}
	if cfg.StableDailyQuota <= 0 {
		cfg.StableDailyQuota = DefaultStableDailyQuota
	}
	if cfg.ForceLimit <= 0 {
		cfg.ForceLimit = DefaultForceLimit
	}
	if cfg.ForceInterval <= 0 {
		cfg.ForceInterval = DefaultForceInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PushClient == nil {
		cfg.PushClient = &http.Client{
			Timeout:       5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	s := &Sim{
		cfg:        cfg,
		release:    make(chan struct{}),
		rng:        rand.New(rand.NewChaCha8(key)),
		apps:       map[string]string{},
		corps:      map[string]map[string]bool{},
		tokens:     map[string]*token{},
		series:     map[seriesKey]*series{},
		newest:     map[seriesKey]string{},
		quota:      map[quotaKey]int{},
		lastForced: map[string]time.Time{},
		faultGen:   make(chan struct{}),
		refusals:   map[string]refusal{},
		useGen:     make(chan struct{}),

		platforms:   map[string]*platform{},
		pushWake:    make(chan struct{}, 1),
		inflight:    map[credKey]int{},
		maxInflight: map[credKey]int{},
	}
	s.setAllowLocked(cfg.AllowIPs)
	s.cfg.AllowIPs = nil // the live list is s.allow
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cgi-bin/token", s.handleClassic)
	mux.HandleFunc("POST /cgi-bin/stable_token", s.handleStable)
	mux.HandleFunc("GET /cgi-bin/gettoken", s.handleWeCom)
	mux.HandleFunc("GET /cgi-bin/ticket/getticket", s.handleTicket)
	mux.HandleFunc("GET /cgi-bin/getcallbackip", s.handleCallbackIP)
	s.routePlatform(mux)
	s.routeAdmin(mux)
	s.mux = mux
	return s
}

// ServeHTTP answers WeChat API and /_sim/ admin requests.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Handler returns s, for symmetry with servers that take a handler.
func (s *Sim) Handler() http.Handler { return s }

// AddApp registers an Official Account or Mini Program app, or replaces its
// secret (as a secret reset would). The app can fetch classic and stable
// tokens and tickets.
func (s *Sim) AddApp(appID, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[appID] = secret
}

// AddCorp registers a WeCom corp secret. Each call adds one application
// secret; every (corpid, secret) pair has its own token, as on WeCom.
func (s *Sim) AddCorp(corpID, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.corps[corpID] == nil {
		s.corps[corpID] = map[string]bool{}
	}
	s.corps[corpID][secret] = true
}

// SetAllowIPs replaces the IP whitelist (see Config.AllowIPs). Entries that
// are neither an IP nor a CIDR prefix match nothing.
func (s *Sim) SetAllowIPs(ips []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setAllowLocked(ips)
}

func (s *Sim) setAllowLocked(ips []string) {
	s.allowAll = len(ips) == 0
	s.allow = s.allow[:0]
	for _, ip := range ips {
		if p, err := parseAllow(ip); err == nil {
			s.allow = append(s.allow, p)
		}
	}
}

func parseAllow(ip string) (netip.Prefix, error) {
	if strings.Contains(ip, "/") {
		p, err := netip.ParsePrefix(ip)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (s *Sim) allowedLocked(caller string) bool {
	if s.allowAll {
		return true
	}
	a, err := netip.ParseAddr(caller)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range s.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (s *Sim) now() time.Time { return s.cfg.Now() }

// callerIP is the host part of r.RemoteAddr.
func callerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().String()
	}
	return host
}

type quotaKey struct {
	name string // "classic", "stable", "force", "wecom", "ticket"
	id   string
	day  string
}

// takeQuotaLocked counts one call against a daily limit and reports whether
// it is still within it.
func (s *Sim) takeQuotaLocked(name, id string, limit int, now time.Time) bool {
	k := quotaKey{name, id, now.In(chinaTime).Format(time.DateOnly)}
	s.quota[k]++
	return s.quota[k] <= limit
}
