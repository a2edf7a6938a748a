package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/wxtoken/wxtoken/tokenstore"
)

const (
	fleetPrefix = "/bench-fleet"
	fleetPeriod = time.Second // between publishes
)

// fleetSection measures a fleet of watch-only replicas (section "fleet"):
// 1,000 watchers in this process, each with its own etcd client (its own
// gRPC connection) feeding the replicas' real watch-fed cache, first
// connected straight to the three members (spread), then all through one
// `etcd grpc-proxy start`. The members and the proxy are processes of the
// etcd binary of go.mod, so that their CPU time can be read from /proc.
// For each: propagation from the publish to the last watcher, and the
// members' CPU time while the publishes ran.
func (e *env) fleetSection(ctx context.Context, r *Report) error {
	n, rounds, idle := 1000, 100, 10*time.Second
	if e.opts.quick {
		n, rounds, idle = 200, 30, 3*time.Second
	}
	dir := e.dir + "/fleet"
	fmt.Fprintln(os.Stderr, "bench: fleet: building etcd from go.etcd.io/etcd/server/v3")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	bin, err := buildEtcd(ctx, dir)
	if err != nil {
		return err
	}
	c, err := startEtcdProcs(ctx, bin, dir, 3)
	if err != nil {
		return err
	}
	defer c.stop()
	if err := c.startProxy(ctx); err != nil {
		return err
	}
	pub, err := newPublisher(ctx, c.clients)
	if err != nil {
		return err
	}
	defer pub.close()

	modes := []struct {
		name, label string
		endpoint    func(i int) string
	}{
		{"direct", "straight to the 3 members (spread)", func(i int) string { return c.clients[i%len(c.clients)] }},
		{"proxy", "through one gRPC proxy", func(int) string { return c.proxyEP }},
	}
	for _, m := range modes {
		fmt.Fprintf(os.Stderr, "bench: fleet: %d watchers %s\n", n, m.label)
		res, err := runFleet(ctx, c, pub, n, rounds, idle, m.endpoint)
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		name := fmt.Sprintf("Fleet of %d watch-only replicas %s", n, m.label)
		r.add("7", name+": propagation to the last, p50", ms(quantile(res.last, 0.5)),
			"ms", fmt.Sprintf("%d publishes; first replica p50 %.1f ms, p99 %.1f ms", len(res.last), ms(quantile(res.first, 0.5)), ms(quantile(res.first, 0.99))))
		r.add("7", name+": propagation to the last, p99", ms(quantile(res.last, 0.99)), "ms", "")
		note := fmt.Sprintf("%.1f s of publishes, %.2f CPU-s/s", res.window.Seconds(), res.busyCPU.Seconds()/res.window.Seconds())
		if m.name == "proxy" {
			note += fmt.Sprintf("; the proxy itself %.1f CPU-s", res.proxyCPU.Seconds())
		}
		r.add("7", name+fmt.Sprintf(": etcd members' CPU over the %d publishes (sum of 3)", rounds), res.busyCPU.Seconds(), "s", note)
		r.add("7", name+": etcd members' CPU with the fleet connected, idle (sum of 3)", res.idleCPU.Seconds()/res.idle.Seconds(), "CPU-s/s",
			fmt.Sprintf("over %v before the publishes: the readiness probes", res.idle))
		r.add("7", name+": watches on the members (etcd_debugging_mvcc_watcher_total, sum of 3)", res.memberWatchers, "", "")
	}
	r.note("Section 7: %d watch-only replicas in one process, each its own etcd client (own gRPC connection) running the replicas' watch-fed cache "+
		"(tokenstore.Cache, readiness probe every %v), against a 3-member cluster of etcd processes (data on disk), first spread over the members, "+
		"then all through one `etcd grpc-proxy start`; the publisher writes %d records one at a time through the leader's fenced path "+
		"(intent, then the publish transaction) straight to the members. Propagation is timed from the start of the publish transaction until "+
		"the last cache holds the record; one publish a second (later if the last watcher is slower). CPU is utime+stime of the member processes "+
		"from /proc/PID/stat, first over an idle spell with the fleet connected (the caches' quorum reads, which a proxy passes through), "+
		"then over the publishes (the publisher's own transactions and the probes included, alike in both).",
		n, tokenstore.DefaultProbeInterval, rounds)
	return nil
}

// fleetResult is what one fleet measured.
type fleetResult struct {
	first, last      []time.Duration // per publish, sorted
	window, idle     time.Duration
	busyCPU, idleCPU time.Duration // members, summed
	proxyCPU         time.Duration
	memberWatchers   float64
}

