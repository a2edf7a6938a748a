package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"syscall"
	"time"

	"github.com/wxtoken/wxtoken/fetcher/wechattest"
)

// failoverSection stops the leader of three `wxtoken serve` candidates,
// gracefully (SIGTERM) and by kill -9, and times until another process
// leads (section 4).
func (e *env) failoverSection(ctx context.Context, r *Report) error {
	sim := wechattest.NewServer(wechattest.Config{})
	defer sim.Close()
	apps := benchApps("fail", 1)
	addApps(sim, apps)
	ttl := 10 * time.Second // the default election.ttl
	graceful, crashes := 5, 3
	if e.opts.quick {
		ttl, graceful, crashes = 3*time.Second, 2, 1
	}
	pc := func(i int) procConfig {
		return procConfig{Node: fmt.Sprintf("fail-%d", i), Prefix: "/bench-failover", Candidate: true,
			TTL: ttl, Concurrency: 8, SimURL: sim.URL, Apps: apps}
	}
	nodes := make([]*wxtokenProc, 3)
	defer func() {
		for _, n := range nodes {
			if n != nil {
				n.stop(10 * time.Second)
			}
		}
	}()
	for i := range nodes {
		n, err := e.startNode(ctx, pc(i))
		if err != nil {
			return err
		}
		nodes[i] = n
	}
	hc := &http.Client{Timeout: time.Second}
	// leader waits until exactly one node leads and every other is up.
	leader := func() (int, error) {
		who := -1
		err := waitUntil(ctx, 3*ttl+10*time.Second, 5*time.Millisecond, "one leader", func() bool {
			who = -1
			for i, n := range nodes {
				if isLeader(ctx, hc, n.url) {
					if who >= 0 {
						return false
					}
					who = i
				}
			}
			return who >= 0
		})
		return who, err
	}
	// takeover stops node old with sig and returns how long until another
	// node leads, then restarts old.
	takeover := func(old int, sig syscall.Signal) (time.Duration, error) {
		start := time.Now()
		if err := nodes[old].cmd.Process.Signal(sig); err != nil {
			return 0, err
		}
		var took time.Duration
		err := waitUntil(ctx, ttl+15*time.Second, time.Millisecond, "a new leader", func() bool {
			for i, n := range nodes {
				if i != old && isLeader(ctx, hc, n.url) {
					took = time.Since(start)
					return true
				}
			}
			return false
		})
		if err != nil {
			return 0, err
		}
		nodes[old].stop(10 * time.Second)
		n, err := e.startNode(ctx, pc(old))
		if err != nil {
			return 0, err
		}
		nodes[old] = n
		return took, nil
	}
	run := func(rounds int, sig syscall.Signal) ([]time.Duration, error) {
		var out []time.Duration
		for range rounds {
			old, err := leader()
			if err != nil {
				return nil, err
			}
			// Let the standby candidates settle into their campaigns.
			time.Sleep(time.Second)
			d, err := takeover(old, sig)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
		slices.Sort(out)
		return out, nil
	}
	g, err := run(graceful, syscall.SIGTERM)
	if err != nil {
		return fmt.Errorf("graceful failover: %w", err)
	}
	k, err := run(crashes, syscall.SIGKILL)
	if err != nil {
		return fmt.Errorf("kill -9 failover: %w", err)
	}
	r.add("4", "Failover after SIGTERM of the leader: median", ms(g[len(g)/2]), "ms", fmt.Sprintf("%d rounds", len(g)))
	r.check("4", "Failover after SIGTERM of the leader: worst", ms(g[len(g)-1]), "ms", "<", 1000, "")
	r.add("4", "Failover after kill -9 of the leader: median", ms(k[len(k)/2]), "ms", fmt.Sprintf("%d rounds, TTL %v", len(k), ttl))
	r.check("4", "Failover after kill -9 of the leader: worst", ms(k[len(k)-1]), "ms", "<=", ms(ttl+time.Second), fmt.Sprintf("TTL %v + 1 s", ttl))
	r.note("Section 4: three `wxtoken serve` candidates on the 3-member etcd cluster, election.ttl %v; "+
		"a failover is timed from the signal to the first moment another process reports wxtoken_leader 1 on /metrics (polled every millisecond); "+
		"the stopped process is restarted before the next round.", ttl)
	return nil
}
