package platformapi_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// revoke publishes the tombstone of an authorizer as the leader does when
// it unauthorized.
func (e *env) revoke(appID string) {
	e.t.Helper()
	cred := tokenstore.AuthorizerCred(plat, appID)
	snap, err := e.store.Load(ctx(e.t), cred, "20250101")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.Revoke(ctx(e.t), e.guard, snap, "leader", time.Now()); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.cache.Wait(ctx(e.t), cred, snap.Seq()); err != nil {
		e.t.Fatal(err)
	}
}

// TestAuthorizerToken: an authorizer's token is answered as an app's,
// with its appid; when none can be served, the answer says why: never
// seen (404 unknown_authorizer), gone (404 unauthorized_authorizer: a
// revoked record, or an unauthorized event the leader has not acted on
// yet), or authorized and not fetched yet (503 no_credential, as an app
// whose token is not fetched yet).
func TestAuthorizerToken(t *testing.T) {
	e := newEnv(t)
	path := func(appID string) string { return "/v1/platforms/" + plat + "/authorizers/" + appID + "/token" }
	now := time.Now()

	want(t, "never seen", e.do("GET", path(authz), ""), http.StatusNotFound, "unknown_authorizer")
	want(t, "not an appid", e.do("GET", path("wx%2F..%2Fx"), ""), http.StatusNotFound, "unknown_authorizer")

	e.state(authz, tokenstore.AuthorizerAuthorized, now.Add(-time.Minute))
	app := e.do("GET", "/v1/apps/"+testApp+"/token", "")
	notYet := e.do("GET", path(authz), "")
	want(t, "authorized, not fetched yet", notYet, app.status, app.code())
	if notYet.header.Get("Retry-After") != app.header.Get("Retry-After") {
		t.Errorf("Retry-After: got %q, want the app route's %q", notYet.header.Get("Retry-After"), app.header.Get("Retry-After"))
	}

	e.publish(record(authzCred, "authorizer-token-1", 1))
	a := e.do("GET", path(authz), "")
	want(t, "authorized and fetched", a, http.StatusOK, "")
	var got struct {
		App, Kind       string
		AccessToken     string `json:"access_token"`
		AuthorizerAppID string `json:"authorizer_appid"`
		Seq             uint64
		ExpiresIn       int64 `json:"expires_in"`
	}
	_ = json.Unmarshal(a.body, &got)
	if got.App != plat || got.Kind != "authorizer" || got.AccessToken != "authorizer-token-1" || got.AuthorizerAppID != authz || got.Seq != 1 || got.ExpiresIn <= 0 {
		t.Errorf("authorizer token: got %s", a.body)
	}

	e.state(authz, tokenstore.AuthorizerUnauthorized, now)
	// The event is in etcd, the token still in the cache: the leader's
	// revoke decides (the read path reads the cache only).
	want(t, "unauthorized, not revoked yet, token live", e.do("GET", path(authz), ""), http.StatusOK, "")
	e.revoke(authz)
	want(t, "revoked", e.do("GET", path(authz), ""), http.StatusNotFound, "unauthorized_authorizer")
	want(t, "revoked, invalidate", e.do("POST", path(authz)+"/invalidate", `{"access_token":"authorizer-token-1"}`),
		http.StatusNotFound, "unauthorized_authorizer")

	// Unauthorized before the leader ever fetched a token.
	const other = "wxauth0000000002"
	e.state(other, tokenstore.AuthorizerAuthorized, now.Add(-time.Minute))
	e.state(other, tokenstore.AuthorizerUnauthorized, now)
	want(t, "unauthorized, never fetched", e.do("GET", path(other), ""), http.StatusNotFound, "unauthorized_authorizer")

	// A record that expired, of an authorizer that has unauthorized since.
	const third = "wxauth0000000003"
	old := record(tokenstore.AuthorizerCred(plat, third), "authorizer-token-old", 1)
	old.FetchedAt, old.ExpiresAt, old.RefreshAt = now.Add(-3*time.Hour), now.Add(-time.Hour), now.Add(-70*time.Minute)
	e.publish(old)
	want(t, "expired, no state", e.do("GET", path(third), ""), http.StatusServiceUnavailable, "no_credential")
	e.state(third, tokenstore.AuthorizerUnauthorized, now)
	want(t, "expired, unauthorized", e.do("GET", path(third), ""), http.StatusNotFound, "unauthorized_authorizer")

	// Reports of an unknown authorizer's token.
	want(t, "invalidate, never seen", e.do("POST", path("wxauth0000000009")+"/invalidate", `{"access_token":"x"}`),
		http.StatusNotFound, "unknown_authorizer")
}
