package wechattest

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/wxtoken/wxtoken/wxcrypt"
)

// TestPlatformAdminAPI drives a platform through /_sim/ as an
// out-of-process test would.
func TestPlatformAdminAPI(t *testing.T) {
	e := newEnv(t, Config{})
	rc := newReceiver(t, wxcrypt.Config{Token: compToken, AppID: compID, Key: compKey})
	call := func(method, path string, body any, out any) int {
		t.Helper()
		b, _ := json.Marshal(body)
		status, resp := e.raw(method, path, b)
		if out != nil && status == http.StatusOK {
			if err := json.Unmarshal(resp, out); err != nil {
				t.Fatalf("%s %s: %v (%s)", method, path, err, resp)
			}
		}
		return status
	}
	if st := call("POST", "/_sim/platforms", map[string]any{"appid": compID, "secret": compSecret, "token": compToken,
		"encoding_aes_key": "short", "push_url": rc.srv.URL}, nil); st != http.StatusBadRequest {
		t.Errorf("bad key: status %d, want 400", st)
	}
	if st := call("POST", "/_sim/platforms", map[string]any{"appid": compID, "secret": compSecret, "token": compToken,
		"encoding_aes_key": compKey, "push_url": rc.srv.URL, "ticket_every": "-1s", "code_ttl": "5m", "rotate_refresh": 1}, nil); st != http.StatusNoContent {
		t.Fatalf("add platform: status %d", st)
	}
	var p Push
	if st := call("POST", "/_sim/platforms/"+compID+"/push", nil, &p); st != 200 || !p.Accepted() || p.Ticket == "" {
		t.Fatalf("push: %d %+v", st, p)
	}
	if r := rc.next(t); r.event.ComponentVerifyTicket != p.Ticket {
		t.Fatalf("receiver got %v", r.event)
	}
	var a Authorization
	if st := call("POST", "/_sim/platforms/"+compID+"/authorize", map[string]any{"authorizer_appid": authAppID}, &a); st != 200 || a.Code == "" || !a.Push.Accepted() {
		t.Fatalf("authorize: %d %+v", st, a)
	}
	if r := rc.next(t); r.event.AuthorizationCode != a.Code {
		t.Fatalf("receiver got %v", r.event)
	}
	if st := call("PUT", "/_sim/platforms/"+compID+"/push_fault", map[string]any{"wrong_key": true}, nil); st != http.StatusNoContent {
		t.Fatalf("push fault: %d", st)
	}
	if st := call("POST", "/_sim/platforms/"+compID+"/unauthorize", map[string]any{"authorizer_appid": authAppID}, &p); st != 200 || p.Accepted() || !p.WrongKey {
		t.Fatalf("unauthorize with a wrong key: %d %+v", st, p)
	}
	if r := rc.next(t); r.err == nil {
		t.Fatal("receiver accepted a push with a wrong key")
	}
	var seeded map[string]int
	if st := call("POST", "/_sim/platforms/"+compID+"/seed", map[string]any{"prefix": "wxbench", "count": 3}, &seeded); st != 200 || seeded["seeded"] != 3 {
		t.Fatalf("seed: %d %v", st, seeded)
	}
	if rt := e.srv.RefreshToken(compID, "wxbench00000000002"); rt == "" {
		t.Error("seeded authorizer wxbench00000000002 has no refresh token")
	}
	var pushes []Push
	if call("GET", "/_sim/pushes", nil, &pushes); len(pushes) != 3 {
		t.Errorf("%d pushes listed, want 3", len(pushes))
	}
	var ex map[string]int
	if call("GET", "/_sim/exchanges?code="+a.Code, nil, &ex); ex["exchanges"] != 0 {
		t.Errorf("exchanges %v", ex)
	}
	var rt struct {
		RefreshToken string `json:"refresh_token"`
		Authorized   bool   `json:"authorized"`
	}
	if call("GET", "/_sim/platforms/"+compID+"/refresh_token?authorizer=wxbench00000000002", nil, &rt); !rt.Authorized || rt.RefreshToken != e.srv.RefreshToken(compID, "wxbench00000000002") {
		t.Errorf("refresh_token of a seeded authorizer: %+v, want authorized with the newest refresh token", rt.Authorized)
	}
	if call("GET", "/_sim/platforms/"+compID+"/refresh_token?authorizer="+authAppID, nil, &rt); rt.Authorized || rt.RefreshToken != "" {
		t.Errorf("refresh_token of an unauthorized authorizer: authorized %v, token set %v; want neither", rt.Authorized, rt.RefreshToken != "")
	}
	if st := call("POST", "/_sim/platforms/wxnope/push", nil, nil); st != http.StatusBadRequest {
		t.Errorf("push for an unknown platform: %d", st)
	}
}
