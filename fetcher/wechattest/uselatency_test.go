package wechattest

import (
	"net/http"
	"testing"
	"time"
)

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestUseLatencyJudgedAtTheEnd(t *testing.T) {
	e := newEnv(t, Config{TokenTTL: time.Minute})
	tok := e.token(e.classic())
	e.srv.SetUseLatency(UseLatency{Latency: time.Hour, IPs: []string{"127.0.0.1"}, Count: 1})
	got := make(chan int, 1)
	go func() { got <- e.use(tok) }()
	waitFor(t, "the use is held", func() bool { return e.srv.UseLatencyNow().Count == 0 })
	// The token was valid when the call came; it expires during the hold.
	e.clock.Advance(time.Minute)
	select {
	case code := <-got:
		t.Fatalf("the use was answered (%d) before its hold ended", code)
	default:
	}
	e.srv.ClearUseLatency()
	if code := <-got; code != 42001 {
		t.Errorf("held use answered %d, want 42001 (judged when the hold ends)", code)
	}
	// The count is used up: the next use is not held.
	fresh := e.token(e.classic())
	e.wantUse(fresh, 0)
}

func TestUseLatencyScopedByCaller(t *testing.T) {
	clock := NewFakeClock(t0)
	sim := New(Config{Now: clock.Now, Seed: 1})
	sim.AddApp(appID, appSecret)
	tok := from(t, sim, "127.0.0.1:1", classicPath).AccessToken
	sim.SetUseLatency(UseLatency{Latency: time.Hour, IPs: []string{"127.0.0.11"}})
	// Another caller is not held (a held call would block this test).
	if a := from(t, sim, "127.0.0.12:1", "/cgi-bin/getcallbackip?access_token="+tok); a.Errcode != 0 {
		t.Errorf("use from another host: errcode %d, want 0", a.Errcode)
	}
	done := make(chan answer, 1)
	go func() { done <- from(t, sim, "127.0.0.11:1", "/cgi-bin/getcallbackip?access_token="+tok) }()
	select {
	case a := <-done:
		t.Fatalf("use from the delayed host answered at once: %+v", a)
	case <-time.After(50 * time.Millisecond):
	}
	if u := sim.UseLatencyNow(); u.Latency != time.Hour || u.Count != 0 {
		t.Errorf("UseLatencyNow = %+v, want the delay until cleared", u)
	}
	sim.ClearUseLatency()
	if a := <-done; a.Errcode != 0 {
		t.Errorf("released use: errcode %d, want 0", a.Errcode)
	}
}

func TestAdminUseLatency(t *testing.T) {
	e := newEnv(t, Config{})
	e.admin(http.MethodPost, "/_sim/use_latency", `{"latency":"30ms","ips":["127.0.0.1"],"count":1}`, http.StatusNoContent, nil)
	var u UseLatency
	e.admin(http.MethodGet, "/_sim/use_latency", "", http.StatusOK, &u)
	if u.Latency != 30*time.Millisecond || u.Count != 1 || len(u.IPs) != 1 {
		t.Errorf("GET /_sim/use_latency = %+v, want what was set", u)
	}
	tok := e.token(e.classic())
	begin := time.Now()
	e.wantUse(tok, 0)
	if took := time.Since(begin); took < 30*time.Millisecond {
		t.Errorf("held use took %v, want at least 30ms", took)
	}
	e.admin(http.MethodGet, "/_sim/use_latency", "", http.StatusOK, &u)
	if u.Latency != 0 || u.Count != 0 || len(u.IPs) != 0 {
		t.Errorf("after its count: %+v, want none", u)
	}
	e.admin(http.MethodDelete, "/_sim/use_latency", "", http.StatusNoContent, nil)
	for _, bad := range []string{`{"latency":"soon"}`, `{"latency":"1s","count":-1}`, `{"latency":"1s","ips":["x"]}`} {
		e.admin(http.MethodPost, "/_sim/use_latency", bad, http.StatusBadRequest, nil)
	}
}
