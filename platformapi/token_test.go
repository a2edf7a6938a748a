package platformapi_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/tokenstore"
)

var (
	compCred  = tokenstore.ComponentCred(plat)
	authzCred = tokenstore.AuthorizerCred(plat, authz)
)

// TestUnknownPlatform: every route answers 404 unknown_platform for a name
// no platform has, and does not quote the name back.
func TestUnknownPlatform(t *testing.T) {
	e := newEnv(t)
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/v1/platforms/nope/token", ""},
		{"POST", "/v1/platforms/nope/token/invalidate", `{"access_token":"x"}`},
		{"GET", "/v1/platforms/nope/authorizers", ""},
		{"GET", "/v1/platforms/nope/authorizers/" + authz + "/token", ""},
		{"POST", "/v1/platforms/nope/authorizers/" + authz + "/token/invalidate", `{"access_token":"x"}`},
		{"POST", "/v1/platforms/nope/preauth", `{"redirect_uri":"https://example.com/cb"}`},
	} {
		a := e.do(r.method, r.path, r.body)
		want(t, r.method+" "+r.path, a, http.StatusNotFound, "unknown_platform")
		if bytes.Contains(a.body, []byte("nope")) {
			t.Errorf("%s %s: the answer quotes the caller's name: %s", r.method, r.path, a.body)
		}
	}
}

// keys returns the field names of a JSON object.
func keys(t *testing.T, b []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %s", b)
	}
	return slices.Sorted(maps.Keys(m))
}

// TestComponentTokenAsAppToken: the component token is answered exactly
// as an app's token is: the same status, code and headers before it
// exists, the same fields and headers after.
func TestComponentTokenAsAppToken(t *testing.T) {
	e := newEnv(t)
	appPath, compPath := "/v1/apps/"+testApp+"/token", "/v1/platforms/"+plat+"/token"

	app, comp := e.do("GET", appPath, ""), e.do("GET", compPath, "")
	want(t, "app token before any", app, http.StatusServiceUnavailable, "no_credential")
	want(t, "component token before any", comp, http.StatusServiceUnavailable, "no_credential")
	for _, h := range []string{"Content-Type", "Cache-Control", "Retry-After"} {
		if app.header.Get(h) != comp.header.Get(h) {
			t.Errorf("no_credential header %s: component %q, app %q", h, comp.header.Get(h), app.header.Get(h))
		}
	}

	e.publish(record(tokenstore.CredName(testApp, "token"), "app-token-1", 1))
	e.publish(record(compCred, "component-token-1", 1))
	app, comp = e.do("GET", appPath, ""), e.do("GET", compPath, "")
	want(t, "app token", app, http.StatusOK, "")
	want(t, "component token", comp, http.StatusOK, "")
	if got, want := keys(t, comp.body), keys(t, app.body); !slices.Equal(got, want) {
		t.Errorf("component token fields: got %v, want the app token's %v", got, want)
	}
	for _, h := range []string{"Content-Type", "Cache-Control"} {
		if app.header.Get(h) != comp.header.Get(h) {
			t.Errorf("header %s: component %q, app %q", h, comp.header.Get(h), app.header.Get(h))
		}
	}
	var got struct {
		App, Kind   string
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		Seq         uint64
	}
	_ = json.Unmarshal(comp.body, &got)
	if got.App != plat || got.Kind != "component" || got.AccessToken != "component-token-1" || got.Seq != 1 || got.ExpiresIn <= 0 {
		t.Errorf("component token: got %+v", got)
	}
}

// reportWritten waits until a report of cred's seq is in etcd.
func (e *env) reportWritten(cred string, seq uint64) {
	e.t.Helper()
	waitFor(e.t, "the report of "+cred, func() bool {
		resp, err := e.store.Client().Get(ctx(e.t), e.store.Keys().Report(cred, seq))
		return err == nil && len(resp.Kvs) == 1
	})
}

// reports counts the reports in etcd.
func (e *env) reports() int64 {
	e.t.Helper()
	resp, err := e.store.Client().Get(ctx(e.t), e.store.Keys().Reports(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.Count
}

// invalidate posts a report of token and returns the answer when it comes;
// the test plays the leader meanwhile.
func (e *env) invalidate(path, token string) <-chan answer {
	out := make(chan answer, 1)
	go func() { out <- e.do("POST", path, `{"access_token":"`+token+`"}`) }()
	return out
}

// TestInvalidate: compare-and-refresh on the component token and on an
// authorizer's, as on an app's: a report of an old token answers the
// current one at once and writes nothing; a report of the current token is
// written for the leader, and the answer is the token it publishes next.
func TestInvalidate(t *testing.T) {
	for _, tt := range []struct {
		name, cred, path string
	}{
		{"component", compCred, "/v1/platforms/" + plat + "/token/invalidate"},
		{"authorizer", authzCred, "/v1/platforms/" + plat + "/authorizers/" + authz + "/token/invalidate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.state(authz, tokenstore.AuthorizerAuthorized, time.Now())
			e.publish(record(tt.cred, tt.name+"-token-1", 1))
			e.publish(record(tt.cred, tt.name+"-token-2", 2))

			a := e.do("POST", tt.path, `{"access_token":"`+tt.name+`-token-1"}`)
			want(t, "report of an old token", a, http.StatusOK, "")
			if n := e.reports(); n != 0 {
				t.Fatalf("a report of an old token wrote %d reports", n)
			}
			var got struct {
				AccessToken string `json:"access_token"`
				Seq         uint64
			}
			_ = json.Unmarshal(a.body, &got)
			if got.AccessToken != tt.name+"-token-2" || got.Seq != 2 {
				t.Fatalf("report of an old token: got %s, want the current token", a.body)
			}

			done := e.invalidate(tt.path, tt.name+"-token-2")
			e.reportWritten(tt.cred, 2)
			e.publish(record(tt.cred, tt.name+"-token-3", 3))
			a = <-done
			want(t, "report of the current token", a, http.StatusOK, "")
			_ = json.Unmarshal(a.body, &got)
			if got.AccessToken != tt.name+"-token-3" || got.Seq != 3 {
				t.Fatalf("report of the current token: got %s, want the next one", a.body)
			}

			want(t, "no token in the report", e.do("POST", tt.path, `{}`), http.StatusBadRequest, "bad_request")
			want(t, "not JSON", e.do("POST", tt.path, `access_token=x`), http.StatusBadRequest, "bad_request")
		})
	}
}
