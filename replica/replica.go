// Package replica assembles one wxtoken replica from its configuration:
// etcd (joined, or embedded when no endpoints are set), the watch-fed cache,
// presence, the election with the refresh loop for candidates, and the HTTP
// API. cmd/wxtoken only parses flags and calls it.
package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/access"
	"github.com/wxtoken/wxtoken/api"
	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/election"
	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/refresher"
	"github.com/wxtoken/wxtoken/tokenfile"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// DrainTimeout bounds the HTTP drain and the resign on shutdown.
const DrainTimeout = 5 * time.Second

// Options are what a replica needs beyond its Config.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
	// Etcd, if set, is used instead of dialing Config.Etcd (tests). The
	// replica does not close it.
	Etcd *clientv3.Client
	// Fetcher, if set, replaces the WeChat client built from Config.WeChat.
	Fetcher refresher.Fetcher
	// Unsafe switches protections off for the fault suite, which shows its
	// checker catching each bug. Never set in production; the release
	// binary cannot set it.
	Unsafe Unsafe
	// Now defaults to time.Now.
	Now func() time.Time
	// TLSReloadEvery is how often the TLS files are checked for a change;
	// default DefaultTLSReloadEvery.
	TLSReloadEvery time.Duration
}

// Unsafe names the protections the fault suite can switch off.
type Unsafe struct {
	refresher.Unsafe
	// BlindRetry retries WeChat calls that ended without a complete answer
	// inside one fetch, each try bounded by a third of fetch_timeout.
	BlindRetry bool
	// NoReadWait answers no_credential at once instead of waiting for a due
	// fetch in flight, and ignores intents when bounding keep-for.
	NoReadWait bool
	// NoClockCorrection serves on this host's clock even when the leader's
	// heartbeats show it behind (see clockCheck).
	NoClockCorrection bool
}

// Replica is one running wxtoken replica. New starts nothing but the
// listener and the etcd connection; Run runs the rest.
type Replica struct {
	cfg     *config.Config
	log     *slog.Logger
	etcd    *clientv3.Client
	ownEtcd bool
	emb     *embedded
	ln      net.Listener // the TCP API listener, within lns
	lns     *listeners   // listeners.go
	handler http.Handler // the API behind access control
	metrics http.Handler // metrics_listen's, behind access control
	reload  time.Duration

	store   *tokenstore.Store
	cache   *tokenstore.Cache
	refr    *refresher.Refresher
	elector *election.Elector
	api     *api.API
	sink    *tokenfile.Sink // nil when no app has a token_file
	now     func() time.Time
}

