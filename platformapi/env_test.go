package platformapi_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/api"
	"github.com/wxtoken/wxtoken/election"
	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/internal/etcdtest"
	"github.com/wxtoken/wxtoken/internal/testlog"
	"github.com/wxtoken/wxtoken/platformapi"
	"github.com/wxtoken/wxtoken/seal"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// The tests run the routes on an API over a real etcd, with no leader:
// the test publishes records, states and infos through the store as the
// leader and the event URL would, and answers reports by hand.

const (
	testPrefix = "/w"
	plat       = "saas"
	compID     = "wxcomp0000000001"
	compSecret = "comp-secret-7d1e"
	authz      = "wxauth0000000001"
	testApp    = "shop"
)

// env is the platform routes mounted on an API over a real etcd, and a
// WeChat simulator for the pre-auth codes.
type env struct {
	t      *testing.T
	store  *tokenstore.Store
	cache  *tokenstore.Cache
	api    *api.API
	sim    *wechattest.Sim
	simURL string
	guard  *election.Guard // fences the test's leader writes
	logs   *testlog.Buffer

	mu      sync.Mutex
	secrets []string // values that must never be logged nor put in an error
	errs    []string // bodies of every error answer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	key := make([]byte, seal.KeySize)
	_, _ = rand.Read(key)
	k, err := seal.NewKey(key)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := seal.NewRing(k)
	if err != nil {
		t.Fatal(err)
	}
	sl := tokenstore.Sealing{Sealer: ring}
	e := &env{t: t, store: tokenstore.New(c, testPrefix), logs: &testlog.Buffer{}}
	e.store.SetSealing(sl)
	e.cache = tokenstore.NewCache(tokenstore.CacheConfig{Client: c, Prefix: testPrefix, Sealing: sl})
	cctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.cache.Run(cctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-e.cache.Loaded():
	case <-time.After(10 * time.Second):
		t.Fatal("cache never loaded")
	}
	resp, err := c.Put(ctx(t), testPrefix+"/election/test", "test")
	if err != nil {
		t.Fatal(err)
	}
	e.guard = election.NewGuard(testPrefix+"/election/test", resp.Header.Revision, time.Now().Add(time.Hour))

	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.api, err = api.New(api.Config{Cache: e.cache, Store: e.store, Node: "node-a", Logger: log, InvalidateWait: 10 * time.Second,
		Apps: []api.App{{Name: testApp, Kind: "classic", AppID: "wx0000000000000001"}}})
	if err != nil {
		t.Fatal(err)
	}
	e.sim = wechattest.New(wechattest.Config{})
	if err := e.sim.AddPlatform(wechattest.Platform{AppID: compID, Secret: compSecret, Token: "msgtoken",
		EncodingAESKey: "Q0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaMDEyMzQ1Njc", TicketEvery: -1}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e.sim)
	t.Cleanup(srv.Close)
	e.simURL = srv.URL
	fc, err := fetcher.New(fetcher.Config{BaseURL: srv.URL, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	h, err := platformapi.New(platformapi.Config{Platforms: []platformapi.Platform{{Name: plat, ComponentAppID: compID}},
		Tokens: e.api, Records: e.cache, Store: e.store, PreAuth: fc, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e.api.Mount(h.Routes()...)
	t.Cleanup(e.checkSecrets)
	return e
}

func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// secret notes values that must appear in no log line and no error body.
func (e *env) secret(vals ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.secrets = append(e.secrets, vals...)
}

// checkSecrets fails the test if a secret is in the logs or an error.
func (e *env) checkSecrets() {
	e.mu.Lock()
	defer e.mu.Unlock()
	logs := e.logs.String()
	for _, s := range e.secrets {
		if s == "" {
			continue
		}
		if strings.Contains(logs, s) {
			e.t.Errorf("a secret is in the logs: %q", s)
		}
		for _, b := range e.errs {
			if strings.Contains(b, s) {
				e.t.Errorf("a secret is in an error answer: %q in %s", s, b)
			}
		}
	}
}

// record is a fresh record of cred holding value.
func record(cred, value string, seq uint64) tokenstore.Record {
	now := time.Now()
	return tokenstore.Record{Cred: cred, Value: value, Seq: seq, FetchedAt: now, ExpiresAt: now.Add(2 * time.Hour),
		RefreshAt: now.Add(110 * time.Minute), Node: "leader"}
}

// publish stores rec as the leader would and waits until the cache has it.
func (e *env) publish(rec tokenstore.Record) {
	e.t.Helper()
	e.secret(rec.Value)
	if err := e.store.PublishUnfenced(ctx(e.t), rec); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.cache.Wait(ctx(e.t), rec.Cred, rec.Seq-1); err != nil {
		e.t.Fatalf("cache never saw seq %d of %s: %v", rec.Seq, rec.Cred, err)
	}
}

// state stores an authorizer's state as the event URL does.
func (e *env) state(appID, state string, at time.Time) {
	e.t.Helper()
	if _, err := e.store.PutAuthorizerState(ctx(e.t), plat, tokenstore.AuthorizerState{AppID: appID, State: state, At: at, Node: "node-a"}); err != nil {
		e.t.Fatal(err)
	}
}

// answer is one HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// code is the error code of an error answer.
func (a answer) code() string {
	var e struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(a.body, &e)
	return e.Code
}

// do sends a request to the API, as a client would (JSON body for a
// POST), and keeps the bodies of error answers.
func (e *env) do(method, target, body string) answer {
	e.t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if method == http.MethodPost {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	e.api.ServeHTTP(w, r)
	a := answer{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
	if a.status != http.StatusOK {
		e.mu.Lock()
		e.errs = append(e.errs, string(a.body))
		e.mu.Unlock()
	}
	return a
}

// want fails the test unless a has status and, for an error, code.
func want(t *testing.T, what string, a answer, status int, code string) {
	t.Helper()
	if a.status != status || (code != "" && a.code() != code) {
		t.Fatalf("%s: got %d %s, want %d %s", what, a.status, a.body, status, code)
	}
}

// waitFor polls cond until it holds, for at most 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
