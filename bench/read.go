package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/client"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
)

// redisValueLen is the size of the value the Redis side reads: a WeChat
// access token is 136 to 157 characters; the simulator's are 144.
const redisValueLen = 160

// readSection measures token reads over HTTP from a real `wxtoken serve`
// process against GETs from a real redis-server, with the same load
// generator, and the Go client's cached read (sections 1 and 2).
func (e *env) readSection(ctx context.Context, r *Report) error {
	sim := wechattest.NewServer(wechattest.Config{})
	defer sim.Close()
	apps := benchApps("read", 1)
	addApps(sim, apps)
	node, err := e.startNode(ctx, procConfig{Node: "read-1", Prefix: "/bench-read", Candidate: true,
		TTL: 10 * time.Second, Concurrency: 8, SimURL: sim.URL, Apps: apps})
	if err != nil {
		return err
	}
	defer node.stop(10 * time.Second)
	path := "/v1/apps/" + apps[0].Name + "/token"
	hc := &http.Client{Timeout: 5 * time.Second}
	var body string
	if err := waitUntil(ctx, 30*time.Second, 10*time.Millisecond, "the replica to serve a token", func() bool {
		code, b, err := httpStatus(ctx, hc, node.url+path)
		body = b
		return err == nil && code == 200
	}); err != nil {
		return err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(body), &tok); err != nil || tok.AccessToken == "" {
		return fmt.Errorf("token answer %q: %v", body, err)
	}

	// Section 2 needs no Redis: measure it first, list it after section 1.
	var two Report
	if err := e.clientSection(ctx, &two, node.url, apps[0].Name); err != nil {
		return err
	}
	defer func() { r.Rows = append(r.Rows, two.Rows...) }()

	rs, err := startRedis(ctx, e.dir+"/redis")
	if err != nil {
		return err
	}
	defer rs.stop()
	r.Host.Redis = rs.version
	const key = "wechat:access_token:" + "wxread00000001"
	value := tok.AccessToken + strings.Repeat("x", redisValueLen)
	if err := rs.set(key, value[:redisValueLen]); err != nil {
		return err
	}

	nethttp, nethttpAddr, err := e.startReference(refNetHTTP, []byte(body))
	if err != nil {
		return err
	}
	defer nethttp.stop(5 * time.Second)
	raw, rawAddr, err := e.startReference(refRaw, []byte(body))
	if err != nil {
		return err
	}
	defer raw.stop(5 * time.Second)

	targets := []struct {
		name string
		dial func() (conn, error)
	}{
		{"wxtoken", func() (conn, error) { return dialHTTP(node.addr, path) }},
		{"redis", func() (conn, error) { return dialRedis(rs.addr, key) }},
		{refNetHTTP, func() (conn, error) { return dialHTTP(nethttpAddr, path) }},
		{refRaw, func() (conn, error) { return dialHTTP(rawAddr, path) }},
	}
	rounds, warm, round := 5, 200*time.Millisecond, e.opts.loadDuration/5
	if e.opts.quick {
		rounds, round = 2, e.opts.loadDuration/2
	}
	for _, workers := range []int{1, 50} {
		gens := make([]*loadGen, len(targets))
		for i, t := range targets {
			g, err := newLoadGen(workers, t.dial)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			defer g.Close()
			gens[i] = g
		}
		// Interleaved rounds: a noisy moment of the machine falls on every
		// target alike.
		for range rounds {
			for i, g := range gens {
				if err := g.run(ctx, warm, round); err != nil {
					return fmt.Errorf("%s: %w", targets[i].name, err)
				}
			}
		}
		res := make(map[string]Load, len(targets))
		for i, g := range gens {
			l, err := g.result()
			if err != nil {
				return fmt.Errorf("%s: %w", targets[i].name, err)
			}
			res[targets[i].name] = l
		}
		h, rd := res["wxtoken"], res["redis"]
		c := fmt.Sprint(workers)
		r.add("1", "HTTP token read, c="+c+": throughput", h.RPS, "req/s", "")
		r.add("1", "HTTP token read, c="+c+": p50", us(h.P50), "µs", "")
		if workers == 50 {
			r.check("1", "HTTP token read, c=50: p99", ms(h.P99), "ms", "<", 1, "")
		} else {
			r.add("1", "HTTP token read, c="+c+": p99", ms(h.P99), "ms", "")
		}
		r.add("1", "Redis GET 160 B, c="+c+": throughput", rd.RPS, "req/s", "")
		r.add("1", "Redis GET 160 B, c="+c+": p50", us(rd.P50), "µs", "")
		r.add("1", "Redis GET 160 B, c="+c+": p99", ms(rd.P99), "ms", "")
		r.check("1", "HTTP / Redis throughput, c="+c, h.RPS/rd.RPS, "x", ">=", 1, "")
		for _, ref := range []struct{ name, what string }{
			{refNetHTTP, "net/http, least handler"},
			{refRaw, "bare HTTP/1.1 loop in Go"},
		} {
			l := res[ref.name]
			r.add("1", fmt.Sprintf("Reference, %s, same answer, c=%s: throughput", ref.what, c), l.RPS, "req/s",
				fmt.Sprintf("p50 %.0f µs, p99 %.2f ms, %.2fx Redis", us(l.P50), ms(l.P99), l.RPS/rd.RPS))
		}
	}
	r.note("Section 1: one `wxtoken serve` process (its API on loopback), one redis-server %s (no persistence) and two reference servers "+
		"(separate processes answering the replica's exact token answer: a net/http server with the least handler possible, and a bare "+
		"HTTP/1.1 loop on TCP in Go), all on the machine that runs the load generator (%d CPUs for everything); "+
		"%d interleaved rounds of %v per target, each after %v of warm-up, on persistent connections with one request in flight per connection; "+
		"every target is read with the same minimal client (prepared request bytes, one write, a buffered read of the whole answer).",
		strings.TrimPrefix(rs.version, "redis "), e.opts.cpus, rounds, round, warm)
	return nil
}

// clientSection measures the Go client's cached read (section 2).
func (e *env) clientSection(ctx context.Context, r *Report, url, app string) error {
	c, err := client.New(client.Config{BaseURL: url})
	if err != nil {
		return err
	}
	if _, err := c.Token(ctx, app); err != nil {
		return err
	}
	var failed error
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := c.Token(ctx, app); err != nil {
				failed = err
				b.FailNow()
			}
		}
	})
	if failed != nil {
		return failed
	}
	par := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Token(ctx, app); err != nil {
					failed = err
					return
				}
			}
		})
	})
	if failed != nil {
		return failed
	}
	r.check("2", "Go client cached Token read", float64(res.NsPerOp()), "ns/op", "<", 50, "")
	r.check("2", "Go client cached Token read: allocations", float64(res.AllocsPerOp()), "allocs/op", "<=", 0, "")
	r.add("2", fmt.Sprintf("Go client cached Token read, %d goroutines in parallel", e.opts.cpus), float64(par.T.Nanoseconds())/float64(par.N), "ns/op", "")
	return nil
}
