// Package replicatest runs a whole wxtoken replica (embedded etcd, leader,
// cache, API) against the in-process WeChat simulator, for the tests of the
// packages that talk to a replica: the client, the proxy, the CLI.
package replicatest

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/replica"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// The default app: classic, with a jsapi ticket.
const (
	App    = "demo"
	AppID  = "wxtest0000000001"
	Secret = "test-secret-0001"
)

// Options change the replica an Env runs.
type Options struct {
	// Apps default to App (classic, jsapi ticket). Each appid is added to
	// the simulator with its secret.
	Apps []config.App
	// Edit, if set, changes the config before the replica starts.
	Edit func(*config.Config)
}

// Env is a running replica on a simulator whose clock is Clock. Start
// stops it when the test ends.
type Env struct {
	Replica *replica.Replica
	Sim     *wechattest.Server
	// Clock drives the simulator (not the replica): advance it to let
	// tokens die.
	Clock  *wechattest.FakeClock
	Config *config.Config
	// URL is the replica's API.
	URL string
}

// Start runs a replica and waits until every credential of every app is
// published.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	clock := wechattest.NewFakeClock(time.Now())
	sim := wechattest.NewServer(wechattest.Config{Now: clock.Now})
	t.Cleanup(sim.Close)
	apps := opts.Apps
	if apps == nil {
		apps = []config.App{{Name: App, Kind: config.KindClassic, AppID: AppID, Secret: config.NewSecret(Secret),
			DailyBudget: config.DefaultDailyBudget, Tickets: []string{config.TicketJSAPI}}}
	}
	for _, a := range apps {
		if a.Kind == config.KindWeCom {
			sim.AddCorp(a.AppID, a.Secret.Reveal())
		} else {
			sim.AddApp(a.AppID, a.Secret.Reveal())
		}
	}
	cfg := &config.Config{
		Node: "test-replica", Listen: "127.0.0.1:0", DataDir: t.TempDir(), LogLevel: "info",
		Etcd:     config.Etcd{Prefix: config.DefaultEtcdPrefix, DialTimeout: config.DefaultDialTimeout},
		Election: config.Election{TTL: config.MinTTL, Candidate: true, Holdoff: config.DefaultHoldoff},
		Refresh: config.Refresh{Before: config.DefaultBefore, Jitter: config.DefaultJitter, FetchTimeout: 10 * time.Second,
			Concurrency: config.DefaultConcurrency, Margin: config.DefaultMargin, Overlap: wechattest.DefaultOverlap},
		WeChat: config.WeChat{BaseURL: sim.URL, WeComBaseURL: sim.URL},
		Apps:   apps,
	}
	if opts.Edit != nil {
		opts.Edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("replicatest: config: %v", err)
	}
	r, err := replica.New(replica.Options{Config: cfg})
	if err != nil {
		t.Fatalf("replicatest: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("replica Run: %v", err)
		}
		r.Close()
	})
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	for _, a := range apps {
		for _, what := range append([]string{"token"}, a.Tickets...) {
			if _, err := r.Cache().Wait(wctx, tokenstore.CredName(a.Name, what), 0); err != nil {
				t.Fatalf("replicatest: no %s for %s: %v", what, a.Name, err)
			}
		}
	}
	return &Env{Replica: r, Sim: sim, Clock: clock, Config: cfg, URL: r.URL()}
}

// Current is the record the replica serves for app's cred ("token" or a
// ticket type).
func (e *Env) Current(t testing.TB, app, what string) tokenstore.Record {
	t.Helper()
	rec, ok := e.Replica.Cache().Get(tokenstore.CredName(app, what))
	if !ok {
		t.Fatalf("replicatest: no %s for %s", what, app)
	}
	return rec
}

// KillToken makes the classic token the replica serves for app dead at
// WeChat, the way another host's fetch would: it fetches a new token
// straight from the simulator and moves the simulator's clock past the
// overlap. The replica is not told. It returns the token it fetched.
func (e *Env) KillToken(t testing.TB, app string) string {
	t.Helper()
	a, ok := e.Config.App(app)
	if !ok {
		t.Fatalf("replicatest: no app %s", app)
	}
	served := e.Current(t, app, "token").Value
	q := url.Values{"grant_type": {"client_credential"}, "appid": {a.AppID}, "secret": {a.Secret.Reveal()}}
	resp, err := http.Get(e.Sim.URL + "/cgi-bin/token?" + q.Encode())
	if err != nil {
		t.Fatalf("replicatest: fetch a stray token: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	stray := e.Sim.Current(a.AppID, wechattest.KindClassic)
	e.Clock.Advance(wechattest.DefaultOverlap + time.Second)
	if e.Sim.Valid(served, e.Clock.Now()) {
		t.Fatalf("replicatest: the served token is still valid after a stray fetch")
	}
	return stray
}

// Fetches counts the simulator's token fetches of kind for appid, whatever
// their outcome.
func (e *Env) Fetches(appID, kind string) int {
	n := 0
	for _, f := range e.Sim.Ledger() {
		if f.Kind == kind && f.AppID == appID {
			n++
		}
	}
	return n
}
