package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/client"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
)

// sidecarEnv is how a sidecar runs as deployed (README, Performance): one
// P, so that net/http's per-request goroutine handoffs stay on one thread
// instead of waking another; the reference servers get it too.
const sidecarEnv = "GOMAXPROCS=1"

// redisValueLen is the size of the value the Redis side reads: a WeChat
// access token is 136 to 157 characters; the simulator's are 144.
const redisValueLen = 160

// readSection measures token reads over HTTP from a real `wxtoken serve`
// process, on loopback and on its unix socket as an app on its host reads
// it, against GETs from Redis as an app would use it (on another host: a
// container on a Docker network), and from a redis-server on the same
// transports as the replica, all with the same load generator; and the Go
// client's cached read (sections 1 and 2).
func (e *env) readSection(ctx context.Context, r *Report) error {
	sim := wechattest.NewServer(wechattest.Config{})
	defer sim.Close()
	apps := benchApps("read", 1)
	addApps(sim, apps)
	// read-1 leads (it fetches); the sidecars follow it, serve-only as an
	// app's sidecar is: read-2 as deployed (GOMAXPROCS=1, see
	// sidecarEnv), read-3 with Go's default GOMAXPROCS, to show what that
	// setting is worth.
	leader, err := e.startNode(ctx, procConfig{Node: "read-1", Prefix: "/bench-read", Candidate: true,
		TTL: 10 * time.Second, Concurrency: 8, SimURL: sim.URL, Apps: apps})
	if err != nil {
		return err
	}
	defer leader.stop(10 * time.Second)
	sock, sockDefault := e.dir+"/read-2.sock", e.dir+"/read-3.sock"
	node, err := e.startNode(ctx, procConfig{Node: "read-2", Prefix: "/bench-read", TTL: 10 * time.Second,
		Concurrency: 8, SimURL: sim.URL, Apps: apps, ListenUnix: sock, Env: []string{sidecarEnv}})
	if err != nil {
		return err
	}
	defer node.stop(10 * time.Second)
	def, err := e.startNode(ctx, procConfig{Node: "read-3", Prefix: "/bench-read", TTL: 10 * time.Second,
		Concurrency: 8, SimURL: sim.URL, Apps: apps, ListenUnix: sockDefault})
	if err != nil {
		return err
	}
	defer def.stop(10 * time.Second)
	path := "/v1/apps/" + apps[0].Name + "/token"
	hc := &http.Client{Timeout: 5 * time.Second}
	var body string
	for _, n := range []*wxtokenProc{node, def} {
		if err := waitUntil(ctx, 30*time.Second, 10*time.Millisecond, n.name+" to serve a token", func() bool {
			code, b, err := httpStatus(ctx, hc, n.url+path)
			body = b
			return err == nil && code == 200
		}); err != nil {
			return err
		}
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
	value := (tok.AccessToken + strings.Repeat("x", redisValueLen))[:redisValueLen]
	if err := setRedis(rs.addr, key, value); err != nil {
		return err
	}
	deployed := "redis-net"
	var rc *redisContainer
	if e.opts.redisImage == "" {
		fmt.Fprintln(os.Stderr, "bench: read: -redis-image is empty: Redis on loopback stands in for Redis as deployed")
	} else {
		fmt.Fprintf(os.Stderr, "bench: read: starting Redis (%s) on a Docker network of its own\n", e.opts.redisImage)
		if rc, err = startRedisContainer(ctx, e.opts.redisImage); err != nil {
			if !errors.Is(err, errNoDocker) {
				return err
			}
			fmt.Fprintf(os.Stderr, "bench: read: %v: Redis on loopback stands in for Redis as deployed\n", err)
		}
	}
	if rc != nil {
		defer rc.stop()
		if err := setRedis(rc.addr, key, value); err != nil {
			return err
		}
	} else {
		deployed = "redis-tcp"
	}

	nethttp, nethttpAddr, err := e.startReference(refNetHTTP, []byte(body), sidecarEnv)
	if err != nil {
		return err
	}
	defer nethttp.stop(5 * time.Second)
	raw, rawAddr, err := e.startReference(refRaw, []byte(body), sidecarEnv)
	if err != nil {
		return err
	}
	defer raw.stop(5 * time.Second)

	targets := []readTarget{
		{"wxtoken-unix", func() (conn, error) { return dialHTTP(unixPrefix+sock, path) }},
		{"wxtoken-tcp", func() (conn, error) { return dialHTTP(node.addr, path) }},
		{"wxtoken-unix-default", func() (conn, error) { return dialHTTP(unixPrefix+sockDefault, path) }},
		{"redis-unix", func() (conn, error) { return dialRedis(rs.unix, key) }},
		{"redis-tcp", func() (conn, error) { return dialRedis(rs.addr, key) }},
		{refNetHTTP, func() (conn, error) { return dialHTTP(nethttpAddr, path) }},
		{refRaw, func() (conn, error) { return dialHTTP(rawAddr, path) }},
	}
	if rc != nil {
		targets = append(targets, readTarget{"redis-net", func() (conn, error) { return dialRedis(rc.addr, key) }})
	}
	rounds, warm, round := 10, 100*time.Millisecond, e.opts.loadDuration/10
	if e.opts.quick {
		rounds, round = 2, e.opts.loadDuration/2
	}
	for _, workers := range []int{1, 50} {
		res, err := measure(ctx, targets, workers, rounds, warm, round)
		if err != nil {
			for _, p := range []*proc{node.proc, def.proc, rs.proc, nethttp, raw} {
				if p.exited() { // say which server died under the load
					err = fmt.Errorf("%w (%s exited: %v; log: %s)", err, p.cmd.Path, p.cmd.ProcessState, p.logPath)
				}
			}
			return err
		}
		readRows(r, res, workers, deployed, e.opts.cpus)
	}
	where := "in a container (" + e.opts.redisImage + ", built FROM scratch from Debian's redis-server) on a Docker bridge network of the runner's own, " +
		"read at the container's address (as deployed: another host; here the same CPUs, across a veth pair and the bridge)"
	if rc == nil {
		where = "missing (no Docker), so the loopback redis-server stands in for it: NOT as deployed"
	}
	r.note("Section 1: a serve-only `wxtoken serve` sidecar as deployed (%s), read on loopback TCP and on its unix socket (listen_unix), "+
		"beside an untuned one (Go's default GOMAXPROCS) and the leader they follow; Redis as deployed: %s; "+
		"a redis-server %s (no persistence) on loopback TCP and on a unix socket for the same-transport ratios; two reference servers on loopback "+
		"(separate processes answering the replica's exact token answer: a net/http server with the least handler possible, and a bare "+
		"HTTP/1.1 loop on TCP in Go; %s like the sidecar); all on the machine that runs the load generator (%d CPUs for everything); "+
		"%d interleaved rounds of %v per target, each after %v of warm-up, on persistent connections with one request in flight per connection; "+
		"every target is read with the same minimal client (prepared request bytes, one write, a buffered read of the whole answer).",
		sidecarEnv, where, strings.TrimPrefix(rs.version, "redis "), sidecarEnv, e.opts.cpus, rounds, round, warm)
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
