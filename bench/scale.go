package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// scaleLatency is how long each simulated WeChat call takes in the scale
// section, so that calls in flight overlap and bursts show.
const scaleLatency = 5 * time.Millisecond

// scaleConcurrency is refresh.concurrency in the scale section.
const scaleConcurrency = 8

// scaleSection runs a leader process with many credentials, then times
// the cold start of a second process until it serves all of them, and
// reads both processes' resident memory (section 5).
func (e *env) scaleSection(ctx context.Context, r *Report) error {
	n := e.opts.creds
	sim := wechattest.NewServer(wechattest.Config{DailyQuota: 100})
	defer sim.Close()
	apps := benchApps("s", n)
	addApps(sim, apps)
	sim.SetFault(wechattest.Fault{Mode: wechattest.FaultLatency, Latency: scaleLatency})
	const prefix = "/bench-scale"
	pc := procConfig{Node: "scale-leader", Prefix: prefix, Candidate: true, TTL: 10 * time.Second,
		Concurrency: scaleConcurrency, SimURL: sim.URL, Apps: apps}

	cli, err := e.etcd.client(-1)
	if err != nil {
		return err
	}
	defer cli.Close()
	keys := tokenstore.Keys{Prefix: prefix}
	count := func() int64 {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		resp, err := cli.Get(cctx, keys.Creds(), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return -1
		}
		return resp.Count
	}

	t0 := time.Now()
	leader, err := e.startNode(ctx, pc)
	if err != nil {
		return err
	}
	defer leader.stop(30 * time.Second)
	if err := waitUntil(ctx, 10*time.Minute, 200*time.Millisecond, fmt.Sprintf("the leader to publish %d credentials", n), func() bool {
		return count() >= int64(n)
	}); err != nil {
		return err
	}
	filled := time.Since(t0)
	time.Sleep(2 * time.Second) // let the leader settle after its burst
	leaderRSS, leaderPeak, err := leader.memory()
	if err != nil {
		return err
	}
	peak := maxInFlight(sim.Ledger())
	spread, busiest, err := refreshSpread(ctx, cli, keys)
	if err != nil {
		return err
	}

	// Cold start: a serve-only replica with the same apps, timed from exec
	// until every app's token has been answered 200 (16 readers sweep the
	// apps from the start, each retrying an app until it is served).
	fc := pc
	fc.Node, fc.Candidate = "scale-follower", false
	cfgPath, err := e.writeConfig(fc)
	if err != nil {
		return err
	}
	var first atomic.Int64
	start := time.Now()
	follower, err := startWxtoken(ctx, e.bin, cfgPath, e.dir, fc.Node)
	if err != nil {
		return err
	}
	defer follower.stop(30 * time.Second)
	listening := time.Since(start)
	if err := sweep(ctx, follower.addr, apps, 16, func() { first.CompareAndSwap(0, int64(time.Since(start))) }); err != nil {
		return err
	}
	cold := time.Since(start)
	time.Sleep(time.Second)
	folRSS, folPeak, err := follower.memory()
	if err != nil {
		return err
	}

	sec := "5"
	creds := fmt.Sprintf("%d credentials", n)
	r.add(sec, "Leader fills an empty cluster with "+creds, filled.Seconds(), "s",
		fmt.Sprintf("%.0f fetches/s; WeChat answers in %v", float64(n)/filled.Seconds(), scaleLatency))
	r.check(sec, "Most WeChat calls in flight at once during that burst", float64(peak), "", "<=", scaleConcurrency,
		fmt.Sprintf("refresh.concurrency %d, counted at the simulator", scaleConcurrency))
	r.add(sec, "Refreshes due in the busiest second of the next round", float64(busiest), "",
		fmt.Sprintf("spread over %.0f s by refresh.jitter", spread.Seconds()))
	r.check(sec, "Cold start of a serve-only replica until it serves all "+creds, cold.Seconds(), "s", "<", 2,
		fmt.Sprintf("process listening after %.2f s, first token served after %.2f s", listening.Seconds(), time.Duration(first.Load()).Seconds()))
	r.check(sec, "Resident memory (RSS) of the serve-only replica with "+creds, folRSS, "MB", "<", 150, fmt.Sprintf("peak %.0f MB", folPeak))
	r.check(sec, "Resident memory (RSS) of the leader with "+creds, leaderRSS, "MB", "<", 150, fmt.Sprintf("peak %.0f MB", leaderPeak))
	r.note("Section 5: real `wxtoken serve` processes (RSS read from /proc/PID/status) on the 3-member etcd cluster; the simulator answers every call after %v.", scaleLatency)
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
