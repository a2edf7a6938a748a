package wechattest

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/wxtoken/wxtoken/wxcrypt"
)

// Defaults of a Platform's zero fields.
const (
	DefaultTicketEvery = 10 * time.Minute // WeChat pushes a ticket every 10 minutes
	DefaultTicketTTL   = 12 * time.Hour   // a ticket is valid 12 hours
	DefaultPreAuthTTL  = 1800 * time.Second
	DefaultCodeTTL     = time.Hour
)

// Platform is an Open Platform third-party platform (第三方平台) the
// simulator knows, as on developers.weixin.qq.com/doc/oplatform:
//
//   - every TicketEvery (real time) RunPushes mints a
//     component_verify_ticket, valid TicketTTL (simulator clock), and
//     POSTs it encrypted and signed to PushURL, as WeChat does (query
//     timestamp, nonce, encrypt_type=aes, msg_signature, signature; body
//     <xml><AppId/><Encrypt/></xml>); an unknown ticket gets 61006 from
//     api_component_token, an expired one 61005; every ticket stays valid
//     for its whole TTL;
//   - component tokens rotate like classic tokens: the previous one lives
//     Config.Overlap after the next is minted;
//   - Authorize creates or updates an authorizer and pushes "authorized"
//     (or "updateauthorized") with a single-use AuthorizationCode that
//     expires after CodeTTL; api_query_auth exchanges it once (a second
//     use or an expired code answers 61010, an unknown one 61009), issues
//     a new refresh token (the authorizer's earlier ones die: "用户重新授权
//     后，之前的刷新令牌会失效") and an authorizer token;
//   - api_authorizer_token rotates the refresh token every RotateRefresh-th
//     refresh (0: never) and answers 61023 for any refresh token but the
//     newest (and the one before it, if KeepPreviousRefresh); authorizer
//     tokens rotate like classic tokens;
//   - api_get_authorizer_list pages authorized accounts (count <= 500,
//     40170 beyond), each with its newest refresh token ("" before its
//     first code exchange);
//   - Unauthorize kills the authorizer's tokens at once and pushes
//     "unauthorized".
type Platform struct {
	AppID          string // component appid
	Secret         string // component appsecret
	Token          string // message verification token
	EncodingAESKey string // 43 characters
	// PushURL is the authorization-event URL; "" makes no pushes (tickets
	// are still minted by PushTicket and the schedule).
	PushURL string
	// TicketEvery is the push interval (real time); negative: no
	// scheduled pushes, only PushTicket.
	TicketEvery time.Duration
	// TicketTTL, PreAuthTTL and CodeTTL are lifetimes on the simulator
	// clock of tickets, pre-auth codes and authorization codes.
	TicketTTL  time.Duration
	PreAuthTTL time.Duration
	CodeTTL    time.Duration
	// RotateRefresh makes every n-th successful api_authorizer_token call
	// of an authorizer return a new refresh token; 0 never rotates.
	RotateRefresh int
	// KeepPreviousRefresh keeps the refresh token before the newest valid
	// after a rotation. Off (the default), only the newest works: a caller
	// that loses an answer must recover through api_get_authorizer_list.
	KeepPreviousRefresh bool
}

// PushFault breaks a platform's pushes.
type PushFault struct {
	// Stopped suppresses scheduled ticket pushes (and their tickets) until
	// api_start_push_ticket or StartPushes; PushTicket still pushes.
	Stopped bool `json:"stopped,omitempty"`
	// WrongKey encrypts pushes with a key the platform does not have.
	WrongKey bool `json:"wrong_key,omitempty"`
	// BadSignature sends a msg_signature that does not match.
	BadSignature bool `json:"bad_signature,omitempty"`
}

// platform is a Platform's state, guarded by Sim.mu.
type platform struct {
	cfg      Platform
	crypter  *wxcrypt.Crypter
	fault    PushFault
	nextPush time.Time            // real time of the next scheduled push
	tickets  map[string]time.Time // ticket -> created (simulator clock)
	preAuth  map[string]time.Time // pre-auth code -> expiry
	codes    map[string]*authCode
	auths    map[string]*authorizer
	order    []string // authorizer appids, first authorization first
}

// authCode is an authorization code issued by Authorize.
type authCode struct {
	authorizer string
	expires    time.Time
	used       bool
}

// authorizer is an account authorized to a platform.
type authorizer struct {
	appID      string
	authorized bool
	authTime   time.Time
	funcInfo   []int
	refresh    string // newest refresh token, "" before the first exchange
	prev       string // the one before, valid only with KeepPreviousRefresh
	refreshes  int    // successful api_authorizer_token calls
}

