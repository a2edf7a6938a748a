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
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wxtoken/wxtoken/chaos/checker"
)

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
	if cfg.Platform {
		var err error
		if cfg.platform, err = newPlatformSetup(cfg.Dir, cfg.Authorizers); err != nil {
			return nil, err
		}
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
	goBuild := func(out, pkg string, flags ...string) error {
		cmd := exec.CommandContext(ctx, "go", slices.Concat([]string{"build"}, flags, []string{"-o", out, pkg})...)
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
		var flags []string
		if len(cfg.UnsafeOff) > 0 {
			// Only a wxunsafe build can switch protections off.
			flags = []string{"-tags", "wxunsafe"}
		}
		fmt.Fprintf(cfg.Log, "chaos: building wxtoken from ./cmd/wxtoken %s\n", strings.Join(flags, " "))
		if err := goBuild(cfg.WxtokenBin, "./cmd/wxtoken", flags...); err != nil {
			return err
		}
	}
	return nil
}

// run reads while injecting the schedule, then collects and judges.
func (h *harness) run(ctx context.Context) (*Result, error) {
	cfg := h.cfg
	steps := plan(cfg.Seed, cfg.Duration, cfg.Required, cfg.Pool, cfg.Timing, len(h.replicas), len(h.etcd.members), len(cfg.apps), cfg.Authorizers)
	printSchedule(h.log, cfg.Seed, steps, h.replicas, h.etcd, cfg.apps, cfg.platform)

	readCtx, stopReads := context.WithCancel(ctx)
	defer stopReads()
	var wg sync.WaitGroup
	var consumers []*consumer
	for _, r := range h.replicas {
		c := newConsumer(r, h.sim.url(), cfg.targets(), cfg.ReadEvery, cfg.Timing)
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
		if i >= len(cfg.Required) && time.Since(start)+s.cost(cfg.Timing) > cfg.Duration {
			h.logf("duration reached: %d of %d planned faults injected", i, len(steps))
			break
		}
		if err := sleep(ctx, s.Gap); err != nil {
			break
		}
		h.logf("fault %d/%d: %s", i+1, len(steps), s.describe(h.replicas, h.etcd, cfg.apps, cfg.platform))
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
		if platformKind(s.Kind) && f.Missed == "" {
			h.checkRefreshTokens(ctx, s.Kind)
		}
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
	_ = h.sim.clearRefusals(ctx)
	_ = h.sim.clearUseLatency(ctx)
	var plat *checker.Platform
	if p := cfg.platform; p != nil {
		_ = h.sim.setPushFault(ctx, p.compAppID, pushFault{})
		h.checkRefreshTokens(ctx, "end of run")
		var err error
		if plat, err = h.platformHistory(ctx); err != nil {
			return nil, fmt.Errorf("platform history: %w", err)
		}
	}
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
	if len(cfg.UnsafeOff) > 0 {
		build = "broken (--unsafe-off " + strings.Join(cfg.UnsafeOff, ",") + ")"
	}
	t := cfg.Timing
	hist := checker.History{
		Run: checker.Run{Seed: cfg.Seed, Build: build, Start: start, End: end,
			TokenTTL: checker.Duration(t.TokenTTL), Required: cfg.Required,
			FetchTimeout: checker.Duration(t.FetchTimeout), Margin: checker.Duration(t.Margin),
			InvalidateWait: checker.Duration(t.invalidateWait()),
			Outside:        []string{"127.0.0.1"}},
		Fetches:  ledger,
		Tokens:   lives,
		Platform: plat,
	}
	hist.Apps = cfg.credentials()
	for _, c := range consumers {
		hist.Reads = append(hist.Reads, c.reads...)
		hist.Uses = append(hist.Uses, c.uses...)
		hist.Invalidations = append(hist.Invalidations, c.invalidations()...)
	}
	h.mu.Lock()
	hist.Invalidations = append(hist.Invalidations, h.invals...)
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
