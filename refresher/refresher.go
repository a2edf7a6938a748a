// Package refresher is the leader's refresh loop: it keeps every configured
// credential fresh in etcd by calling WeChat under the write-ahead intent
// protocol, recovers from a previous leader's unfinished fetch, serves
// invalidation reports (compare-and-refresh) and keeps the daily budget.
package refresher

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/wxtoken/wxtoken/election"
	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// Credential kinds.
const (
	KindClassic = "classic"
	KindStable  = "stable"
	KindWeCom   = "wecom"
	KindJSAPI   = "jsapi"
	KindWXCard  = "wx_card"
)

// Cred is one credential the leader keeps fresh. Its LogValue omits the
// secret.
type Cred struct {
	Name   string // tokenstore.CredName(app, "token" | ticket type)
	App    string
	Kind   string // one of the Kind constants
	AppID  string // appid, or corpid for WeCom
	Secret string // never logged, never stored
	Budget int    // fetches per China-time day; 0 = unlimited
	// Token names the credential whose access token a ticket is fetched
	// with; empty for tokens.
	Token string
}

// LogValue implements slog.LogValuer without the secret.
func (c Cred) LogValue() slog.Value {
	return slog.GroupValue(slog.String("cred", c.Name), slog.String("kind", c.Kind), slog.String("appid", c.AppID))
}

// String implements fmt.Stringer without the secret.
func (c Cred) String() string { return c.Name + " (" + c.Kind + ")" }

// Fetcher calls WeChat; *fetcher.Client implements it.
type Fetcher interface {
	Classic(ctx context.Context, appID, secret string) (fetcher.Token, error)
	Stable(ctx context.Context, appID, secret string, force bool) (fetcher.Token, error)
	WeCom(ctx context.Context, corpID, secret string) (fetcher.Token, error)
	Ticket(ctx context.Context, accessToken string, typ fetcher.TicketType) (fetcher.Token, error)
}

var _ Fetcher = (*fetcher.Client)(nil)

// Defaults for Config.
const (
	DefaultBefore       = 8 * time.Minute
	DefaultJitter       = time.Minute
	DefaultFetchTimeout = 30 * time.Second
	DefaultWindowMargin = 5 * time.Second
	DefaultConcurrency  = 8
	DefaultHoldoff      = 10 * time.Minute
	DefaultOverlap      = 5 * time.Minute
	// ForceLimit is WeChat's daily limit of forced stable-token refreshes.
	ForceLimit = 20
)

// Config configures a Refresher.
type Config struct {
	Store   *tokenstore.Store
	Cache   *tokenstore.Cache // the replica's cache: tickets read their token from it
	Fetcher Fetcher
	Creds   []Cred
	Node    string
	// Before is how long before expiry a token is refreshed; Jitter adds up
	// to that much more, fixed per credential.
	Before, Jitter time.Duration
	// FetchTimeout bounds one fetch, retries included. A successor waits
	// FetchTimeout + WindowMargin after seeing an unfinished intent.
	FetchTimeout, WindowMargin time.Duration
	// Overlap is how long WeChat keeps an old token alive after a new
	// fetch (classic) or the stable token's rotation window.
	Overlap time.Duration
	// Concurrency bounds fetches in flight across credentials.
	Concurrency int
	// Holdoff is how long a leader refused by WeChat for its host stays out
	// of the election.
	Holdoff time.Duration
	// CheckToken, if set, asks WeChat whether a reported token still works
	// (getcallbackip). A report of a live token is rejected instead of
	// refreshing it, so that a caller's mistake kills no valid token.
	CheckToken func(ctx context.Context, c Cred, token string) (alive bool, err error)
	Metrics    *Metrics
	Logger     *slog.Logger
	Now        func() time.Time
	// SkipIntent disables the write-ahead intent and fencing. It exists
	// only so that the fault suite can show its checker catching the bug.
	SkipIntent bool
}

// Refresher runs the leader's loop for one term at a time (Lead). It is
// safe to call Lead again for a later term after the previous returned.
type Refresher struct {
	cfg    Config
	log    *slog.Logger
	byName map[string]Cred
	sem    chan struct{}

	mu      sync.Mutex
	reports map[string]chan uint64 // per credential, during a term
}

