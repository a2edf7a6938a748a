package replica_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/seal"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// TestPlatformLeaderKeepsAuthorizers runs a platform against the
// simulator end to end: a pushed ticket gives the component token; an
// authorization's code is exchanged exactly once and its authorizer token
// served; every refresh stores the refresh token WeChat rotated to, in the
// same transaction as the token; a lost refresh token is recovered from
// api_get_authorizer_list; an unauthorization revokes the authorizer.
func TestPlatformLeaderKeepsAuthorizers(t *testing.T) {
	// Tokens live 6 s and the overlap is 3 s: a refresh every 3 s.
	e := newEnv(t, 1, wechattest.Config{TokenTTL: 6 * time.Second, Overlap: 3 * time.Second})
	cfg := e.testConfig("plat-leader")
	key := platformConfig(t, cfg)
	r := e.start(cfg, nil)
	simPlatform(t, e, r, 1)
	ring, err := seal.NewRing(key)
	if err != nil {
		t.Fatal(err)
	}
	store := tokenstore.New(e.clus.Client(0), "/wxtoken")
	store.SetSealing(tokenstore.Sealing{Sealer: ring})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	pushTicket(t, ctx, e)
	comp, err := r.Cache().Wait(ctx, tokenstore.ComponentCred("saas"), 0)
	if err != nil {
		t.Fatalf("no component token: %v", err)
	}
	if !e.sim.Valid(comp.Value, time.Now()) {
		t.Fatal("the component token served is not valid at WeChat")
	}

	a, err := e.sim.Authorize(ctx, platCompID, platAuthzID, wechattest.AuthorizeOptions{FuncInfo: []int{1, 15}})
	if err != nil || !a.Push.Accepted() {
		t.Fatalf("authorize: %v (push %d)", err, a.Push.Status)
	}
	cred := tokenstore.AuthorizerCred("saas", platAuthzID)
	first, err := r.Cache().Wait(ctx, cred, 0)
	if err != nil {
		t.Fatalf("no authorizer token: %v", err)
	}
	if !e.sim.Valid(first.Value, time.Now()) {
		t.Fatal("the authorizer token served is not valid at WeChat")
	}
	if n := e.sim.Exchanges(a.Code); n != 1 {
		t.Fatalf("code exchanged %d times, want 1", n)
	}
	storedRefresh := func() tokenstore.RefreshToken {
		t.Helper()
		rt, ok, err := store.RefreshToken(ctx, cred)
		if err != nil || !ok {
			t.Fatalf("refresh token of %s: ok %v, %v", cred, ok, err)
		}
		return rt
	}
	if rt := storedRefresh(); rt.Value != e.sim.RefreshToken(platCompID, platAuthzID) || rt.Source != tokenstore.RefreshFromQueryAuth {
		t.Fatalf("stored refresh token after the exchange: %v, not WeChat's newest", rt)
	}

	// Two refreshes, each rotating the refresh token (RotateRefresh 1):
	// what is stored is always what WeChat will take next.
	rec := first
	for range 2 {
		if rec, err = r.Cache().Wait(ctx, cred, rec.Seq); err != nil {
			t.Fatalf("no refresh: %v", err)
		}
		if !e.sim.Valid(rec.Value, time.Now()) {
			t.Fatal("a refreshed authorizer token is not valid")
		}
		if rt := storedRefresh(); rt.Value != e.sim.RefreshToken(platCompID, platAuthzID) {
			t.Fatalf("after refresh seq %d the stored refresh token is not WeChat's newest (%v)", rec.Seq, rt)
		}
	}

	// The refresh token is lost (deleted by hand): the next refresh takes
	// it from api_get_authorizer_list.
	if _, err := e.clus.Client(0).Delete(ctx, store.Keys().Refresh(cred)); err != nil {
		t.Fatal(err)
	}
	if rec, err = r.Cache().Wait(ctx, cred, rec.Seq); err != nil {
		t.Fatalf("no refresh after the refresh token was lost: %v", err)
	}
	if !e.sim.Valid(rec.Value, time.Now()) {
		t.Fatal("the token refreshed with a recovered refresh token is not valid")
	}
	if rt := storedRefresh(); rt.Value != e.sim.RefreshToken(platCompID, platAuthzID) {
		t.Fatalf("after recovery the stored refresh token is not WeChat's newest (%v)", rt)
	}
	if n := e.sim.Exchanges(a.Code); n != 1 {
		t.Fatalf("code exchanged %d times, want 1", n)
	}

	// The account unauthorizes the platform: its record is revoked, the
	// refresh token deleted.
	if p, err := e.sim.Unauthorize(ctx, platCompID, platAuthzID); err != nil || !p.Accepted() {
		t.Fatalf("unauthorize: %v %d", err, p.Status)
	}
	for {
		if rec, err = r.Cache().Wait(ctx, cred, rec.Seq); err != nil {
			t.Fatalf("not revoked: %v", err)
		}
		if rec.Revoked {
			break
		}
	}
	if _, ok, _ := store.RefreshToken(ctx, cred); ok {
		t.Fatal("a revoked authorizer's refresh token is still stored")
	}
	if max := e.sim.MaxInFlight(wechattest.KindAuthorizer, platAuthzID); max > 1 {
		t.Fatalf("%d authorizer calls in flight at once", max)
	}
}

