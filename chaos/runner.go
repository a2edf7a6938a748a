// Package chaos is wxtoken's fault-injection suite. Run starts real
// processes on loopback (a three-member etcd cluster, wxtoken replicas
// built from the tree, each behind its own TCP proxy to etcd, and the
// WeChat simulator with short-lived tokens), reads tokens from every
// replica all the time and uses each against the simulator, injects faults
// from a seeded schedule, and judges the recorded history with package
// checker. See README.md, "Fault-injection suite".
package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/wxtoken/wxtoken/chaos/checker"
)

// Prefix is the etcd prefix the replicas use.
const Prefix = "/wxtoken"

// Timing is the run's clock: every duration that WeChat and the replicas'
// config dictate, scaled down so that a run covers dozens of refreshes.
type Timing struct {
	ElectionTTL  time.Duration // election.ttl
	TokenTTL     time.Duration // the simulator's token lifetime
	Overlap      time.Duration // how long WeChat keeps the previous classic token; refresh.overlap
	Before       time.Duration // refresh.before
	Jitter       time.Duration // refresh.jitter
	FetchTimeout time.Duration // refresh.fetch_timeout
	Margin       time.Duration // refresh.margin
}

// DefaultTiming keeps the ratios that matter: the overlap is longer than
// a failover plus the fetch window (TTL + fetch timeout + margin), and a
// refresh lands before the old token's overlap ends.
var DefaultTiming = Timing{
	ElectionTTL:  3 * time.Second,
	TokenTTL:     30 * time.Second,
	Overlap:      12 * time.Second,
	Before:       10 * time.Second,
	Jitter:       time.Second,
	FetchTimeout: 3 * time.Second,
	Margin:       2 * time.Second,
}

// Config configures a run.
type Config struct {
	// Duration is how long consumers read; the schedule fills it, though
	// the required faults always all run. Default 3m30s.
	Duration time.Duration
	Seed     int64
	// Replicas is the number of wxtoken processes (3 to 5; default 4); all
	// but the last are candidates.
	Replicas int
	// Required are the fault kinds the run must inject; default Required.
	Required []string
	// Pool are the kinds drawn after the required ones; default
	// DefaultPool.
	Pool []string
	// ReadEvery is each consumer's pause between reads; default 25ms.
	ReadEvery time.Duration
	// SkipIntent runs the deliberately broken replicas
	// (--unsafe-skip-intent): the checker must fail.
	SkipIntent bool
	Timing     Timing // zero: DefaultTiming
	// Dir holds data, configs and logs; default a new temporary directory,
	// removed afterwards unless Keep.
	Dir  string
	Keep bool
	// EtcdBin and WxtokenBin are the binaries; empty builds them from the
	// module (go build go.etcd.io/etcd/server/v3, go build ./cmd/wxtoken).
	EtcdBin, WxtokenBin string
	// ModuleDir is the module root to build from; default ".".
	ModuleDir string
	// Log receives progress lines; default os.Stderr.
	Log io.Writer

	apps []app
}

// app is one credential of the run.
type app struct {
	name, kind, appID, secret string
	refreshEvery              time.Duration
}

func (c *Config) defaults() error {
	if c.Duration == 0 {
		c.Duration = 3*time.Minute + 30*time.Second
	}
	if c.Replicas == 0 {
		c.Replicas = 4
	}
	if c.Replicas < 3 || c.Replicas > 5 {
		return fmt.Errorf("chaos: %d replicas (want 3 to 5)", c.Replicas)
	}
	if c.Required == nil {
		c.Required = Required
	}
	if c.Pool == nil {
		c.Pool = DefaultPool
	}
	for _, k := range append(slices.Clone(c.Required), c.Pool...) {
		if !known(k) {
			return fmt.Errorf("chaos: unknown fault kind %q (want one of %v)", k, AllKinds)
		}
	}
	if c.ReadEvery == 0 {
		c.ReadEvery = 25 * time.Millisecond
	}
	if c.Timing == (Timing{}) {
		c.Timing = DefaultTiming
	}
	if c.Log == nil {
		c.Log = os.Stderr
	}
	if c.ModuleDir == "" {
		c.ModuleDir = "."
	}
	t := c.Timing
	c.apps = []app{
		// A classic token is replaced Before (plus its jitter share) ahead
		// of expiry; a stable one inside the last Overlap.
		{name: "shop", kind: "classic", appID: "wxc4a05e5h0p0001", refreshEvery: t.TokenTTL - t.Before - t.Jitter/2},
		{name: "mini", kind: "stable", appID: "wxc4a05m1n1p0002", refreshEvery: t.TokenTTL - t.Overlap/2 - t.Overlap/8},
	}
	for i := range c.apps {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		c.apps[i].secret = hex.EncodeToString(b)
	}
	return nil
}

