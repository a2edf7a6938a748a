package wechattest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestClassicOverlap(t *testing.T) {
	e := newEnv(t, Config{})
	tok1 := e.token(e.classic())
	e.clock.Advance(time.Minute)
	tok2 := e.token(e.classic())
	if tok1 == tok2 {
		t.Fatalf("second fetch returned the same token")
	}
	fetched2 := e.clock.Now()

	e.clock.Set(fetched2.Add(DefaultOverlap - time.Second))
	e.wantUse(tok1, 0)
	e.wantUse(tok2, 0)
	if !e.srv.Valid(tok1, fetched2.Add(DefaultOverlap-time.Nanosecond)) {
		t.Errorf("Valid(old, end of overlap - 1ns) = false, want true")
	}
	e.clock.Set(fetched2.Add(DefaultOverlap))
	e.wantUse(tok1, 40001)
	e.wantUse(tok2, 0)

	// The token before the previous one dies at the next fetch.
	tok3 := e.token(e.classic())
	tok4 := e.token(e.classic())
	e.wantUse(tok2, 40001)
	e.wantUse(tok3, 0)
	e.wantUse(tok4, 0)
	if got := e.srv.Current(appID, KindClassic); got != tok4 {
		t.Errorf("Current = %.12s..., want the newest token %.12s...", got, tok4)
	}
}

func TestClassicExpiry(t *testing.T) {
	e := newEnv(t, Config{TokenTTL: 90*time.Second + 500*time.Millisecond})
	a := e.classic()
	tok := e.token(a)
	if a.ExpiresIn != 91 {
		t.Errorf("expires_in = %d, want 91 (rounded up)", a.ExpiresIn)
	}
	e.clock.Advance(90 * time.Second)
	e.wantUse(tok, 0)
	e.clock.Advance(500 * time.Millisecond)
	e.wantUse(tok, 42001)

	// An old token inside its overlap still expires by time first.
	e2 := newEnv(t, Config{})
	old := e2.token(e2.classic())
	e2.clock.Advance(DefaultTokenTTL - time.Minute)
	e2.token(e2.classic())
	e2.clock.Advance(time.Minute)
	e2.wantUse(old, 42001)
}

func TestClassicDefaultsAnswer(t *testing.T) {
	e := newEnv(t, Config{})
	if a := e.classic(); a.ExpiresIn != 7200 || a.Errcode != 0 || a.Errmsg != "" {
		t.Errorf("answer = %+v, want expires_in 7200 and no errcode", a)
	}
}

func TestTokenErrors(t *testing.T) {
	cc := "client_credential"
	tests := []struct {
		name  string
		grant string
		id    string
		sec   string
		want  int
	}{
		{"missing appid", cc, "", appSecret, 41002},
		{"missing secret", cc, appID, "", 41004},
		{"wrong grant_type", "password", appID, appSecret, 40002},
		{"missing grant_type", "", appID, appSecret, 40002},
		{"unknown appid", cc, "wxnobody", appSecret, 40013},
		{"wrong secret", cc, appID, "nope", 40125},
	}
	e := newEnv(t, Config{})
	for _, tc := range tests {
		t.Run("classic "+tc.name, func(t *testing.T) {
			a := e.get("/cgi-bin/token", url.Values{"grant_type": {tc.grant}, "appid": {tc.id}, "secret": {tc.sec}})
			wantCode(t, a, tc.want)
			if !strings.Contains(a.Errmsg, " rid: ") {
				t.Errorf("errmsg = %q, want a rid", a.Errmsg)
			}
		})
		t.Run("stable "+tc.name, func(t *testing.T) {
			a := e.postJSON("/cgi-bin/stable_token", map[string]any{"grant_type": tc.grant, "appid": tc.id, "secret": tc.sec})
			wantCode(t, a, tc.want)
		})
	}
	t.Run("stable bad json", func(t *testing.T) {
		wantCode(t, e.decode(e.raw(http.MethodPost, "/cgi-bin/stable_token", []byte(`{"appid":`))), 47001)
	})
	t.Run("ledger", func(t *testing.T) {
		l := e.srv.Ledger()
		if got, want := len(l), 2*len(tests)+1; got != want {
			t.Fatalf("ledger has %d lines, want %d", got, want)
		}
		for i, f := range l {
			if f.Errcode == 0 || f.Token != "" || f.Issued || f.Caller != "127.0.0.1" {
				t.Errorf("ledger[%d] = %+v, want a failed call from 127.0.0.1", i, f)
			}
		}
		if got := l[len(l)-2]; got.Kind != KindStable || got.AppID != appID || got.Errcode != 40125 {
			t.Errorf("ledger[-2] = %+v, want stable 40125 for %s", got, appID)
		}
	})
}

func TestDailyQuota(t *testing.T) {
	e := newEnv(t, Config{DailyQuota: 3})
	e.srv.AddApp("wxother", "other")
	for i := range 3 {
		e.clock.Advance(time.Hour)
		if a := e.classic(); a.Errcode != 0 {
			t.Fatalf("call %d: errcode %d, want 0", i+1, a.Errcode)
		}
	}
	wantCode(t, e.classic(), 45009)
	// Another app has its own quota.
	wantCode(t, e.classicAs("wxother", "other"), 0)

	midnight := time.Date(2025, 3, 10, 16, 0, 0, 0, time.UTC) // 00:00 in China
	e.clock.Set(midnight.Add(-time.Nanosecond))
	wantCode(t, e.classic(), 45009)
	e.clock.Set(midnight)
	wantCode(t, e.classic(), 0)

	var quota int
	for _, f := range e.srv.Ledger() {
		if f.Errcode == 45009 {
			quota++
		}
	}
	if quota != 2 {
		t.Errorf("ledger has %d 45009 lines, want 2", quota)
	}
}

func TestAllowIPs(t *testing.T) {
	e := newEnv(t, Config{AllowIPs: []string{"10.1.2.3"}})
	a := e.classic()
	wantCode(t, a, 40164)
	if !strings.Contains(a.Errmsg, "invalid ip 127.0.0.1") || !strings.Contains(a.Errmsg, "not in whitelist") {
		t.Errorf("errmsg = %q, want \"invalid ip 127.0.0.1 ..., not in whitelist\"", a.Errmsg)
	}
	wantCode(t, e.stable(false), 40164)
	wantCode(t, e.wecomAs(corpID, corpSecret), 60020)

	for _, allow := range [][]string{{"10.1.2.3", "127.0.0.1"}, {"127.0.0.0/8"}, nil} {
		e.srv.SetAllowIPs(allow)
		wantCode(t, e.classic(), 0)
		wantCode(t, e.stable(false), 0)
		wantCode(t, e.wecomAs(corpID, corpSecret), 0)
	}
}
