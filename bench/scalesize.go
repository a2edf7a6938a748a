package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// scaleSize measures one cluster size: n fresh records are written to
// etcd, then a leader over all of them runs until idle (its RSS), then a
// serve-only replica with all of them cold-starts (time to serve, RSS),
// the cost of its readiness probe is counted at etcd, and, if sidecar, a
// serve-only replica configured with 3 of the apps starts (time, RSS).
func (e *env) scaleSize(ctx context.Context, r *Report, n int, sidecar bool) error {
	sim := wechattest.NewServer(wechattest.Config{DailyQuota: 100})
	defer sim.Close()
	apps := benchApps(fmt.Sprintf("s%d", n), n)
	addApps(sim, apps)
	prefix := fmt.Sprintf("/bench-scale-%d", n)
	cli, err := e.etcd.client(-1)
	if err != nil {
		return err
	}
	defer cli.Close()
	keys := tokenstore.Keys{Prefix: prefix}
	fmt.Fprintf(os.Stderr, "bench: scale: writing %d records\n", n)
	if err := seedRecords(ctx, cli, keys, apps); err != nil {
		return err
	}
	sec, size := "5", fmt.Sprintf("%d credentials", n)

	pc := procConfig{Node: fmt.Sprintf("scale-leader-%d", n), Prefix: prefix, Candidate: true, TTL: 10 * time.Second,
		Concurrency: scaleConcurrency, SimURL: sim.URL, Apps: apps}
	t0 := time.Now()
	leader, err := e.startNode(ctx, pc)
	if err != nil {
		return err
	}
	if err := waitUntil(ctx, 2*time.Minute, 100*time.Millisecond, "a leader", func() bool {
		return countKeys(ctx, cli, keys.Election()) > 0
	}); err != nil {
		leader.stop(30 * time.Second)
		return err
	}
	settled, err := waitIdle(ctx, leader.proc, 2*time.Minute)
	if err != nil {
		leader.stop(30 * time.Second)
		return err
	}
	rss, peak, err := leader.memory()
	leader.stop(30 * time.Second)
	if err != nil {
		return err
	}
	limit := 300.0
	if n <= 10000 {
		limit = 80
	}
	r.check(sec, "Resident memory (RSS) of the leader with "+size, rss, "MB", "<", limit,
		fmt.Sprintf("peak %.0f MB; idle %.1f s after exec; WeChat calls: %d", peak, settled.Sub(t0).Seconds(), len(sim.Ledger())))

	// A serve-only replica with every app: timed from exec until it is
	// ready and a sample of 1,000 apps spread over all of them has been
	// answered 200; a sweep of every app follows, untimed.
	fc := pc
	fc.Node, fc.Candidate = fmt.Sprintf("scale-follower-%d", n), false
	start := time.Now()
	follower, err := e.startNode(ctx, fc)
	if err != nil {
		return err
	}
	defer follower.stop(30 * time.Second)
	listening := time.Since(start)
	if err := sweep(ctx, follower.addr, spreadSample(apps, 1000), 16, func() {}); err != nil {
		return err
	}
	cold := time.Since(start)
	if _, err := waitIdle(ctx, follower.proc, time.Minute); err != nil {
		return err
	}
	frss, fpeak, err := follower.memory()
	if err != nil {
		return err
	}
	all := time.Now()
	if err := sweep(ctx, follower.addr, apps, 16, func() {}); err != nil {
		return fmt.Errorf("serve-only replica with %s: %w", size, err)
	}
	r.check(sec, "Cold start of a serve-only replica until it serves "+size, cold.Seconds(), "s", "<", 3,
		fmt.Sprintf("exec until 1,000 apps spread over all were served; listening after %.2f s; then all %d apps answered 200 in a %.1f s sweep",
			listening.Seconds(), n, time.Since(all).Seconds()))
	r.check(sec, "Resident memory (RSS) of the serve-only replica with "+size, frss, "MB", "<", 250, fmt.Sprintf("peak %.0f MB", fpeak))

	perProbe, err := probeCost(ctx, 10*time.Second)
	if err != nil {
		return err
	}
	r.add(sec, "etcd requests per readiness probe of a serve-only replica, cluster of "+size, perProbe, "",
		"unary requests counted at the etcd members over 10 s of an idle replica, per 2 s probe interval")
	follower.stop(30 * time.Second)

	if !sidecar {
		return nil
	}
	sc := fc
	sc.Node, sc.Apps = fmt.Sprintf("scale-sidecar-%d", n), []benchApp{apps[0], apps[n/2], apps[n-1]}
	start = time.Now()
	side, err := e.startNode(ctx, sc)
	if err != nil {
		return err
	}
	defer side.stop(30 * time.Second)
	if err := sweep(ctx, side.addr, sc.Apps, 3, func() {}); err != nil {
		return err
	}
	sideStart := time.Since(start)
	if _, err := waitIdle(ctx, side.proc, time.Minute); err != nil {
		return err
	}
	srss, speak, err := side.memory()
	if err != nil {
		return err
	}
	r.check(sec, "Start of a sidecar configured with 3 apps in a cluster of "+size, sideStart.Seconds(), "s", "<", 0.5,
		"exec until its 3 apps were served")
	r.check(sec, "Resident memory (RSS) of that sidecar", srss, "MB", "<", 30, fmt.Sprintf("peak %.0f MB", speak))
	return nil
}

