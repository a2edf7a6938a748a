package wechattest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"
)

func TestFaultErrcodes(t *testing.T) {
	kinds := []struct {
		kind string
		call func(e *env, access string) answer
	}{
		{KindClassic, func(e *env, _ string) answer { return e.classic() }},
		{KindStable, func(e *env, _ string) answer { return e.stable(false) }},
		{KindWeCom, func(e *env, _ string) answer { return e.wecomAs(corpID, corpSecret) }},
		{KindTicket, func(e *env, access string) answer { return e.ticket(access, "jsapi") }},
	}
	modes := []struct {
		mode string
		want int
	}{
		{FaultBusy, -1},
		{FaultMinuteLimit, 45011},
		{FaultQuota, 45009},
	}
	for _, k := range kinds {
		for _, m := range modes {
			t.Run(k.kind+" "+m.mode, func(t *testing.T) {
				e := newEnv(t, Config{})
				access := e.token(e.classic())
				e.srv.SetFault(Fault{Mode: m.mode})
				wantCode(t, k.call(e, access), m.want)
				wantCode(t, k.call(e, access), m.want)
				if got := e.use(access); got != 0 {
					t.Errorf("getcallbackip under fault: errcode %d, want 0", got)
				}
				e.srv.ClearFault()
				wantCode(t, k.call(e, access), 0)
				l := e.srv.Ledger()
				for _, f := range l[1:3] {
					if f.Kind != k.kind || f.Errcode != m.want || f.Token != "" {
						t.Errorf("ledger line %+v, want %s errcode %d", f, k.kind, m.want)
					}
				}
			})
		}
	}
}

func TestFaultCountAndAppID(t *testing.T) {
	e := newEnv(t, Config{})
	e.srv.AddApp("wxother", "other")
	e.srv.SetFault(Fault{Mode: FaultBusy, Count: 2, AppID: appID})
	wantCode(t, e.classicAs("wxother", "other"), 0)
	wantCode(t, e.classic(), -1)
	wantCode(t, e.stable(false), -1)
	wantCode(t, e.classic(), 0)
}

func TestFault5xxAndBadJSON(t *testing.T) {
	tests := []struct {
		mode       string
		wantStatus int
	}{
		{Fault5xx, http.StatusBadGateway},
		{FaultBadJSON, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			e := newEnv(t, Config{})
			e.srv.SetFault(Fault{Mode: tc.mode, Count: 1})
			status, body := e.raw(http.MethodGet, "/cgi-bin/token?"+url.Values{
				"grant_type": {"client_credential"}, "appid": {appID}, "secret": {appSecret},
			}.Encode(), nil)
			if status != tc.wantStatus {
				t.Errorf("status = %d, want %d", status, tc.wantStatus)
			}
			var v map[string]any
			if err := json.Unmarshal(body, &v); err == nil {
				t.Errorf("body %q parses as JSON, want garbage", body)
			}
			l := e.srv.Ledger()
			if len(l) != 1 || l[0].Errcode != CodeNoAnswer || l[0].Issued {
				t.Errorf("ledger = %+v, want one line with errcode %d", l, CodeNoAnswer)
			}
			if e.srv.Current(appID, KindClassic) != "" {
				t.Errorf("a token was minted")
			}
			wantCode(t, e.classic(), 0)
		})
	}
}

func TestFaultLatency(t *testing.T) {
	e := newEnv(t, Config{})
	const d = 50 * time.Millisecond
	e.srv.SetFault(Fault{Mode: FaultLatency, Latency: d, Count: 1})
	begin := time.Now()
	tok := e.token(e.classic())
	if took := time.Since(begin); took < d {
		t.Errorf("answer took %v, want at least %v", took, d)
	}
	if l := e.srv.Ledger(); len(l) != 1 || l[0].Token != tok || !l[0].Issued {
		t.Errorf("ledger = %+v, want the issued token", l)
	}
}

// arrivals is a Config.Now that signals the first time it is read, which is
// when the first request arrives.
func arrivals(c *FakeClock) (now func() time.Time, arrived <-chan struct{}) {
	ch := make(chan struct{}, 1)
	return func() time.Time {
		t := c.Now()
		select {
		case ch <- struct{}{}:
		default:
		}
		return t
	}, ch
}

