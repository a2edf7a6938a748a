package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// fillLatency is how long each simulated WeChat call takes while the
// leader fills an empty cluster: long enough that refresh.concurrency, not
// etcd, bounds the rate (8 calls in flight / 100 ms = 80 fetches/s).
const fillLatency = 100 * time.Millisecond

// scaleConcurrency is refresh.concurrency in the scale section.
const scaleConcurrency = 8

// scaleSection measures a leader filling an empty cluster (the rate
// refresh.concurrency allows, the calls in flight), then, at two cluster
// sizes, the resident memory of a leader over every credential, the cold
// start of a serve-only replica with all of them, and at the larger size a
// sidecar configured with 3 apps, and what a readiness probe costs etcd.
func (e *env) scaleSection(ctx context.Context, r *Report) error {
	fill := 2000
	sizes := []int{10000, e.opts.creds}
	if e.opts.quick {
		fill, sizes = 400, []int{2000, e.opts.creds}
	}
	if err := e.scaleFill(ctx, r, fill); err != nil {
		return err
	}
	for _, n := range sizes {
		if err := e.scaleSize(ctx, r, n, n == sizes[len(sizes)-1]); err != nil {
			return err
		}
	}
	r.note("Section 5: real `wxtoken serve` processes (RSS read from /proc/PID/status once the process is idle) on the 3-member etcd cluster; " +
		"at each size the records are written to etcd first (fresh, due in an hour), as a running cluster has them.")
	return nil
}

// scaleFill times a leader filling an empty cluster with n credentials
// while every WeChat call takes fillLatency.
func (e *env) scaleFill(ctx context.Context, r *Report, n int) error {
	sim := wechattest.NewServer(wechattest.Config{DailyQuota: 100})
	defer sim.Close()
	apps := benchApps("f", n)
	addApps(sim, apps)
	sim.SetFault(wechattest.Fault{Mode: wechattest.FaultLatency, Latency: fillLatency})
	const prefix = "/bench-fill"
	pc := procConfig{Node: "fill-leader", Prefix: prefix, Candidate: true, TTL: 10 * time.Second,
		Concurrency: scaleConcurrency, SimURL: sim.URL, Apps: apps}
	cli, err := e.etcd.client(-1)
	if err != nil {
		return err
	}
	defer cli.Close()
	keys := tokenstore.Keys{Prefix: prefix}
	t0 := time.Now()
	leader, err := e.startNode(ctx, pc)
	if err != nil {
		return err
	}
	defer leader.stop(30 * time.Second)
	if err := waitUntil(ctx, 10*time.Minute, 200*time.Millisecond, fmt.Sprintf("the leader to publish %d credentials", n), func() bool {
		return countKeys(ctx, cli, keys.Creds()) >= int64(n)
	}); err != nil {
		return err
	}
	filled := time.Since(t0)
	peak := maxInFlight(sim.Ledger())
	spread, busiest, err := refreshSpread(ctx, cli, keys)
	if err != nil {
		return err
	}
	allowed := float64(scaleConcurrency) / fillLatency.Seconds()
	sec := "5"
	r.add(sec, fmt.Sprintf("Leader fills an empty cluster with %d credentials", n), filled.Seconds(), "s",
		fmt.Sprintf("%.0f fetches/s from process start; refresh.concurrency %d x WeChat's %v allow %.0f/s", float64(n)/filled.Seconds(), scaleConcurrency, fillLatency, allowed))
	r.check(sec, "Most WeChat calls in flight at once during that burst", float64(peak), "", "<=", scaleConcurrency,
		fmt.Sprintf("refresh.concurrency %d, counted at the simulator", scaleConcurrency))
	r.add(sec, "Refreshes due in the busiest second of the next round", float64(busiest), "",
		fmt.Sprintf("spread over %.0f s by refresh.jitter", spread.Seconds()))
	return nil
}

// sweep GETs the token of every app from the replica at addr with workers
// connections, retrying an app (every millisecond) until it is answered
// 200; served is called at the first 200.
func sweep(ctx context.Context, addr string, apps []benchApp, workers int, served func()) error {
	var wg sync.WaitGroup
	errs := make([]error, workers)
	deadline := time.Now().Add(time.Minute)
	for w := range workers {
		wg.Go(func() {
			var c *httpConn
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for i := w; i < len(apps); i += workers {
				path := "/v1/apps/" + apps[i].Name + "/token"
				for {
					if ctx.Err() != nil || time.Now().After(deadline) {
						errs[w] = fmt.Errorf("app %s not served within a minute", apps[i].Name)
						return
					}
					if c == nil {
						var err error
						if c, err = dialHTTP(addr, path); err != nil {
							c = nil
							time.Sleep(time.Millisecond)
							continue
						}
					}
					c.req = []byte("GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")
					if _, err := c.get(); err == nil {
						served()
						break
					} else if !isStatus(err) {
						c.Close()
						c = nil
					}
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// maxInFlight is the largest number of token calls that the simulator was
// answering at one instant, from its ledger.
func maxInFlight(ledger []wechattest.Fetch) int {
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, f := range ledger {
		edges = append(edges, edge{f.Start, +1}, edge{f.At, -1})
	}
	sort.Slice(edges, func(i, j int) bool {
		if !edges[i].at.Equal(edges[j].at) {
			return edges[i].at.Before(edges[j].at)
		}
		return edges[i].delta < edges[j].delta // an end before a start at the same instant
	})
	cur, peak := 0, 0
	for _, e := range edges {
		cur += e.delta
		peak = max(peak, cur)
	}
	return peak
}

// refreshSpread reads every published record and returns over how long
// their planned refreshes spread and how many fall in the busiest second.
func refreshSpread(ctx context.Context, cli *clientv3.Client, keys tokenstore.Keys) (time.Duration, int, error) {
	resp, err := cli.Get(ctx, keys.Creds(), clientv3.WithPrefix())
	if err != nil {
		return 0, 0, err
	}
	perSecond := map[int64]int{}
	var lo, hi time.Time
	for _, kv := range resp.Kvs {
		var rec tokenstore.Record
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return 0, 0, err
		}
		perSecond[rec.RefreshAt.Unix()]++
		if lo.IsZero() || rec.RefreshAt.Before(lo) {
			lo = rec.RefreshAt
		}
		if rec.RefreshAt.After(hi) {
			hi = rec.RefreshAt
		}
	}
	busiest := 0
	for _, c := range perSecond {
		busiest = max(busiest, c)
	}
	return hi.Sub(lo), busiest, nil
}
