// Package refresher is the leader's refresh loop: it keeps every configured
// credential fresh in etcd by calling WeChat under the write-ahead intent
// protocol, recovers from a previous leader's unfinished fetch, serves
// invalidation reports (compare-and-refresh), keeps the daily budget, and
// hands a credential that WeChat refuses from the leader's host to another
// candidate (see Delegate).
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
	"github.com/wxtoken/wxtoken/tokenstore"
)

// Defaults for Config.
const (
	DefaultBefore       = 8 * time.Minute
	DefaultJitter       = time.Minute
	DefaultFetchTimeout = 30 * time.Second
	DefaultWindowMargin = 5 * time.Second
	DefaultConcurrency  = 8
	DefaultHoldoff      = 10 * time.Minute
	DefaultOverlap      = 5 * time.Minute
	// DefaultReportInterval is the least time between two refreshes of one
	// credential triggered by reports that WeChat's check could not confirm.
	DefaultReportInterval = time.Minute
	// DefaultOwnerCheck is how often the leader looks at a delegated
	// credential's owner (alive, not refused).
	DefaultOwnerCheck = 2 * time.Second
	// DefaultHold is how long a fetch that follows an unfinished one
	// holds its call after writing its intent: far longer than a watch
	// event takes to reach a replica that follows etcd (milliseconds),
	// and short enough that the swap, hold and call, ends inside a read's
	// wait for the new token (read_wait, 2 s by default).
	DefaultHold = time.Second
	// ForceLimit is WeChat's daily limit of forced stable-token refreshes.
	ForceLimit = 20
)

// Config configures a Refresher.
type Config struct {
	Store   *tokenstore.Store
	Cache   *tokenstore.Cache // the replica's cache: tickets read their token from it
	Fetcher Fetcher
	Creds   []Cred
	// Platforms are the Open Platform third-party platforms whose
	// component token and authorizers the leader keeps; Platform makes
	// their calls (required with Platforms).
	Platforms []Platform
	Platform  PlatformFetcher
	Node      string
	// Before is how long before expiry a token is refreshed; Jitter adds up
	// to that much more, fixed per credential.
	Before, Jitter time.Duration
	// FetchTimeout bounds one fetch. A call that ends without a complete
	// answer keeps its intent, and the next fetch (ours or a successor's)
	// waits FetchTimeout + WindowMargin from when it was given up or seen.
	FetchTimeout, WindowMargin time.Duration
	// Overlap is how long WeChat keeps an old token alive after a new
	// fetch (classic) or the stable token's rotation window.
	Overlap time.Duration
	// Hold is how long a fetch that follows an unfinished call (a dead
	// leader's, or ours given up) waits between writing its intent and
	// calling WeChat. Its mint makes the published token two tokens old,
	// which WeChat kills at once: the replicas must see the intent, and
	// stop handing the token out, before the call (Intent.CallAt).
	Hold time.Duration
	// Concurrency bounds fetches in flight across credentials.
	Concurrency int
	// Holdoff is how long WeChat's refusal of one credential from one node
	// (40164, 60020, 8950x) keeps that node from fetching that credential.
	Holdoff time.Duration
	// ReportInterval is the least time between two report-triggered
	// refreshes of one credential whose death WeChat's check could not
	// confirm (the check itself failed): no caller can drain the budget,
	// and a dead token is not served much longer than this.
	ReportInterval time.Duration
	// OwnerCheck is how often the leader looks at a delegated credential's
	// owner.
	OwnerCheck time.Duration
	// CheckToken, if set, asks WeChat whether a reported token still works
	// (getcallbackip). A report of a live token is rejected instead of
	// refreshing it, so that a caller's mistake kills no valid token.
	CheckToken func(ctx context.Context, c Cred, token string) (alive bool, err error)
	// OnTermStarted, if set, is called once a term has read the state of
	// every credential in bulk and taken a first step of each: the bulk
	// read is garbage from then on.
	OnTermStarted func()
	Metrics       *Metrics
	Logger        *slog.Logger
	Now           func() time.Time
	// Unsafe switches protections off, only so that the fault suite can
	// show each one matters. The release binary cannot set it.
	Unsafe Unsafe
}