func TestFaultLatencyClientGaveUp(t *testing.T) {
	clock := NewFakeClock(t0)
	now, arrived := arrivals(clock)
	srv := NewServer(Config{Now: now, Seed: 1})
	srv.AddApp(appID, appSecret)
	srv.SetFault(Fault{Mode: FaultLatency, Latency: time.Minute})
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/cgi-bin/token?grant_type=client_credential&appid=" + appID + "&secret=" + appSecret)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-arrived
	clock.Advance(time.Hour)
	srv.Close() // releases the held call, which still completes
	<-done

	l := srv.Ledger()
	if len(l) != 1 {
		t.Fatalf("ledger has %d lines, want 1", len(l))
	}
	f := l[0]
	if !f.Issued || !f.Start.Equal(t0) || !f.At.Equal(t0.Add(time.Hour)) {
		t.Errorf("ledger line %+v, want issued, started at t0, answered an hour later", f)
	}
	if !srv.Valid(f.Token, f.At) {
		t.Errorf("the token minted after the delay is not valid")
	}
}

func TestFaultTimeout(t *testing.T) {
	e := newEnv(t, Config{})
	e.srv.SetFault(Fault{Mode: FaultTimeout})
	e.http.Timeout = 50 * time.Millisecond
	_, err := e.http.Get(e.srv.URL + "/cgi-bin/token?grant_type=client_credential&appid=" + appID + "&secret=" + appSecret)
	if err == nil {
		t.Fatalf("got an answer, want the client to time out")
	}
	e.srv.Close() // waits for the handler to notice
	l := e.srv.Ledger()
	if len(l) != 1 || l[0].Errcode != CodeNoAnswer || l[0].Token != "" {
		t.Errorf("ledger = %+v, want one line with errcode %d", l, CodeNoAnswer)
	}
}

func TestFaultTimeoutReleasedByClose(t *testing.T) {
	clock := NewFakeClock(t0)
	now, arrived := arrivals(clock)
	srv := NewServer(Config{Now: now, Seed: 1})
	srv.AddCorp(corpID, corpSecret)
	srv.SetFault(Fault{Mode: FaultTimeout, AppID: corpID})
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(srv.URL + "/cgi-bin/gettoken?corpid=" + corpID + "&corpsecret=" + corpSecret)
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-arrived
	srv.Close() // must not wait for the 60 s hold
	<-done
	if l := srv.Ledger(); len(l) != 1 || l[0].Kind != KindWeCom || l[0].Errcode != CodeNoAnswer {
		t.Errorf("ledger = %+v, want one wecom line with errcode %d", l, CodeNoAnswer)
	}
}

func TestSetFaultUnknownMode(t *testing.T) {
	e := newEnv(t, Config{})
	e.srv.SetFault(Fault{Mode: "nonsense"})
	wantCode(t, e.classic(), 0)
}

// A held call mints when its hold ends: a call that came and minted
// during the hold is superseded by the late one.
func TestFaultLatencyMintsAtTheEnd(t *testing.T) {
	e := newEnv(t, Config{Overlap: 30 * time.Second})
	e.srv.SetFault(Fault{Mode: FaultLatency, Latency: time.Hour, Count: 1, AppID: appID})
	late := make(chan string, 1)
	go func() { late <- e.token(e.classic()) }()
	waitFor(t, "the call is held", func() bool {
		e.srv.Sim.mu.Lock()
		defer e.srv.Sim.mu.Unlock()
		return !e.srv.Sim.faultOn
	})
	e.clock.Advance(5 * time.Second)
	during := e.token(e.classic()) // the count is used up: answered at once
	e.clock.Advance(time.Second)
	e.srv.ClearFault() // ends the hold
	held := <-late

	if cur := e.srv.Current(appID, KindClassic); cur != held {
		t.Errorf("newest token is not the held call's")
	}
	l := e.srv.Ledger()
	if len(l) != 2 || l[1].Token != held || !l[1].Start.Equal(t0) || !l[1].At.Equal(t0.Add(6*time.Second)) {
		t.Fatalf("ledger = %+v, want the held call last, from t0 to t0+6s", l)
	}
	// The token minted during the hold is the previous one from the late
	// mint on: it dies one overlap later.
	e.clock.Advance(30*time.Second - time.Microsecond)
	e.wantUse(during, 0)
	e.clock.Advance(time.Microsecond)
	e.wantUse(during, 40001)
	e.wantUse(held, 0)
}
