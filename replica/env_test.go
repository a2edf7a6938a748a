package replica_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/tests/v3/framework/integration"

	"github.com/wxtoken/wxtoken/api"
	"github.com/wxtoken/wxtoken/chaos/proxy"
	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/internal/etcdtest"
	"github.com/wxtoken/wxtoken/internal/testlog"
	"github.com/wxtoken/wxtoken/refresher"
	"github.com/wxtoken/wxtoken/replica"
)

const (
	appID  = "wxshop0000000001"
	secret = "s3cr3t-9f8e7d6c5b4a39281706"
)

// env is a real etcd cluster, the WeChat simulator and replicas.
type env struct {
	t    *testing.T
	clus *integration.Cluster
	sim  *wechattest.Server
	mu   sync.Mutex
	reps []*rep
	logs *testlog.Buffer
	// options, if set, edits the Options of every replica started.
	options func(*replica.Options)
}

// rep is one running replica.
type rep struct {
	*replica.Replica
	node   string
	etcd   *clientv3.Client
	cancel context.CancelFunc
	done   chan struct{}
}

func newEnv(t *testing.T, members int, simCfg wechattest.Config) *env {
	t.Helper()
	return envOn(t, etcdtest.NewCluster(t, members), simCfg)
}

// envOn is newEnv on the cluster clus.
func envOn(t *testing.T, clus *integration.Cluster, simCfg wechattest.Config) *env {
	t.Helper()
	sim := wechattest.NewServer(simCfg)
	t.Cleanup(sim.Close)
	sim.AddApp(appID, secret)
	e := &env{t: t, clus: clus, sim: sim, logs: &testlog.Buffer{}}
	t.Cleanup(func() {
		e.mu.Lock()
		reps := append([]*rep(nil), e.reps...)
		e.mu.Unlock()
		for _, r := range reps {
			r.stop()
		}
		if t.Failed() {
			t.Logf("replica logs:\n%s", e.logs.String())
		}
	})
	return e
}

// testConfig is a replica config on short timings; sim tokens live ttl.
func (e *env) testConfig(node string) *config.Config {
	return &config.Config{
		Node: node, Listen: "127.0.0.1:0", LogLevel: "debug",
		Etcd:     config.Etcd{Prefix: "/wxtoken", DialTimeout: 5 * time.Second},
		Election: config.Election{TTL: 2 * time.Second, Candidate: true, Holdoff: time.Minute},
		Refresh: config.Refresh{Before: 2 * time.Second, FetchTimeout: time.Second, Concurrency: 8,
			Margin: 300 * time.Millisecond, Overlap: 3 * time.Second},
		WeChat: config.WeChat{BaseURL: e.sim.URL, WeComBaseURL: e.sim.URL},
		Apps: []config.App{{Name: "shop", Kind: config.KindClassic, AppID: appID,
			Secret: config.NewSecret(secret), DailyBudget: 1000}},
	}
}

// start runs a replica on member i%members with cfg, its fetcher wrapped
// by wrap (nil: the real one).
func (e *env) start(cfg *config.Config, wrap func(refresher.Fetcher) refresher.Fetcher) *rep {
	e.t.Helper()
	i := len(e.reps) % len(e.clus.Members)
	c, err := integration.NewClientV3(e.clus.Members[i])
	if err != nil {
		e.t.Fatal(err)
	}
	// As in production: one call per fetch, so that the budget is
	// reserved before every try.
	fcfg := fetcher.Config{BaseURL: cfg.WeChat.BaseURL, WeComBaseURL: cfg.WeChat.WeComBaseURL, MaxAttempts: 1}
	if u := unsafeFromEnv(); u.BlindRetry {
		fcfg.MaxAttempts, fcfg.TryTimeout, fcfg.RetryAmbiguous = 0, cfg.Refresh.FetchTimeout/3, true
	}
	fc, err := fetcher.New(fcfg)
	if err != nil {
		e.t.Fatal(err)
	}
	var f refresher.Fetcher = fc
	if wrap != nil {
		f = wrap(f)
	}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := replica.Options{Config: cfg, Logger: log, Etcd: c, Fetcher: f, Unsafe: unsafeFromEnv()}
	if e.options != nil {
		e.options(&opts)
	}
	r, err := replica.New(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rp := &rep{Replica: r, node: cfg.Node, etcd: c, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(rp.done); _ = r.Run(ctx) }()
	e.mu.Lock()
	e.reps = append(e.reps, rp)
	e.mu.Unlock()
	return rp
}

// startBehindProxy starts a replica that serves only (no candidate) and
// dials etcd itself through a chaos proxy in front of the env's first
// member (a TCP cluster: etcdtest.NewTCPCluster), and returns both.
func (e *env) startBehindProxy(cfg *config.Config) (*rep, *proxy.Proxy) {
	e.t.Helper()
	target, ok := strings.CutPrefix(e.clus.Members[0].GRPCURL, "http://")
	if !ok {
		e.t.Fatalf("member URL %q: want http://host:port", e.clus.Members[0].GRPCURL)
	}
	p, err := proxy.Listen("127.0.0.1:0", target)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { p.Close() })
	cfg.Election.Candidate = false
	cfg.Etcd.Endpoints = []string{"http://" + p.Addr()}
	opts := e.options
	e.options = func(o *replica.Options) {
		if opts != nil {
			opts(o)
		}
		o.Etcd = nil
	}
	defer func() { e.options = opts }()
	return e.start(cfg, nil), p
}