// AddPlatform registers a platform, or replaces its configuration (its
// tickets, tokens and authorizers stay). It checks the configuration and
// schedules a first push at once.
func (s *Sim) AddPlatform(p Platform) error {
	switch {
	case p.AppID == "" || p.Secret == "" || p.Token == "":
		return errors.New("platform: appid, secret and token are required")
	case p.RotateRefresh < 0:
		return errors.New("platform: RotateRefresh is negative")
	}
	if p.PushURL != "" {
		if u, err := url.Parse(p.PushURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("platform: PushURL is not an absolute http(s) URL")
		}
	}
	c, err := wxcrypt.New(wxcrypt.Config{Token: p.Token, AppID: p.AppID, Key: p.EncodingAESKey})
	if err != nil {
		return fmt.Errorf("platform: %w", err)
	}
	if p.TicketEvery == 0 {
		p.TicketEvery = DefaultTicketEvery
	}
	if p.TicketTTL <= 0 {
		p.TicketTTL = DefaultTicketTTL
	}
	if p.PreAuthTTL <= 0 {
		p.PreAuthTTL = DefaultPreAuthTTL
	}
	if p.CodeTTL <= 0 {
		p.CodeTTL = DefaultCodeTTL
	}
	s.mu.Lock()
	pl := s.platforms[p.AppID]
	if pl == nil {
		pl = &platform{
			tickets: map[string]time.Time{}, preAuth: map[string]time.Time{},
			codes: map[string]*authCode{}, auths: map[string]*authorizer{},
		}
		s.platforms[p.AppID] = pl
	}
	pl.cfg, pl.crypter, pl.nextPush = p, c, time.Time{}
	s.mu.Unlock()
	s.wakePushes()
	return nil
}

// SetPushFault replaces the push fault of a platform.
func (s *Sim) SetPushFault(componentAppID string, f PushFault) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	pl := s.platforms[componentAppID]
	if pl == nil {
		return fmt.Errorf("no platform %q", componentAppID)
	}
	restart := pl.fault.Stopped && !f.Stopped
	pl.fault = f
	if restart {
		pl.nextPush = time.Time{}
		s.wakePushes()
	}
	return nil
}

// SetPlatformKey changes a platform's EncodingAESKey, as its owner does in
// the console: pushes from now on use the new key.
func (s *Sim) SetPlatformKey(componentAppID, encodingAESKey string) error {
	s.mu.Lock()
	pl := s.platforms[componentAppID]
	s.mu.Unlock()
	if pl == nil {
		return fmt.Errorf("no platform %q", componentAppID)
	}
	p := pl.cfg
	p.EncodingAESKey = encodingAESKey
	return s.AddPlatform(p)
}

// randomValueLocked returns prefix + 43 random URL-safe characters.
func (s *Sim) randomValueLocked(prefix string) string {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(s.rng.Uint32())
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// randomKeyLocked returns a random EncodingAESKey.
func (s *Sim) randomKeyLocked() string {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(s.rng.Uint32())
	}
	return base64.StdEncoding.EncodeToString(b)[:wxcrypt.EncodingKeyLen]
}

// credKey names a credential for the in-flight counters.
type credKey struct{ kind, id string }

// enter counts a call in flight for (kind, id) and returns its exit.
func (s *Sim) enter(kind, id string) func() {
	k := credKey{kind, id}
	s.mu.Lock()
	s.inflight[k]++
	s.maxInflight[k] = max(s.maxInflight[k], s.inflight[k])
	s.inflightAll++
	s.maxAll = max(s.maxAll, s.inflightAll)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.inflight[k]--
		s.inflightAll--
		s.mu.Unlock()
	}
}

// MaxInFlight returns the most Open Platform calls of kind for id that
// were in progress at the same time: id is the component appid for
// KindComponent, KindPreAuth, KindAuthorizerList and KindStartPush, the
// authorizer appid for KindAuthorizer, and the authorization code for
// KindQueryAuth.
func (s *Sim) MaxInFlight(kind, id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInflight[credKey{kind, id}]
}

// MaxInFlightAll returns the most Open Platform calls, of every kind and
// credential, that were in progress at the same time since New or the
// last ResetMaxInFlightAll: what a client's concurrency bound allows.
func (s *Sim) MaxInFlightAll() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxAll
}

// ResetMaxInFlightAll starts MaxInFlightAll again from the calls in
// progress now, so that a benchmark can count one phase at a time.
func (s *Sim) ResetMaxInFlightAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxAll = s.inflightAll
}

// Exchanges counts successful api_query_auth calls that presented code.
func (s *Sim) Exchanges(code string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, f := range s.ledger {
		if f.Kind == KindQueryAuth && f.Code == code && f.Errcode == 0 {
			n++
		}
	}
	return n
}

// RefreshToken returns the newest refresh token of an authorizer ("" if
// none), the value api_get_authorizer_list would give.
func (s *Sim) RefreshToken(componentAppID, authorizerAppID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pl := s.platforms[componentAppID]; pl != nil {
		if a := pl.auths[authorizerAppID]; a != nil {
			return a.refresh
		}
	}
	return ""
}

// Authorized reports whether an authorizer is authorized to the platform
// now (Authorize or SeedAuthorizer, and no Unauthorize since).
func (s *Sim) Authorized(componentAppID, authorizerAppID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pl := s.platforms[componentAppID]; pl != nil {
		if a := pl.auths[authorizerAppID]; a != nil {
			return a.authorized
		}
	}
	return false
}