// seedRecords writes a fresh record (due for refresh in an hour) for every
// app, 128 to a transaction (etcd's default limit of operations).
func seedRecords(ctx context.Context, cli *clientv3.Client, keys tokenstore.Keys, apps []benchApp) error {
	now := time.Now()
	var ops []clientv3.Op
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err := cli.Txn(tctx).Then(ops...).Commit()
		ops = ops[:0]
		return err
	}
	for i, a := range apps {
		cred := tokenstore.CredName(a.Name, "token")
		rec := tokenstore.Record{Cred: cred, Value: fmt.Sprintf("%0160d", i), Seq: 1, Node: "seed",
			FetchedAt: now, ExpiresAt: now.Add(2 * time.Hour), RefreshAt: now.Add(time.Hour), PublishedAt: now}
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		ops = append(ops, clientv3.OpPut(keys.Cred(cred), string(b)))
		if len(ops) == 128 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// spreadSample returns k apps spread evenly over apps, the last included.
func spreadSample(apps []benchApp, k int) []benchApp {
	if len(apps) <= k {
		return apps
	}
	out := make([]benchApp, 0, k)
	for i := range k {
		out = append(out, apps[i*(len(apps)-1)/(k-1)])
	}
	return out
}

// countKeys counts the keys under prefix (-1 if etcd does not answer).
func countKeys(ctx context.Context, cli *clientv3.Client, prefix string) int64 {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := cli.Get(cctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return -1
	}
	return resp.Count
}

// waitIdle waits until p used less than 5% of a CPU over a second, and
// returns when.
func waitIdle(ctx context.Context, p *proc, within time.Duration) (time.Time, error) {
	deadline := time.Now().Add(within)
	last, err := cpuTicks(p.pid())
	if err != nil {
		return time.Time{}, err
	}
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(time.Second):
		}
		cur, err := cpuTicks(p.pid())
		if err != nil {
			return time.Time{}, err
		}
		if cur-last < 5 { // clock ticks are 1/100 s
			return time.Now(), nil
		}
		last = cur
	}
	return time.Time{}, fmt.Errorf("process %d still busy after %v", p.pid(), within)
}

// cpuTicks is a process's user and system CPU time in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command, which is in parentheses: state is 3rd,
	// utime the 14th and stime the 15th of the whole line.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return u + st, nil
}

// probeCost counts the unary requests the etcd members (embedded in this
// process) handle over window, while only one idle replica uses them, and
// returns them per probe interval (2 s).
func probeCost(ctx context.Context, window time.Duration) (float64, error) {
	before, err := unaryHandled()
	if err != nil {
		return 0, err
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(window):
	}
	after, err := unaryHandled()
	if err != nil {
		return 0, err
	}
	return (after - before) / (window.Seconds() / tokenstore.DefaultProbeInterval.Seconds()), nil
}

// unaryHandled sums etcd's grpc_server_handled_total of unary calls.
func unaryHandled() (float64, error) {
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "grpc_server_handled_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "grpc_type" && l.GetValue() == "unary" {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum, nil
}
