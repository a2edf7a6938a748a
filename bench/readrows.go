package main

import (
	"context"
	"fmt"
	"time"
)

// readTarget is a server the read section measures.
type readTarget struct {
	name string
	dial func() (conn, error)
}

// measure reads every target with workers connections each, in rounds
// interleaved so that a noisy moment of the machine falls on every target
// alike, and returns the loads by target name.
func measure(ctx context.Context, targets []readTarget, workers, rounds int, warm, round time.Duration) (map[string]Load, error) {
	gens := make([]*loadGen, len(targets))
	defer func() {
		for _, g := range gens {
			if g != nil {
				g.Close()
			}
		}
	}()
	for i, t := range targets {
		g, err := newLoadGen(workers, t.dial)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		gens[i] = g
	}
	for range rounds {
		for i, g := range gens {
			if err := g.run(ctx, warm, round); err != nil {
				return nil, fmt.Errorf("%s: %w", targets[i].name, err)
			}
		}
	}
	res := make(map[string]Load, len(targets))
	for i, g := range gens {
		l, err := g.result()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", targets[i].name, err)
		}
		res[targets[i].name] = l
	}
	return res, nil
}

// readRows adds section 1's rows for one concurrency; deployed names the
// target that stands for Redis as deployed, cpus is Go's default
// GOMAXPROCS here.
func readRows(r *Report, res map[string]Load, workers int, deployed string, cpus int) {
	c := fmt.Sprint(workers)
	lat := func(l Load) string { return fmt.Sprintf("p50 %.0f µs, p99 %.2f ms", us(l.P50), ms(l.P99)) }
	three := func(name string, l Load, p99Target bool) {
		r.add("1", name+", c="+c+": throughput", l.RPS, "req/s", "")
		r.add("1", name+", c="+c+": p50", us(l.P50), "µs", "")
		if p99Target {
			r.check("1", name+", c="+c+": p99", ms(l.P99), "ms", "<", 1, "")
		} else {
			r.add("1", name+", c="+c+": p99", ms(l.P99), "ms", "")
		}
	}
	dep := res[deployed]
	depName, depWhat := "Redis GET 160 B, Redis on a container network (as deployed)", "Redis as deployed"
	if deployed != "redis-net" {
		depName, depWhat = "Redis GET 160 B, Redis on loopback (NOT as deployed: no Docker)", "Redis on loopback (NOT as deployed)"
	}
	three("HTTP token read, sidecar on its unix socket", res["wxtoken-unix"], false)
	three("HTTP token read, sidecar on loopback", res["wxtoken-tcp"], workers == 50)
	three(depName, dep, false)
	r.check("1", "Sidecar (unix socket) / "+depWhat+", c="+c, res["wxtoken-unix"].RPS/dep.RPS, "x", ">=", 1, "")
	r.check("1", "Sidecar (loopback) / "+depWhat+", c="+c, res["wxtoken-tcp"].RPS/dep.RPS, "x", ">=", 1, "")
	d := res["wxtoken-unix-default"]
	r.add("1", fmt.Sprintf("Untuned: sidecar with Go's default GOMAXPROCS (%d) on its unix socket, c=%s: throughput", cpus, c), d.RPS, "req/s",
		fmt.Sprintf("%s, %.2fx %s", lat(d), d.RPS/dep.RPS, depWhat))
	for _, same := range []struct{ what, http, redis string }{
		{"both on loopback", "wxtoken-tcp", "redis-tcp"},
		{"both on unix sockets", "wxtoken-unix", "redis-unix"},
	} {
		rd := res[same.redis]
		r.add("1", "Same transport, "+same.what+": sidecar / Redis, c="+c, res[same.http].RPS/rd.RPS, "x",
			fmt.Sprintf("Redis %.0f req/s, %s", rd.RPS, lat(rd)))
	}
	for _, ref := range []struct{ name, what string }{
		{refNetHTTP, "net/http, least handler"},
		{refRaw, "bare HTTP/1.1 loop in Go"},
	} {
		l := res[ref.name]
		r.add("1", fmt.Sprintf("Reference on loopback, %s, same answer, c=%s: throughput", ref.what, c), l.RPS, "req/s",
			fmt.Sprintf("%s, %.2fx Redis on loopback", lat(l), l.RPS/res["redis-tcp"].RPS))
	}
}