// runFleet connects n watchers, endpoint(i) for watcher i, measures the
// members' CPU during an idle spell, publishes rounds records one at a
// time, and disconnects the watchers.
func runFleet(ctx context.Context, c *etcdProcs, pub *publisher, n, rounds int, idle time.Duration, endpoint func(int) string) (*fleetResult, error) {
	t := &tally{need: n, seen: map[uint64]*sighting{}, full: map[uint64]chan struct{}{}}
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var clients []*clientv3.Client
	defer func() {
		cancel()
		wg.Wait()
		for _, cl := range clients {
			cl.Close()
		}
	}()
	seq, _, err := pub.publish(ctx)
	if err != nil {
		return nil, err
	}
	cred := tokenstore.CredName("fleet", "token")
	for i := range n {
		cl, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint(i)}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return nil, err
		}
		clients = append(clients, cl)
		cache := tokenstore.NewCache(tokenstore.CacheConfig{Client: cl, Prefix: fleetPrefix})
		wg.Go(func() { _ = cache.Run(wctx) })
		wg.Go(func() {
			var last uint64
			for {
				rec, err := cache.Wait(wctx, cred, last)
				if err != nil {
					return
				}
				t.note(rec.Seq, time.Now())
				last = rec.Seq
			}
		})
		if i%50 == 49 { // connect in steps: a thousand lists at once is a thundering herd
			if err := waitUntil(ctx, 60*time.Second, 5*time.Millisecond, "the watchers to load", func() bool { return t.count(seq) > i-10 }); err != nil {
				return nil, err
			}
		}
	}
	if err := waitUntil(ctx, 60*time.Second, 5*time.Millisecond, "every watcher to load", func() bool { return t.count(seq) == n }); err != nil {
		return nil, err
	}
	// Let every watch be established (a cache lists, then watches), then
	// take the members' CPU with the fleet connected and nothing published:
	// the readiness probes and keepalives, which pass through a proxy.
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return nil, err
	}
	res := &fleetResult{idle: idle}
	cpu0, err := c.memberCPU()
	if err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, idle); err != nil {
		return nil, err
	}
	cpu1, err := c.memberCPU()
	if err != nil {
		return nil, err
	}
	res.idleCPU = cpu1 - cpu0
	px0, _ := cpuTime(c.proxy.pid())
	start := time.Now()
	for i := range rounds {
		// One publish a second (or as soon as the last watcher has the
		// previous one): both fleets run the same probes for about as
		// long, so their members' CPU compares directly.
		if err := sleepCtx(ctx, time.Until(start.Add(time.Duration(i)*fleetPeriod))); err != nil {
			return nil, err
		}
		var at time.Time
		if seq, at, err = pub.publish(ctx); err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.done(seq):
		case <-time.After(30 * time.Second):
			return nil, fmt.Errorf("%d of %d watchers got record %d within 30 s", t.count(seq), n, seq)
		}
		g := t.get(seq)
		res.first = append(res.first, g.first.Sub(at))
		res.last = append(res.last, g.last.Sub(at))
	}
	res.window = time.Since(start)
	cpu2, err := c.memberCPU()
	if err != nil {
		return nil, err
	}
	px1, _ := cpuTime(c.proxy.pid())
	res.busyCPU, res.proxyCPU = cpu2-cpu1, px1-px0
	if res.memberWatchers, err = metric(ctx, c.clients, "etcd_debugging_mvcc_watcher_total"); err != nil {
		return nil, err
	}
	slices.Sort(res.first)
	slices.Sort(res.last)
	return res, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// tally counts, for every seq, the watchers that have it and when the
// first and the last got it. It is safe for concurrent use.
type tally struct {
	mu   sync.Mutex
	need int
	seen map[uint64]*sighting
	full map[uint64]chan struct{} // closed when need watchers have the seq
}

func (t *tally) note(seq uint64, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.seen[seq]
	if g == nil {
		g = &sighting{first: at}
		t.seen[seq] = g
	}
	g.n++
	g.last = at
	if g.n == t.need {
		close(t.doneLocked(seq))
	}
}

// done returns a channel closed when every watcher has seq.
func (t *tally) done(seq uint64) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.doneLocked(seq)
}

func (t *tally) doneLocked(seq uint64) chan struct{} {
	ch := t.full[seq]
	if ch == nil {
		ch = make(chan struct{})
		t.full[seq] = ch
	}
	return ch
}

func (t *tally) count(seq uint64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if g := t.seen[seq]; g != nil {
		return g.n
	}
	return 0
}

func (t *tally) get(seq uint64) sighting {
	t.mu.Lock()
	defer t.mu.Unlock()
	return *t.seen[seq]
}