// New connects to etcd (or starts the embedded one), opens the listener and
// builds the components. Its errors are one line, fit for a user.
func New(opts Options) (*Replica, error) {
	cfg := opts.Config
	if cfg == nil {
		return nil, errors.New("replica: no config")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &Replica{cfg: cfg, log: log, etcd: opts.Etcd, now: opts.Now, reload: opts.TLSReloadEvery}
	if r.now == nil {
		r.now = time.Now
	}
	if err := cfg.ExposureError(); err != nil {
		return nil, err
	}
	warnAccess(cfg, log)
	ok := false
	defer func() {
		if !ok {
			r.Close()
		}
	}()
	if r.etcd == nil {
		endpoints := cfg.Etcd.Endpoints
		if len(endpoints) == 0 {
			emb, err := startEmbedded(cfg.DataDir, 30*time.Second, log)
			if err != nil {
				return nil, err
			}
			r.emb = emb
			endpoints = []string{emb.url}
			log.Info("started embedded etcd", "data_dir", cfg.DataDir)
		}
		c, err := dial(endpoints, cfg.Etcd)
		if err != nil {
			return nil, err
		}
		r.etcd, r.ownEtcd = c, true
	}
	lns, err := openListeners(cfg, log)
	if err != nil {
		return nil, err
	}
	r.lns, r.ln = lns, lns.tcp

	m, err := newMetrics()
	if err != nil {
		return nil, err
	}
	sl, err := sealing(cfg.Encryption, log)
	if err != nil {
		return nil, err
	}
	r.store = tokenstore.New(r.etcd, cfg.Etcd.Prefix)
	r.store.SetSealing(sl)
	clock, err := newClockCheck(m, cfg.Refresh.Margin, r.now, opts.Unsafe.NoClockCorrection, log)
	if err != nil {
		return nil, err
	}
	r.cache = tokenstore.NewCache(tokenstore.CacheConfig{Client: r.etcd, Prefix: cfg.Etcd.Prefix, Logger: log, OnApply: m.applied, Sealing: sl,
		Apps: cacheApps(cfg), OnBeat: clock.beat})
	fcfg := fetcher.Config{BaseURL: cfg.WeChat.BaseURL, WeComBaseURL: cfg.WeChat.WeComBaseURL, Logger: log,
		HTTPClient: wechatClient(m.calls, cfg.Refresh.Concurrency),
		// One call per fetch: the refresher reserves the budget before each
		// try and retries what surely minted nothing itself.
		MaxAttempts: 1}
	if opts.Unsafe.BlindRetry {
		fcfg.MaxAttempts, fcfg.TryTimeout, fcfg.RetryAmbiguous = 0, cfg.Refresh.FetchTimeout/3, true
	}
	fc, err := fetcher.New(fcfg)
	if err != nil {
		return nil, fmt.Errorf("wechat: %w", err)
	}
	var fetch refresher.Fetcher = fc
	if opts.Fetcher != nil {
		fetch = opts.Fetcher
	}
	apps := make([]api.App, 0, len(cfg.Apps))
	ncreds := len(cfg.Apps)
	for _, a := range cfg.Apps {
		ncreds += len(a.Tickets)
	}
	creds := make([]refresher.Cred, 0, ncreds)
	for _, a := range cfg.Apps {
		apps = append(apps, api.App{Name: a.Name, Kind: a.Kind, AppID: a.AppID, Tickets: a.Tickets, Budget: a.DailyBudget, ExposeTicket: a.ExposeTicket})
		token := tokenstore.CredName(a.Name, "token")
		creds = append(creds, refresher.Cred{Name: token, App: a.Name, Kind: a.Kind, AppID: a.AppID, Secret: a.Secret.Reveal(), Budget: a.DailyBudget})
		for _, t := range a.Tickets {
			creds = append(creds, refresher.Cred{Name: tokenstore.CredName(a.Name, t), App: a.Name, Kind: t, AppID: a.AppID, Budget: a.DailyBudget, Token: token})
		}
	}
	plats := make([]refresher.Platform, 0, len(cfg.Platforms))
	for _, p := range cfg.Platforms {
		plats = append(plats, refresher.Platform{Name: p.Name, ComponentAppID: p.ComponentAppID, Secret: p.ComponentSecret.Reveal(), Budget: p.DailyBudget})
	}
	metrics := refresher.NewMetrics()
	unopened := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "wxtoken_records_unopened_total",
		Help: "Records in etcd that failed to open (wrong key, forged, damaged) and were not served."},
		func() float64 { return float64(r.cache.OpenFailures()) })
	stalls := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "wxtoken_watch_stalls_total",
		Help: "Times the cache found its etcd watch stopped (the leader's heartbeat not delivered) and opened it again."},
		func() float64 { return float64(r.cache.Stalls()) })
	if err := m.register(metrics, unopened, stalls); err != nil {
		return nil, err
	}
	r.refr, err = refresher.New(refresher.Config{
		Store: r.store, Cache: r.cache, Fetcher: fetch, Creds: creds, Node: cfg.Node,
		Platforms: plats, Platform: fc,
		Before: cfg.Refresh.Before, Jitter: cfg.Refresh.Jitter, FetchTimeout: cfg.Refresh.FetchTimeout,
		WindowMargin: cfg.Refresh.Margin, Overlap: cfg.Refresh.Overlap, Hold: config.CallHold, Concurrency: cfg.Refresh.Concurrency,
		Holdoff: cfg.Election.Holdoff, ReportInterval: cfg.Refresh.ReportInterval,
		Metrics: metrics, Logger: log, Now: opts.Now, Unsafe: opts.Unsafe.Unsafe,
		CheckToken:    checkToken(fc, cfg.WeChat.WeComBaseURL),
		OnTermStarted: func() { releaseStartup(len(creds)) },
	})
	if err != nil {
		return nil, err
	}
	if cfg.Election.Candidate {
		r.elector, err = election.New(election.Config{
			Client: r.etcd, Prefix: r.store.Keys().Election(), Node: cfg.Node,
			TTL: cfg.Election.TTL, ResignTimeout: DrainTimeout, Logger: log, Now: opts.Now,
		})
		if err != nil {
			return nil, err
		}
	}
	stats := &access.Stats{}
	if err := m.register(stats); err != nil {
		return nil, err
	}
	wrap, limiter, err := guard(cfg, r.advertise(), stats, log)
	if err != nil {
		return nil, err
	}
	r.api, err = api.New(api.Config{
		Cache: r.cache, Store: r.store, Apps: apps, Node: cfg.Node,
		Margin: cfg.Refresh.Margin, Overlap: cfg.Refresh.Overlap,
		ReadWait: cfg.Refresh.ReadWait, InvalidateWait: cfg.Refresh.InvalidateWait, IgnoreIntents: opts.Unsafe.NoReadWait,
		Leader: func(ctx context.Context) (string, error) {
			return election.Leader(ctx, r.etcd, r.store.Keys().Election())
		},
		ReportLimit: limiter.Allow,
		Registerer:  m.reg, Gatherer: m.reg, Logger: log, Now: clock.Now,
	})
	if err != nil {
		return nil, err
	}
	routes, err := appRoutes(cfg, r.api, log, clock.Now)
	if err != nil {
		return nil, err
	}
	r.api.Mount(routes...)
	if routes, err = platformRoutes(cfg, r.store, m.reg, log, clock.Now); err != nil {
		return nil, err
	}
	r.api.Mount(routes...)
	if r.handler, err = wrap(r.api); err != nil {
		return nil, err
	}
	if r.metrics, err = wrap(metricsOnly(r.api)); err != nil {
		return nil, err
	}
	if r.sink, err = tokenSink(cfg, r.cache, log, clock.Now); err != nil {
		return nil, err
	}
	ok = true
	return r, nil
}