// New validates cfg and returns a Refresher.
func New(cfg Config) (*Refresher, error) {
	if cfg.Store == nil || cfg.Cache == nil || cfg.Fetcher == nil || cfg.Node == "" {
		return nil, errors.New("refresher: Store, Cache, Fetcher and Node are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.Before, DefaultBefore)
	def(&cfg.FetchTimeout, DefaultFetchTimeout)
	def(&cfg.WindowMargin, DefaultWindowMargin)
	def(&cfg.Holdoff, DefaultHoldoff)
	def(&cfg.Overlap, DefaultOverlap)
	if cfg.Jitter < 0 || cfg.Jitter >= cfg.Before {
		return nil, fmt.Errorf("refresher: Jitter %v must be in [0, Before %v)", cfg.Jitter, cfg.Before)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	r := &Refresher{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "refresher", "node", cfg.Node),
		byName: map[string]Cred{},
		sem:    make(chan struct{}, cfg.Concurrency),
	}
	for _, c := range cfg.Creds {
		if _, dup := r.byName[c.Name]; dup {
			return nil, fmt.Errorf("refresher: duplicate credential %q", c.Name)
		}
		switch c.Kind {
		case KindClassic, KindStable, KindWeCom:
		case KindJSAPI, KindWXCard:
			if c.Token == "" {
				return nil, fmt.Errorf("refresher: ticket %q names no token", c.Name)
			}
		default:
			return nil, fmt.Errorf("refresher: %q: unknown kind %q", c.Name, c.Kind)
		}
		r.byName[c.Name] = c
	}
	return r, nil
}

// Metrics returns the refresher's metrics.
func (r *Refresher) Metrics() *Metrics { return r.cfg.Metrics }

// Lead keeps every credential fresh while ctx lasts; it is the function
// election.Run calls for each term. It returns nil when ctx ends, or an
// election.HoldoffError when WeChat refuses this host.
func (r *Refresher) Lead(ctx context.Context, g *election.Guard) error {
	r.cfg.Metrics.setLeader(true)
	defer r.cfg.Metrics.setLeader(false)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	chans := make(map[string]chan uint64, len(r.byName))
	for name := range r.byName {
		chans[name] = make(chan uint64, 1)
	}
	r.mu.Lock()
	r.reports = chans
	r.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.watchReports(ctx, g) }()
	for _, c := range r.cfg.Creds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.loop(ctx, g, c, chans[c.Name]); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		var ho *election.HoldoffError
		if errors.As(err, &ho) {
			return err
		}
	}
	return nil
}

// loop is one credential's life during a term: one step at a time, so a
// credential has at most one fetch in flight on this leader.
func (r *Refresher) loop(ctx context.Context, g *election.Guard, c Cred, reports <-chan uint64) error {
	t := &term{}
	trig := trigger{}
	for {
		next, err := r.step(ctx, g, c, t, trig)
		if err != nil {
			return err
		}
		timer := time.NewTimer(max(next.Sub(r.cfg.Now()), 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case seq := <-reports:
			timer.Stop()
			trig = trigger{report: true, seq: seq}
		case <-timer.C:
			trig = trigger{}
		}
	}
}

// jitter is the credential's fixed share of Jitter, so every leader plans
// the same refresh time for it.
func (r *Refresher) jitter(name string) time.Duration {
	if r.cfg.Jitter <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	return time.Duration(h.Sum64() % uint64(r.cfg.Jitter))
}

// refreshAt plans the refresh of a token that expires at exp.
func (r *Refresher) refreshAt(c Cred, fetched, exp time.Time) time.Time {
	if c.Kind == KindStable {
		// Normal mode rotates only inside the last Overlap.
		return exp.Add(-r.cfg.Overlap/2 - r.jitter(c.Name)%(r.cfg.Overlap/4+1))
	}
	at := exp.Add(-r.cfg.Before - r.jitter(c.Name))
	if lifetime := exp.Sub(fetched); at.Before(fetched.Add(lifetime / 2)) {
		// Short-lived tokens: never plan more than two fetches a lifetime.
		at = fetched.Add(lifetime / 2)
	}
	return at
}

// watchReports relays invalidation reports to the credentials' loops.
func (r *Refresher) watchReports(ctx context.Context, g *election.Guard) {
	r.cfg.Store.WatchReports(ctx, func(cred string, seq uint64) {
		r.mu.Lock()
		ch := r.reports[cred]
		r.mu.Unlock()
		if ch == nil {
			return
		}
		select {
		case ch <- seq:
		default: // a report is already pending; the step re-reads etcd
		}
	})
}
