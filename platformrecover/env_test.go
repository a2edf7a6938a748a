package platformrecover_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/internal/etcdtest"
	"github.com/wxtoken/wxtoken/internal/testlog"
	"github.com/wxtoken/wxtoken/platformrecover"
	"github.com/wxtoken/wxtoken/seal"
	"github.com/wxtoken/wxtoken/tokenstore"
)

const (
	plat       = "saas"
	compID     = "wxcomp0000000001"
	compSecret = "comp-secret-7d1e"
)

// env is a sealed store on a real etcd and the WeChat simulator with one
// platform.
type env struct {
	t     *testing.T
	etcd  *clientv3.Client
	store *tokenstore.Store
	sim   *wechattest.Sim
	fc    *fetcher.Client
	logs  *testlog.Buffer
	comp  string // the component token stored in etcd
}

func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newSim is the simulator with the platform, served over HTTP, and a
// fetcher on it.
func newSim(t *testing.T, p wechattest.Platform) (*wechattest.Sim, *fetcher.Client) {
	t.Helper()
	sim := wechattest.New(wechattest.Config{})
	p.AppID, p.Secret, p.Token, p.EncodingAESKey, p.TicketEvery = compID, compSecret, "msgtoken", "Q0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaMDEyMzQ1Njc", -1
	if err := sim.AddPlatform(p); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	fc, err := fetcher.New(fetcher.Config{BaseURL: srv.URL, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	return sim, fc
}

// newEnv also stores a component token, as a leader would have.
func newEnv(t *testing.T, p wechattest.Platform) *env {
	t.Helper()
	clus := etcdtest.NewCluster(t, 1)
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
	e := &env{t: t, etcd: clus.Client(0), store: tokenstore.New(clus.Client(0), "/w"), logs: &testlog.Buffer{}}
	e.store.SetSealing(tokenstore.Sealing{Sealer: ring})
	e.sim, e.fc = newSim(t, p)
	push, _ := e.sim.PushTicket(ctx(t), compID) // no push URL: the ticket is minted all the same
	tok, err := e.fc.ComponentToken(ctx(t), compID, compSecret, push.Ticket)
	if err != nil {
		t.Fatal(err)
	}
	e.comp = tok.Value
	now := time.Now()
	if err := e.store.PublishUnfenced(ctx(t), tokenstore.Record{Cred: tokenstore.ComponentCred(plat), Value: tok.Value, Seq: 1,
		FetchedAt: now, ExpiresAt: now.Add(tok.ExpiresIn), RefreshAt: now.Add(tok.ExpiresIn - 10*time.Minute)}); err != nil {
		t.Fatal(err)
	}
	return e
}

// config is the Recover config of the env, with lister (nil: the
// simulator's).
func (e *env) config(lister platformrecover.Lister) platformrecover.Config {
	if lister == nil {
		lister = e.fc
	}
	return platformrecover.Config{Platform: plat, ComponentAppID: compID, Store: e.store, Lister: lister, Node: "recover-test",
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
}

// seed makes appID authorized on the simulator with an exchanged code and
// returns its refresh token.
func (e *env) seed(appID string) string {
	e.t.Helper()
	rt, err := e.sim.SeedAuthorizer(compID, appID)
	if err != nil {
		e.t.Fatal(err)
	}
	return rt
}

// putRefresh stores t as appID's refresh token over what is there.
func (e *env) putRefresh(appID string, t tokenstore.RefreshToken) int64 {
	e.t.Helper()
	cred := tokenstore.AuthorizerCred(plat, appID)
	cur, _, _ := e.store.RefreshToken(ctx(e.t), cred)
	if err := e.store.PutRefreshToken(ctx(e.t), nil, cred, t, cur.Rev); err != nil {
		e.t.Fatal(err)
	}
	got, _, err := e.store.RefreshToken(ctx(e.t), cred)
	if err != nil {
		e.t.Fatal(err)
	}
	return got.Rev
}

// refresh is appID's stored refresh token.
func (e *env) refresh(appID string) (tokenstore.RefreshToken, bool) {
	e.t.Helper()
	t, ok, err := e.store.RefreshToken(ctx(e.t), tokenstore.AuthorizerCred(plat, appID))
	if err != nil {
		e.t.Fatalf("refresh token of %s: %v", appID, err)
	}
	return t, ok
}

// noSecrets fails the test if one of vals is in the logs or, in the
// clear, anywhere in etcd.
func (e *env) noSecrets(vals ...string) {
	e.t.Helper()
	resp, err := e.etcd.Get(ctx(e.t), "\x00", clientv3.WithFromKey())
	if err != nil {
		e.t.Fatal(err)
	}
	logs := e.logs.String()
	for _, v := range vals {
		if strings.Contains(logs, v) {
			e.t.Errorf("a secret is in the logs: %q", v)
		}
		for _, kv := range resp.Kvs {
			if bytes.Contains(kv.Value, []byte(v)) {
				e.t.Errorf("etcd key %s holds a secret in the clear", kv.Key)
			}
		}
	}
}
