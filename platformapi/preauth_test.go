package platformapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/platformapi"
)

// componentToken gets a component token from the simulator, as the leader
// would, and notes it as a secret.
func (e *env) componentToken() string {
	e.t.Helper()
	// The platform has no push URL: the push fails, its ticket is valid.
	push, _ := e.sim.PushTicket(ctx(e.t), compID)
	if push.Ticket == "" {
		e.t.Fatal("no ticket minted")
	}
	fc, err := fetcher.New(fetcher.Config{BaseURL: e.simURL})
	if err != nil {
		e.t.Fatal(err)
	}
	tok, err := fc.ComponentToken(ctx(e.t), compID, compSecret, push.Ticket)
	if err != nil {
		e.t.Fatal(err)
	}
	e.secret(push.Ticket, tok.Value)
	return tok.Value
}

// TestPreAuth: a pre-auth code from WeChat with the component token in the
// cache, and the link to WeChat's authorization page built from it; bad
// input is refused 400 before WeChat is asked; no component token yet is
// 503 no_credential; a component token WeChat refuses is reported once
// (compare-and-refresh) and the call made again with the next one. The
// code is never logged.
func TestPreAuth(t *testing.T) {
	e := newEnv(t)
	path := "/v1/platforms/" + plat + "/preauth"
	const redirect = "https://saas.example.com/wx/authorized?tenant=7&x=a b"

	for _, body := range []string{
		``, `{}`, `[]`, `{"redirect_uri":""}`, `{"redirect_uri":"/relative"}`, `{"redirect_uri":"saas.example.com/cb"}`,
		`{"redirect_uri":"ftp://saas.example.com/cb"}`, `{"redirect_uri":"javascript:alert(1)"}`, `{"redirect_uri":"https:///nohost"}`,
		`{"redirect_uri":"https://u:p@saas.example.com/cb"}`, `{"redirect_uri":"https://saas.example.com/cb#frag"}`,
		`{"redirect_uri":"https://saas.example.com/cb","auth_type":4}`, `{"redirect_uri":"https://saas.example.com/cb","biz_appid":"a/b"}`,
		`{"redirect_uri":"https://saas.example.com/cb","extra":1}`, `{"redirect_uri":"https://saas.example.com/cb"} {}`,
		`{"redirect_uri":"https://saas.example.com/` + strings.Repeat("x", 1100) + `"}`,
	} {
		want(t, "preauth "+body, e.do("POST", path, body), http.StatusBadRequest, "bad_request")
	}
	want(t, "no component token yet", e.do("POST", path, `{"redirect_uri":"https://saas.example.com/cb"}`),
		http.StatusServiceUnavailable, "no_credential")

	e.publish(record(compCred, e.componentToken(), 1))
	body, _ := json.Marshal(platformapi.PreAuthRequest{RedirectURI: redirect, AuthType: platformapi.AuthMiniPrograms, BizAppID: authz})
	a := e.do("POST", path, string(body))
	want(t, "preauth", a, http.StatusOK, "")
	var got platformapi.PreAuthResponse
	if err := json.Unmarshal(a.body, &got); err != nil {
		t.Fatal(err)
	}
	e.secret(got.PreAuthCode)
	if !strings.HasPrefix(got.PreAuthCode, "preauthcode@@@") || got.ExpiresIn != 1800 {
		t.Errorf("preauth: got code %t, expires_in %d; want a code of the simulator's, 1800", strings.HasPrefix(got.PreAuthCode, "preauthcode@@@"), got.ExpiresIn)
	}
	u, err := url.Parse(got.AuthURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme+"://"+u.Host+u.Path != platformapi.AuthPage || q.Get("component_appid") != compID || q.Get("pre_auth_code") != got.PreAuthCode ||
		q.Get("redirect_uri") != redirect || q.Get("auth_type") != "2" || q.Get("biz_appid") != authz {
		t.Errorf("auth_url: got %s", got.AuthURL)
	}
	if want := "?component_appid=" + compID + "&pre_auth_code="; !strings.Contains(got.AuthURL, want) {
		t.Errorf("auth_url: parameters not in the documented order: %s", got.AuthURL)
	}
	a = e.do("POST", path, `{"redirect_uri":"http://127.0.0.1:8080/cb"}`)
	want(t, "preauth, defaults", a, http.StatusOK, "")
	_ = json.Unmarshal(a.body, &got)
	e.secret(got.PreAuthCode)
	if u, _ := url.Parse(got.AuthURL); u.Query().Get("auth_type") != "3" || u.Query().Has("biz_appid") {
		t.Errorf("auth_url with defaults: got %s", got.AuthURL)
	}

	// A component token WeChat no longer takes: reported, and the next
	// one the leader publishes is used.
	e.publish(record(compCred, "component-token-killed", 2))
	done := make(chan answer, 1)
	go func() { done <- e.do("POST", path, `{"redirect_uri":"https://saas.example.com/cb"}`) }()
	e.reportWritten(compCred, 2)
	e.publish(record(compCred, e.componentToken(), 3))
	a = <-done
	want(t, "preauth after a dead component token", a, http.StatusOK, "")
	_ = json.Unmarshal(a.body, &got)
	e.secret(got.PreAuthCode)

	// Reported once only: when the next token fails too, WeChat's answer.
	e.publish(record(compCred, "component-token-killed-4", 4))
	go func() { done <- e.do("POST", path, `{"redirect_uri":"https://saas.example.com/cb"}`) }()
	e.reportWritten(compCred, 4)
	e.publish(record(compCred, "component-token-killed-5", 5))
	want(t, "preauth, two dead tokens", <-done, http.StatusBadGateway, "wechat_error")
	if n := e.reports(); n != 2 {
		t.Errorf("reports: got %d, want 2 (one per dead token)", n)
	}
}