// Unsafe names protections that the fault suite switches off to show that
// its checker catches the bug each one prevents. Never set in production.
type Unsafe struct {
	SkipIntent    bool // no write-ahead intent, no fence
	NoIsolation   bool // a refusal steps the whole leader down (election holdoff)
	NoDrain       bool // a stop cancels the WeChat calls in flight
	NoForeign     bool // no foreign-fetch detection
	NoReportLimit bool // an unconfirmed report refreshes at once, every time
	NoShortScale  bool // no scaling of the refresh point for short tokens
	// NoCodeClaim leaves an authorization code stored when its exchange
	// begins, and takes it as exchanged once a record newer than it is
	// published: a successor of a leader that died mid-exchange presents
	// it again.
	NoCodeClaim bool
	// NoHold calls WeChat as soon as the intent of a fetch that follows an
	// unfinished one is written: replicas that have not seen it yet still
	// hand out the token its mint kills.
	NoHold bool
}

// Refresher runs the leader's loop for one term at a time (Lead), and a
// candidate's delegated credentials (Delegate). It is safe to call Lead
// again for a later term after the previous returned.
type Refresher struct {
	cfg    Config
	log    *slog.Logger
	byName map[string]*Cred // into cfg.Creds
	plat   platforms
	sem    chan struct{}

	mu     sync.Mutex
	scheds map[*sched]struct{} // the running schedulers, which reports are relayed to
	warned map[string]bool     // credentials whose short lifetime was logged
	// watchers counts the callers of watchReports; stopWatch ends the
	// shared watch.
	watchers  int
	stopWatch func()
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
	def(&cfg.ReportInterval, DefaultReportInterval)
	def(&cfg.OwnerCheck, DefaultOwnerCheck)
	def(&cfg.Hold, DefaultHold)
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
	if len(cfg.Platforms) > 0 && cfg.Platform == nil {
		return nil, errors.New("refresher: Platforms need a PlatformFetcher")
	}
	cfg.Creds = append(append([]Cred(nil), cfg.Creds...), platformCreds(cfg.Platforms)...)
	r := &Refresher{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "refresher", "node", cfg.Node),
		byName: make(map[string]*Cred, len(cfg.Creds)),
		sem:    make(chan struct{}, cfg.Concurrency),
		scheds: map[*sched]struct{}{},
		warned: map[string]bool{},
		plat:   platforms{byName: map[string]Platform{}, creds: map[string]*Cred{}, kicked: map[string]time.Time{}},
	}
	for _, p := range cfg.Platforms {
		r.plat.byName[p.Name] = p
	}
	for i := range r.cfg.Creds {
		c := &r.cfg.Creds[i]
		if _, dup := r.byName[c.Name]; dup {
			return nil, fmt.Errorf("refresher: duplicate credential %q", c.Name)
		}
		switch c.Kind {
		case KindClassic, KindStable, KindWeCom, KindComponent:
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

// Guard fences one worker's writes and tells whether it may start a
// WeChat call now. *election.Guard is the leader's; a delegate's is built
// from its owner assignment and its own presence lease.
type Guard interface {
	tokenstore.Fence
	Held() bool
}

var _ Guard = (*election.Guard)(nil)

// worker is who runs a credential's loop: the leader of a term, or a
// delegate under one owner assignment.
type worker struct {
	g        Guard
	leader   *election.Guard // the leader's term; nil for a delegate
	ownerRev int64           // a delegate's owner revision
}

// Lead keeps every credential fresh while ctx lasts; it is the function
// election.Run calls for each term. When ctx ends it starts no new WeChat
// call, lets the calls in flight finish (each bounded by FetchTimeout) and
// publishes what they minted before it returns, so that the term's
// resignation never orphans a token. A refusal by WeChat is a fact about
// one credential on this host: that credential is handed to another
// candidate and the term goes on. Lead returns nil, or, only with
// Unsafe.NoIsolation, an election.HoldoffError on a refusal.
//
// One scheduler steps every credential (see sched): the term starts from
// a few range reads of the whole state (LoadAll, PendingReports), not one
// read per credential.
func (r *Refresher) Lead(ctx context.Context, g *election.Guard) error {
	r.cfg.Metrics.setLeader(true)
	defer r.cfg.Metrics.setLeader(false)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	w := worker{g: g, leader: g}
	s := newSched(r, ctx, func(err error) { cancel(err) })
	s.primed = r.cfg.OnTermStarted
	defer r.register(s)()
	var wg sync.WaitGroup
	wg.Go(func() { r.watchReports(ctx) })

	now := r.cfg.Now()
	day := tokenstore.Day(now)
	lctx, lcancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
	snaps, _, err := r.cfg.Store.LoadAll(lctx, day)
	lcancel()
	var partial *tokenstore.LoadAllError
	switch {
	case errors.As(err, &partial):
		// Those credentials' keys did not decode: they read alone, and
		// say why, in their first step.
	case err != nil:
		r.log.Warn("load every credential at the start of the term: reading them one by one instead", "err", err)
		snaps = nil
	}
	for i := range r.cfg.Creds {
		c := &r.cfg.Creds[i]
		e := &entry{c: c, w: w, at: now, t: term{scanReports: snaps == nil}}
		if snaps != nil && (partial == nil || partial.Failed[c.Name] == nil) {
			snap, ok := snaps[c.Name]
			if !ok {
				snap = tokenstore.Snapshot{Cred: c.Name, Day: day}
			}
			e.snap = &snap
		}
		s.add(e)
	}
	if len(r.plat.byName) > 0 {
		pctx, pcancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
		var authSnaps map[string]tokenstore.Snapshot
		if partial == nil {
			authSnaps = snaps // (with a partial read, authorizers read alone)
		}
		rev, err := r.startPlatforms(pctx, s, w, authSnaps)
		pcancel()
		if err != nil {
			r.log.Warn("list the platforms' authorizers", "err", err)
		}
		wg.Go(func() { r.watchPlatforms(ctx, s, w, rev+1) })
	}
	if snaps != nil {
		// Reports written while no step listened; the watch relays the
		// ones written from now on to the entries added above.
		pctx, pcancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
		reports, _, err := r.cfg.Store.ReportsAll(pctx)
		pcancel()
		if err != nil {
			r.log.Warn("list pending reports", "err", err)
			s.scanAll()
		}
		for _, rep := range reports {
			s.relay(rep.Cred, rep.Seq)
		}
	}
	s.run()
	wg.Wait()
	var ho *election.HoldoffError
	if err := context.Cause(ctx); errors.As(err, &ho) {
		return err
	}
	return nil
}

// errNotOwner ends a delegate's loop: the credential was given to another
// node or taken back.
var errNotOwner = errors.New("refresher: no longer the credential's owner")

// refreshAt plans the refresh of a token that expires at exp.
func (r *Refresher) refreshAt(c Cred, fetched, exp time.Time) time.Time {
	var at time.Time
	if c.Kind == KindStable {
		// Normal mode rotates only inside the last Overlap.
		at = exp.Add(-r.cfg.Overlap/2 - r.jitter(c.Name)%(r.cfg.Overlap/4+1))
	} else {
		at = exp.Add(-r.cfg.Before - r.jitter(c.Name))
	}
	if lifetime := exp.Sub(fetched); at.Before(fetched.Add(lifetime/2)) && !r.cfg.Unsafe.NoShortScale {
		// Short-lived tokens (tests, simulators): the refresh point scales
		// down with the lifetime, never more than two fetches a lifetime.
		at = fetched.Add(lifetime / 2)
		r.warnShort(c, lifetime)
	}
	return at
}

// warnShort says once per credential that its tokens live too short for
// the configured refresh point and margin, which are scaled down.
func (r *Refresher) warnShort(c Cred, lifetime time.Duration) {
	r.mu.Lock()
	first := !r.warned[c.Name]
	r.warned[c.Name] = true
	r.mu.Unlock()
	if first {
		r.log.Warn("tokens live too short for refresh.before: refreshing at half their lifetime, serving with a margin of at most an eighth of it",
			"cred", c.Name, "lifetime", lifetime, "before", r.cfg.Before, "margin", r.cfg.WindowMargin)
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