// TestPlatformExchangeWithoutAnswer: the exchange of a new authorization's
// code gets no answer and WeChat never processed it (the simulator holds
// the call until the fetch gives up, minting nothing). The account's
// token must not be lost: WeChat lists no refresh token for it, so the
// leader presents the claimed code once more, after the call's window,
// and serves the token; the code is exchanged once.
func TestPlatformExchangeWithoutAnswer(t *testing.T) {
	e := newEnv(t, 1, wechattest.Config{})
	cfg := e.testConfig("plat-noanswer")
	platformConfig(t, cfg)
	r := e.start(cfg, nil)
	simPlatform(t, e, r, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pushTicket(t, ctx, e)
	if _, err := r.Cache().Wait(ctx, tokenstore.ComponentCred("saas"), 0); err != nil {
		t.Fatalf("no component token: %v", err)
	}
	e.sim.SetFault(wechattest.Fault{Mode: wechattest.FaultTimeout, Kind: wechattest.KindQueryAuth, Count: 1})
	a, err := e.sim.Authorize(ctx, platCompID, platAuthzID, wechattest.AuthorizeOptions{})
	if err != nil || !a.Push.Accepted() {
		t.Fatalf("authorize: %v", err)
	}
	rec, err := r.Cache().Wait(ctx, tokenstore.AuthorizerCred("saas", platAuthzID), 0)
	if err != nil {
		t.Fatalf("the authorization was lost: no token after an exchange without answer: %v", err)
	}
	if !e.sim.Valid(rec.Value, time.Now()) {
		t.Fatal("the authorizer token served is not valid")
	}
	if n := e.sim.Exchanges(a.Code); n != 1 {
		t.Fatalf("code exchanged %d times, want 1", n)
	}
	if !strings.Contains(e.logs.String(), "presenting the code of an exchange that got no answer again") {
		t.Fatal("the token came some other way than the claimed code")
	}
}

// TestAuthorizersWakeWithComponentToken: authorizations pushed before any
// ticket wait for the component token without polling etcd (they look
// again only after two fetch timeouts, 40 s here) and are exchanged as
// soon as the component token is published.
func TestAuthorizersWakeWithComponentToken(t *testing.T) {
	e := newEnv(t, 1, wechattest.Config{})
	cfg := e.testConfig("plat-wake")
	cfg.Refresh.FetchTimeout = 20 * time.Second
	platformConfig(t, cfg)
	r := e.start(cfg, nil)
	simPlatform(t, e, r, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids := []string{"wxauth0000000001", "wxauth0000000002", "wxauth0000000003"}
	for _, id := range ids {
		if a, err := e.sim.Authorize(ctx, platCompID, id, wechattest.AuthorizeOptions{}); err != nil || !a.Push.Accepted() {
			t.Fatalf("authorize %s: %v", id, err)
		}
	}
	// The leader has seen the codes and found no component token.
	waitFor(t, 10*time.Second, "the authorizers to wait for the component token", func() bool {
		return strings.Count(e.logs.String(), "no usable component_verify_ticket") >= 1
	})
	pushTicket(t, ctx, e)
	comp, err := r.Cache().Wait(ctx, tokenstore.ComponentCred("saas"), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		rec, err := r.Cache().Wait(ctx, tokenstore.AuthorizerCred("saas", id), 0)
		if err != nil {
			t.Fatal(err)
		}
		// Woken by the publish, not by the 40 s look-again.
		if d := rec.FetchedAt.Sub(comp.FetchedAt); d > 10*time.Second {
			t.Errorf("%s exchanged %v after the component token, want at once", id, d)
		}
	}
}

// simPlatform makes the simulator play the platform "saas" of
// platformConfig, pushing to r's event URL only when asked (PushTicket),
// rotating refresh tokens every rotate-th refresh (0: never).
func simPlatform(t *testing.T, e *env, r *rep, rotate int) {
	t.Helper()
	if err := e.sim.AddPlatform(wechattest.Platform{AppID: platCompID, Secret: platSecret, Token: platToken, EncodingAESKey: platAESKey,
		PushURL: r.URL() + "/v1/platforms/saas/events", TicketEvery: -1, RotateRefresh: rotate}); err != nil {
		t.Fatal(err)
	}
}

// pushTicket has the simulator push a ticket, accepted.
func pushTicket(t *testing.T, ctx context.Context, e *env) {
	t.Helper()
	if p, err := e.sim.PushTicket(ctx, platCompID); err != nil || !p.Accepted() {
		t.Fatalf("push ticket: %v %d", err, p.Status)
	}
}