func known(kind string) bool { return slices.Contains(AllKinds, kind) }

// Result is what a run produced.
type Result struct {
	History checker.History
	Report  checker.Report
}

// Run performs one run and judges it. It returns an error only when the
// harness itself failed (a build, a process that would not start); a
// failed check is in Result.Report. Every process it started is gone when
// it returns, whatever happened.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "wxtoken-chaos-")
		if err != nil {
			return nil, err
		}
		cfg.Dir = dir
		if !cfg.Keep {
			defer os.RemoveAll(dir)
		}
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	if err := build(ctx, &cfg); err != nil {
		return nil, err
	}
	h := &harness{cfg: &cfg, log: cfg.Log, sp: newSpawner()}
	defer h.close()
	if err := h.start(ctx); err != nil {
		return nil, err
	}
	return h.run(ctx)
}

// build builds the binaries that were not given.
func build(ctx context.Context, cfg *Config) error {
	bin := filepath.Join(cfg.Dir, "bin")
	goBuild := func(out, pkg string) error {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
		cmd.Dir = cfg.ModuleDir
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
		}
		return nil
	}
	if cfg.EtcdBin == "" {
		cfg.EtcdBin = filepath.Join(bin, "etcd")
		fmt.Fprintf(cfg.Log, "chaos: building etcd from go.etcd.io/etcd/server/v3 (the module's version)\n")
		if err := goBuild(cfg.EtcdBin, "go.etcd.io/etcd/server/v3"); err != nil {
			return err
		}
	}
	if cfg.WxtokenBin == "" {
		cfg.WxtokenBin = filepath.Join(bin, "wxtoken")
		fmt.Fprintf(cfg.Log, "chaos: building wxtoken from ./cmd/wxtoken\n")
		if err := goBuild(cfg.WxtokenBin, "./cmd/wxtoken"); err != nil {
			return err
		}
	}
	return nil
}

