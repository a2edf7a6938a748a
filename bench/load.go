package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// conn is one load worker's persistent connection: do sends one request
// and reads its whole answer. A conn is used by one goroutine at a time.
type conn interface {
	do() error
	Close() error
}

// Load is what the load generator measured on one target.
type Load struct {
	Workers  int           `json:"workers"`
	Duration time.Duration `json:"duration_ns"`
	Requests int           `json:"requests"`
	RPS      float64       `json:"rps"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	Max      time.Duration `json:"max_ns"`
}

// loadGen is one target's persistent connections, one worker each, and
// the latencies they measured over any number of runs. Runs on several
// targets can be interleaved, so that a noisy moment of the machine falls
// on all of them alike.
type loadGen struct {
	conns []conn
	lat   []time.Duration
	dur   time.Duration
}

// newLoadGen opens workers connections with dial, each checked with one
// request: a server may close a connection that has sent nothing yet
// sooner than an idle one (net/http's ReadHeaderTimeout), and the first
// run may come long after.
func newLoadGen(workers int, dial func() (conn, error)) (*loadGen, error) {
	g := &loadGen{}
	for range workers {
		c, err := dial()
		if err == nil {
			g.conns = append(g.conns, c)
			err = c.do()
		}
		if err != nil {
			g.Close()
			return nil, err
		}
	}
	return g, nil
}

// Close closes the connections.
func (g *loadGen) Close() {
	for _, c := range g.conns {
		c.Close()
	}
}

// run lets every worker send requests back to back (one in flight per
// connection) for warm+dur, and keeps the latencies of the requests that
// start within the last dur. Any error ends the run.
func (g *loadGen) run(ctx context.Context, warm, dur time.Duration) error {
	start := time.Now()
	from, end := start.Add(warm), start.Add(warm+dur)
	lat := make([][]time.Duration, len(g.conns))
	errs := make([]error, len(g.conns))
	var wg sync.WaitGroup
	for i, c := range g.conns {
		wg.Go(func() {
			own := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				if err := c.do(); err != nil {
					errs[i] = err
					return
				}
				if !t0.Before(from) {
					own = append(own, time.Since(t0))
				}
			}
			lat[i] = own
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	g.lat = slices.Concat(append(lat, g.lat)...)
	g.dur += dur
	return nil
}

// result sums up every run so far.
func (g *loadGen) result() (Load, error) {
	if len(g.lat) == 0 {
		return Load{}, fmt.Errorf("load: no request completed")
	}
	all := slices.Clone(g.lat)
	slices.Sort(all)
	return Load{
		Workers: len(g.conns), Duration: g.dur, Requests: len(all),
		RPS: float64(len(all)) / g.dur.Seconds(),
		P50: quantile(all, 0.50), P99: quantile(all, 0.99), Max: all[len(all)-1],
	}, nil
}

// quantile returns the q-quantile of sorted (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
