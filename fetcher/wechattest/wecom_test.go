package wechattest

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestWeCom(t *testing.T) {
	e := newEnv(t, Config{})
	first := e.wecomAs(corpID, corpSecret)
	tok := e.token(first)
	if first.Errmsg != "ok" || first.ExpiresIn != 7200 {
		t.Errorf("answer = %+v, want errmsg ok, expires_in 7200", first)
	}
	e.clock.Advance(time.Hour)
	a := e.wecomAs(corpID, corpSecret)
	if e.token(a) != tok || a.ExpiresIn != 3600 {
		t.Errorf("repeat: same token %v, expires_in %d; want same token, 3600", e.token(a) == tok, a.ExpiresIn)
	}
	e.wantUse(tok, 0)

	// A second application secret of the same corp has its own token.
	e.srv.AddCorp(corpID, "agent2")
	other := e.token(e.wecomAs(corpID, "agent2"))
	if other == tok {
		t.Errorf("two secrets share a token")
	}
	e.wantUse(tok, 0)

	e.clock.Set(t0.Add(DefaultTokenTTL))
	e.wantUse(tok, 42001)
	fresh := e.token(e.wecomAs(corpID, corpSecret))
	if fresh == tok {
		t.Errorf("after expiry: same token, want a new one")
	}
	if got := e.srv.Current(corpID, KindWeCom); got != fresh {
		t.Errorf("Current(corp, wecom) is not the newest token")
	}

	var issued int
	for _, f := range e.srv.Ledger() {
		if f.Kind != KindWeCom || f.AppID != corpID {
			t.Errorf("ledger line %+v, want wecom for %s", f, corpID)
		}
		if f.Issued {
			issued++
		}
	}
	if issued != 3 {
		t.Errorf("ledger: %d issued, want 3", issued)
	}
}

func TestWeComErrors(t *testing.T) {
	e := newEnv(t, Config{DailyQuota: 1})
	tests := []struct {
		name, id, sec string
		want          int
	}{
		{"missing corpid", "", corpSecret, 41002},
		{"missing secret", corpID, "", 41004},
		{"unknown corpid", "wwnobody", corpSecret, 40013},
		{"wrong secret", corpID, "nope", 40001},
		{"ok", corpID, corpSecret, 0},
		{"quota", corpID, corpSecret, 45009},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := e.get("/cgi-bin/gettoken", url.Values{"corpid": {tc.id}, "corpsecret": {tc.sec}})
			wantCode(t, a, tc.want)
			if tc.want != 0 && !strings.Contains(a.Errmsg, "from ip: 127.0.0.1") {
				t.Errorf("errmsg = %q, want WeCom's hint with the caller IP", a.Errmsg)
			}
		})
	}
}