// harness holds the processes of one run.
type harness struct {
	cfg      *Config
	log      io.Writer
	sp       *spawner
	pp       ports
	etcd     *etcdCluster
	sim      *sim
	replicas []*replica
	cli      *clientv3.Client

	mu      sync.Mutex
	records []checker.Snapshot
	faults  []checker.Fault
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.log, "chaos: %s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

// start brings up etcd, the simulator and the replicas, and waits until
// every replica serves every app.
func (h *harness) start(ctx context.Context) error {
	var err error
	h.etcd, err = newEtcdCluster(h.sp, &h.pp, h.cfg.EtcdBin, h.cfg.Dir, filepath.Join(h.cfg.Dir, "logs"), 3)
	if err != nil {
		return err
	}
	if err := h.etcd.start(); err != nil {
		return err
	}
	if err := h.etcd.waitHealthy(ctx, 30*time.Second); err != nil {
		return err
	}
	h.cli, err = clientv3.New(clientv3.Config{Endpoints: h.etcd.endpoints(), DialTimeout: 3 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("etcd client: %w", err)
	}
	h.sim, err = newSim(h.sp, &h.pp, h.cfg)
	if err != nil {
		return err
	}
	if err := h.sim.proc.start(); err != nil {
		return err
	}
	if err := poll(ctx, 10*time.Second, func(ctx context.Context) bool { return get(ctx, h.sim.url()+"/_sim/uses") == 200 }); err != nil {
		return fmt.Errorf("wechat-sim not up: %w", err)
	}
	for i := range h.cfg.Replicas {
		r, err := newReplica(h.sp, &h.pp, h.cfg, h.sim.url(), h.etcd, fmt.Sprintf("r%d", i+1), i < h.cfg.Replicas-1)
		if err != nil {
			return err
		}
		h.replicas = append(h.replicas, r)
		if err := r.proc.start(); err != nil {
			return err
		}
	}
	for _, r := range h.replicas {
		if err := r.waitUp(ctx, 20*time.Second); err != nil {
			return fmt.Errorf("replica %s not up (see %s): %w", r.name, r.proc.log, err)
		}
	}
	err = poll(ctx, 45*time.Second, func(ctx context.Context) bool {
		for _, r := range h.replicas {
			for _, a := range h.cfg.apps {
				if get(ctx, r.url()+"/v1/apps/"+a.name+"/token") != 200 {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("replicas serve no tokens: %w", err)
	}
	h.logf("up: etcd %v, wechat-sim %s, %d replicas", h.etcd.endpoints(), h.sim.url(), len(h.replicas))
	return nil
}

// close kills every process, stopped ones included, and removes nothing.
func (h *harness) close() {
	for _, r := range h.replicas {
		_ = r.proc.kill()
		r.closeProxies()
	}
	if h.sim != nil {
		_ = h.sim.proc.kill()
	}
	if h.etcd != nil {
		h.etcd.kill()
	}
	if h.cli != nil {
		h.cli.Close()
	}
	h.sp.close()
}

// run reads while injecting the schedule, then collects and judges.
func (h *harness) run(ctx context.Context) (*Result, error) {
	cfg := h.cfg
	steps := plan(cfg.Seed, cfg.Duration, cfg.Required, cfg.Pool, cfg.Timing, len(h.replicas), len(h.etcd.members), len(cfg.apps))
	printSchedule(h.log, cfg.Seed, steps, h.replicas, h.etcd, cfg.apps)

	var names []string
	for _, a := range cfg.apps {
		names = append(names, a.name)
	}
	readCtx, stopReads := context.WithCancel(ctx)
	defer stopReads()
	var wg sync.WaitGroup
	var consumers []*consumer
	for _, r := range h.replicas {
		c := newConsumer(r, h.sim.url(), names, cfg.ReadEvery)
		consumers = append(consumers, c)
		wg.Add(1)
		go func() { defer wg.Done(); c.run(readCtx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); h.pollRecords(readCtx) }()
	start := time.Now()

	for i, s := range steps {
		if ctx.Err() != nil {
			break
		}
		if err := sleep(ctx, s.Gap); err != nil {
			break
		}
		h.logf("fault %d/%d: %s", i+1, len(steps), s.describe(h.replicas, h.etcd, cfg.apps))
		f := h.inject(ctx, s)
		h.mu.Lock()
		h.faults = append(h.faults, f)
		h.mu.Unlock()
		if f.Missed != "" {
			h.logf("  missed: %s", f.Missed)
		} else {
			h.logf("  done: %s %s (%v)", f.Target, f.Detail, f.End.Sub(f.Start).Round(time.Millisecond))
		}
		h.settle(ctx)
	}
	// A quiet tail: the run ends with at least a grace of normal service.
	tail := max(time.Until(start.Add(cfg.Duration)), checker.DefaultGrace+5*time.Second)
	h.logf("faults done; reading %v more", tail.Round(time.Second))
	_ = sleep(ctx, tail)
	stopReads()
	wg.Wait()
	end := time.Now()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return h.judge(ctx, start, end, consumers)
}

// judge collects the ledger and the token lives, and checks the history.
func (h *harness) judge(ctx context.Context, start, end time.Time, consumers []*consumer) (*Result, error) {
	cfg := h.cfg
	_ = h.sim.clearFault(ctx)
	h.snapshot(ctx, "end of run")
	ledger, err := h.sim.ledger(ctx)
	if err != nil {
		return nil, err
	}
	oracle := &checker.SimOracle{URL: h.sim.url()}
	lives, err := checker.Lives(ctx, oracle, ledger, cfg.Timing.TokenTTL+5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("token lives: %w", err)
	}
	build := "normal"
	if cfg.SkipIntent {
		build = "broken (--unsafe-skip-intent)"
	}
	hist := checker.History{
		Run: checker.Run{Seed: cfg.Seed, Build: build, Start: start, End: end,
			TokenTTL: checker.Duration(cfg.Timing.TokenTTL), Required: cfg.Required},
		Fetches: ledger,
		Tokens:  lives,
	}
	for _, a := range cfg.apps {
		hist.Apps = append(hist.Apps, checker.App{Name: a.name, Kind: a.kind, AppID: a.appID, RefreshEvery: checker.Duration(a.refreshEvery)})
	}
	for _, c := range consumers {
		hist.Reads = append(hist.Reads, c.reads...)
		hist.Uses = append(hist.Uses, c.uses...)
	}
	h.mu.Lock()
	hist.Faults = append(hist.Faults, h.faults...)
	hist.Records = append(hist.Records, h.records...)
	h.mu.Unlock()
	return &Result{History: hist, Report: checker.Check(hist)}, nil
}

// WriteJSON writes v, indented, to path.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// errNoLeader is returned when no replica leads within the wait.
var errNoLeader = errors.New("no leader")
