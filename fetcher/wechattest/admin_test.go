package wechattest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// admin sends an admin request and checks the status; out, if not nil,
// receives the JSON answer.
func (e *env) admin(method, pathQuery, body string, wantStatus int, out any) {
	e.t.Helper()
	status, b := e.raw(method, pathQuery, []byte(body))
	if status != wantStatus {
		e.t.Fatalf("%s %s: status %d (%s), want %d", method, pathQuery, status, b, wantStatus)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %q: %v", method, pathQuery, b, err)
		}
	}
}

func TestAdminAppsAndLedger(t *testing.T) {
	e := newEnv(t, Config{})
	e.admin(http.MethodPost, "/_sim/apps", `{"appid":"wxadmin","secret":"s1"}`, http.StatusNoContent, nil)
	e.admin(http.MethodPost, "/_sim/corps", `{"corpid":"wwadmin","secret":"s2"}`, http.StatusNoContent, nil)
	e.admin(http.MethodPost, "/_sim/apps", `{"appid":"wxadmin"}`, http.StatusBadRequest, nil)
	tok := e.token(e.classicAs("wxadmin", "s1"))
	e.clock.Advance(time.Second)
	e.token(e.wecomAs("wwadmin", "s2"))
	wantCode(t, e.classicAs("wxadmin", "bad"), 40125)

	var got []Fetch
	e.admin(http.MethodGet, "/_sim/ledger", "", http.StatusOK, &got)
	want := e.srv.Ledger()
	if len(got) != len(want) || len(want) != 3 {
		t.Fatalf("ledger has %d lines over HTTP, %d in Go, want 3", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.At.Equal(w.At) || !g.Start.Equal(w.Start) {
			t.Errorf("line %d times: got %v/%v, want %v/%v", i, g.At, g.Start, w.At, w.Start)
		}
		g.At, g.Start, w.At, w.Start = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if g != w {
			t.Errorf("line %d: got %+v, want %+v", i, g, w)
		}
	}

	var cur struct{ Token string }
	e.admin(http.MethodGet, "/_sim/current?appid=wxadmin&kind=classic", "", http.StatusOK, &cur)
	if cur.Token != tok {
		t.Errorf("current = %.12s..., want %.12s...", cur.Token, tok)
	}
}

func TestAdminValidAndUses(t *testing.T) {
	e := newEnv(t, Config{})
	tok := e.token(e.classic())
	e.clock.Advance(DefaultTokenTTL)
	tests := []struct {
		at   string
		want bool
	}{
		{"", false}, // now: expired
		{t0.Add(time.Hour).Format(time.RFC3339Nano), true},
		{t0.Add(-time.Nanosecond).Format(time.RFC3339Nano), false},
		{t0.Add(DefaultTokenTTL - time.Nanosecond).Format(time.RFC3339Nano), true},
	}
	for _, tc := range tests {
		var v struct{ Valid bool }
		e.admin(http.MethodGet, "/_sim/valid?"+url.Values{"token": {tok}, "at": {tc.at}}.Encode(), "", http.StatusOK, &v)
		if v.Valid != tc.want {
			t.Errorf("valid at %q = %v, want %v", tc.at, v.Valid, tc.want)
		}
	}
	e.admin(http.MethodGet, "/_sim/valid?token=x&at=yesterday", "", http.StatusBadRequest, nil)

	e.use(tok)
	e.use(e.token(e.classic()))
	e.use(e.token(e.classic()))
	var u struct{ OK, Dead int }
	e.admin(http.MethodGet, "/_sim/uses", "", http.StatusOK, &u)
	if u.OK != 2 || u.Dead != 1 {
		t.Errorf("uses = %+v, want ok 2, dead 1", u)
	}
	if ok, dead := e.srv.Uses(); ok != 2 || dead != 1 {
		t.Errorf("Uses() = %d, %d, want 2, 1", ok, dead)
	}
}

func TestAdminFault(t *testing.T) {
	e := newEnv(t, Config{})
	e.admin(http.MethodPost, "/_sim/fault", `{"mode":"latency","latency":"2s","count":3,"appid":"wxx"}`, http.StatusNoContent, nil)
	var f Fault
	e.admin(http.MethodGet, "/_sim/fault", "", http.StatusOK, &f)
	if want := (Fault{Mode: FaultLatency, Latency: 2 * time.Second, Count: 3, AppID: "wxx"}); f != want {
		t.Errorf("fault = %+v, want %+v", f, want)
	}
	e.admin(http.MethodDelete, "/_sim/fault", "", http.StatusNoContent, nil)
	var cleared Fault
	e.admin(http.MethodGet, "/_sim/fault", "", http.StatusOK, &cleared)
	if cleared != (Fault{}) {
		t.Errorf("fault after DELETE = %+v, want none", cleared)
	}
	e.admin(http.MethodPost, "/_sim/fault", `{"mode":"explode"}`, http.StatusBadRequest, nil)
	e.admin(http.MethodPost, "/_sim/fault", `{"mode":"latency","latency":"soon"}`, http.StatusBadRequest, nil)

	// A Fault marshalled by Go round-trips; nanoseconds are accepted too.
	want := Fault{Mode: FaultTimeout, Latency: 1500 * time.Millisecond, Count: 1, AppID: appID}
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	e.admin(http.MethodPost, "/_sim/fault", string(b), http.StatusNoContent, nil)
	var back Fault
	e.admin(http.MethodGet, "/_sim/fault", "", http.StatusOK, &back)
	if back != want {
		t.Errorf("round trip of %s: got %+v, want %+v", b, back, want)
	}
	e.admin(http.MethodPost, "/_sim/fault", `{"mode":"latency","latency":1000}`, http.StatusNoContent, nil)
	e.admin(http.MethodGet, "/_sim/fault", "", http.StatusOK, &back)
	if back.Latency != time.Microsecond {
		t.Errorf("latency 1000 (ns) decoded as %v, want 1µs", back.Latency)
	}

	e.admin(http.MethodPost, "/_sim/fault", `{"mode":"busy","count":1}`, http.StatusNoContent, nil)
	wantCode(t, e.classic(), -1)
	wantCode(t, e.classic(), 0)
}

func TestAdminAllowIPs(t *testing.T) {
	e := newEnv(t, Config{})
	e.admin(http.MethodPut, "/_sim/allow_ips", `["10.1.2.3"]`, http.StatusNoContent, nil)
	wantCode(t, e.classic(), 40164)
	e.admin(http.MethodPut, "/_sim/allow_ips", `["10.1.2.3","127.0.0.1"]`, http.StatusNoContent, nil)
	wantCode(t, e.classic(), 0)
	e.admin(http.MethodPut, "/_sim/allow_ips", `["not-an-ip"]`, http.StatusBadRequest, nil)
	wantCode(t, e.classic(), 0)
	e.admin(http.MethodPut, "/_sim/allow_ips", `[]`, http.StatusNoContent, nil)
	wantCode(t, e.classic(), 0)
}