// checkToken asks WeChat's getcallbackip whether a token still works.
func checkToken(fc *fetcher.Client, wecomBase string) func(context.Context, refresher.Cred, string) (bool, error) {
	return func(ctx context.Context, c refresher.Cred, token string) (bool, error) {
		base := ""
		if c.Kind == refresher.KindWeCom {
			base = wecomBase
		}
		_, err := fc.CallbackIP(ctx, base, token)
		switch {
		case err == nil:
			return true, nil
		case fetcher.ClassOf(err) == fetcher.TokenDead:
			return false, nil
		}
		return false, err
	}
}

// Addr is the address the HTTP API listens on.
func (r *Replica) Addr() string { return r.ln.Addr().String() }

// URL is the base URL of the HTTP API: https:// with tls set.
func (r *Replica) URL() string { return r.scheme() + r.Addr() }

func (r *Replica) scheme() string {
	if r.cfg.TLS.Enabled() {
		return "https://"
	}
	return "http://"
}

// advertise is the URL others reach this replica by: the configured one,
// or the listen address with the host name for an unspecified host.
func (r *Replica) advertise() string {
	if r.cfg.Advertise != "" {
		return r.cfg.Advertise
	}
	host, port, err := net.SplitHostPort(r.Addr())
	if ip := net.ParseIP(host); err == nil && ip != nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil {
			return r.scheme() + net.JoinHostPort(name, port)
		}
	}
	return r.URL()
}

// Cache is the replica's cache (tests and tools).
func (r *Replica) Cache() *tokenstore.Cache { return r.cache }

// Refresher is the replica's refresh loop (tests and tools).
func (r *Replica) Refresher() *refresher.Refresher { return r.refr }

// Run serves until ctx ends; then it resigns leadership, drains the API
// (bounded by DrainTimeout) and returns nil.
func (r *Replica) Run(ctx context.Context) error {
	srvs := r.lns.serve(r.cfg, r.handler, r.metrics, r.log)
	var wg sync.WaitGroup
	bg, stop := context.WithCancel(context.Background())
	defer stop()
	start := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	start(func() { _ = r.cache.Run(bg) })
	loaded := loading(len(r.cfg.Apps))
	start(func() {
		defer loaded()
		select {
		case <-r.cache.Loaded():
			loaded()
			releaseStartup(len(r.cfg.Apps))
		case <-bg.Done():
		}
	})
	if r.sink != nil {
		start(func() { _ = r.sink.Run(bg) })
	}
	fresh := &freshness{now: r.now}
	start(func() {
		_ = r.store.Announce(bg, tokenstore.Presence{Node: r.cfg.Node, API: r.advertise(), Candidate: r.cfg.Election.Candidate, Started: time.Now()},
			r.cfg.Election.TTL, fresh.renewed)
	})
	elect, stopElect := context.WithCancel(context.Background())
	defer stopElect()
	electDone := make(chan struct{})
	if r.elector != nil {
		start(func() {
			defer close(electDone)
			// Candidates lead only once their cache has loaded, so that
			// tickets can find their token.
			select {
			case <-r.cache.Loaded():
			case <-elect.Done():
				return
			}
			var wg sync.WaitGroup
			// A candidate also fetches what the leader delegates to it
			// (credentials WeChat refuses from the leader's host).
			wg.Go(func() { r.refr.Delegate(elect, fresh.held) })
			_ = r.elector.Run(elect, r.lead) // the refresh loop and the heartbeat (beat.go)
			wg.Wait()
		})
	} else {
		close(electDone)
	}
	if r.cfg.TLS.Enabled() {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		start(func() { r.lns.reloadTLS(bg, r.reload, hup) })
	}
	srvErr := make(chan error, len(srvs))
	for _, s := range srvs {
		start(func() {
			if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
				srvErr <- fmt.Errorf("%s: %w", s.name, err)
			}
		})
	}
	r.log.Info("serving", "url", r.URL(), "candidate", r.cfg.Election.Candidate, "unix", r.cfg.ListenUnix, "metrics", r.cfg.MetricsListen)

	var err error
	select {
	case <-ctx.Done():
	case err = <-srvErr:
		err = fmt.Errorf("http server: %w", err)
	}
	r.log.Info("shutting down: resigning and draining")
	stopElect()
	<-electDone
	dctx, cancel := context.WithTimeout(context.Background(), DrainTimeout)
	for _, s := range srvs {
		_ = s.srv.Shutdown(dctx)
	}
	cancel()
	stop()
	wg.Wait()
	return err
}

// Close releases etcd (and stops the embedded member). Call it after Run.
func (r *Replica) Close() {
	if r.lns != nil {
		r.lns.close()
	}
	if r.ownEtcd && r.etcd != nil {
		r.etcd.Close()
	}
	if r.emb != nil {
		r.emb.Close()
	}
}