// unsafeFromEnv switches protections off for the whole suite, to show
// which tests catch each bug: WXTOKEN_UNSAFE_OFF=drain,isolation,...
// (WXTOKEN_BREAK_INTENT=1 is the older spelling of "intent").
func unsafeFromEnv() replica.Unsafe {
	u, _ := replica.ParseUnsafe(os.Getenv("WXTOKEN_UNSAFE_OFF"))
	u.SkipIntent = u.SkipIntent || os.Getenv("WXTOKEN_BREAK_INTENT") == "1"
	return u
}

// member is the index of the etcd member r talks to.
func (e *env) member(r *rep) int {
	for i, x := range e.reps {
		if x == r {
			return i % len(e.clus.Members)
		}
	}
	panic("unknown replica")
}

// stop shuts the replica down gracefully (resign, drain).
func (r *rep) stop() {
	r.cancel()
	<-r.done
	r.Close()
	r.etcd.Close()
}

// crash stops the replica without letting it talk to etcd again: its lease
// lives on until the TTL runs out, as after kill -9.
func (r *rep) crash() {
	r.etcd.Close()
	r.cancel()
	<-r.done
	r.Close()
}

// leader waits until exactly one running replica leads, and returns it.
func (e *env) leader(d time.Duration) *rep {
	e.t.Helper()
	var found *rep
	waitFor(e.t, d, "a leader", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		found = nil
		for _, r := range e.reps {
			select {
			case <-r.done:
				continue
			default:
			}
			if r.Refresher().Metrics().Leader() {
				found = r
			}
		}
		return found != nil
	})
	return found
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// getToken reads the app's token from a replica's API.
func getToken(url, app string) (api.TokenResponse, int, error) {
	return tokenAnswer(http.Get(url + "/v1/apps/" + app + "/token"))
}

// invalidate reports token as dead to a replica's API.
func invalidate(url, app, token string) (api.TokenResponse, int, error) {
	return tokenAnswer(http.Post(url+"/v1/apps/"+app+"/token/invalidate", "application/json",
		strings.NewReader(`{"access_token":"`+token+`"}`)))
}

// tokenAnswer decodes a token answer of the API, or its error.
func tokenAnswer(resp *http.Response, err error) (api.TokenResponse, int, error) {
	var tr api.TokenResponse
	if err != nil {
		return tr, 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return tr, resp.StatusCode, fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	return tr, resp.StatusCode, json.Unmarshal(body, &tr)
}

// read is one consumer read.
type read struct {
	node  string
	at    time.Time
	token string
	seq   uint64
	err   error
}

// consumers read the token from every running replica until stopped.
type consumers struct {
	mu    sync.Mutex
	reads []read
	stop  context.CancelFunc
	done  chan struct{}
}

func (e *env) consume(app string) *consumers {
	ctx, cancel := context.WithCancel(context.Background())
	c := &consumers{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for ctx.Err() == nil {
			e.mu.Lock()
			reps := append([]*rep(nil), e.reps...)
			e.mu.Unlock()
			for _, r := range reps {
				select {
				case <-r.done:
					continue
				default:
				}
				at := time.Now()
				tr, _, err := getToken(r.URL(), app)
				c.mu.Lock()
				c.reads = append(c.reads, read{node: r.node, at: at, token: tr.AccessToken, seq: tr.Seq, err: err})
				c.mu.Unlock()
			}
			time.Sleep(5 * time.Millisecond) // pacing between rounds, not a wait
		}
	}()
	e.t.Cleanup(c.end)
	return c
}

func (c *consumers) end() {
	c.stop()
	<-c.done
}

// check ends the consumers and fails t for every read that returned a
// token the simulator says was dead when the read began, or a seq lower
// than one the same replica served before.
func (c *consumers) check(t *testing.T, sim *wechattest.Server) (ok, errs int) {
	t.Helper()
	c.end()
	last := map[string]uint64{}
	dead := 0
	for _, r := range c.reads {
		if r.err != nil {
			errs++
			continue
		}
		if !sim.Valid(r.token, r.at) {
			dead++
			if dead <= 5 {
				t.Errorf("%s served a dead token (seq %d) at %s", r.node, r.seq, r.at.Format("15:04:05.000"))
			}
		} else {
			ok++
		}
		if r.seq < last[r.node] {
			t.Errorf("%s served seq %d after seq %d", r.node, r.seq, last[r.node])
		}
		last[r.node] = r.seq
	}
	if dead > 0 {
		t.Errorf("%d of %d reads returned a dead token", dead, len(c.reads))
	}
	t.Logf("consumer reads: %d valid, %d errors, %d dead", ok, errs, dead)
	return ok, errs
}

// fetches returns the simulator's ledger lines for classic tokens of app.
func fetches(sim *wechattest.Server) []wechattest.Fetch {
	var out []wechattest.Fetch
	for _, f := range sim.Ledger() {
		if f.AppID == appID && f.Kind == "classic" {
			out = append(out, f)
		}
	}
	return out
}

// checkNoOverlap fails t if two fetches were in flight at the same time.
func checkNoOverlap(t *testing.T, fs []wechattest.Fetch) {
	t.Helper()
	for i := range fs {
		for j := i + 1; j < len(fs); j++ {
			a, b := fs[i], fs[j]
			if a.Start.Before(b.At) && b.Start.Before(a.At) {
				t.Errorf("concurrent fetches: [%s, %s] and [%s, %s]", a.Start.Format("15:04:05.000"), a.At.Format("15:04:05.000"),
					b.Start.Format("15:04:05.000"), b.At.Format("15:04:05.000"))
			}
		}
	}
}
