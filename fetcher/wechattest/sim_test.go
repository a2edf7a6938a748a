package wechattest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// t0 is 10:00 China time; the next China midnight is 16:00 UTC.
var t0 = time.Date(2025, 3, 10, 2, 0, 0, 0, time.UTC)

const (
	appID      = "wx0123456789abcdef"
	appSecret  = "app-secret"
	corpID     = "ww0123456789abcdef"
	corpSecret = "corp-secret"
)

var tokenShape = regexp.MustCompile(`^[A-Za-z0-9_-]{136,}$`)

// answer is the union of the simulator's JSON answers.
type answer struct {
	AccessToken string   `json:"access_token"`
	Ticket      string   `json:"ticket"`
	ExpiresIn   int      `json:"expires_in"`
	Errcode     int      `json:"errcode"`
	Errmsg      string   `json:"errmsg"`
	IPList      []string `json:"ip_list"`
}

// env is a running simulator with one app and one corp, on a fake clock.
type env struct {
	t     *testing.T
	clock *FakeClock
	srv   *Server
	http  *http.Client
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	clock := NewFakeClock(t0)
	cfg.Now = clock.Now
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	srv := NewServer(cfg)
	t.Cleanup(srv.Close)
	srv.AddApp(appID, appSecret)
	srv.AddCorp(corpID, corpSecret)
	return &env{t: t, clock: clock, srv: srv, http: &http.Client{Timeout: 10 * time.Second}}
}

// raw sends a request and returns the status and body. It reports errors
// with Errorf, so it may run on any goroutine.
func (e *env) raw(method, pathQuery string, body []byte) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+pathQuery, bytes.NewReader(body))
	if err != nil {
		e.t.Errorf("new request: %v", err)
		return 0, nil
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Errorf("%s %s: %v", method, pathQuery, err)
		return 0, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Errorf("read body: %v", err)
	}
	return resp.StatusCode, b
}

func (e *env) decode(status int, b []byte) answer {
	e.t.Helper()
	var a answer
	if status != http.StatusOK {
		e.t.Errorf("status = %d, want 200 (body %q)", status, b)
		return a
	}
	if err := json.Unmarshal(b, &a); err != nil {
		e.t.Errorf("decode %q: %v", b, err)
	}
	return a
}

func (e *env) get(path string, q url.Values) answer {
	e.t.Helper()
	return e.decode(e.raw(http.MethodGet, path+"?"+q.Encode(), nil))
}

func (e *env) postJSON(path string, v any) answer {
	e.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		e.t.Fatalf("marshal: %v", err)
	}
	return e.decode(e.raw(http.MethodPost, path, b))
}

func (e *env) classicAs(id, secret string) answer {
	e.t.Helper()
	return e.get("/cgi-bin/token", url.Values{"grant_type": {"client_credential"}, "appid": {id}, "secret": {secret}})
}

func (e *env) classic() answer { e.t.Helper(); return e.classicAs(appID, appSecret) }

func (e *env) stable(force bool) answer {
	e.t.Helper()
	return e.postJSON("/cgi-bin/stable_token", map[string]any{
		"grant_type": "client_credential", "appid": appID, "secret": appSecret, "force_refresh": force,
	})
}

func (e *env) wecomAs(id, secret string) answer {
	e.t.Helper()
	return e.get("/cgi-bin/gettoken", url.Values{"corpid": {id}, "corpsecret": {secret}})
}

func (e *env) ticket(tok, typ string) answer {
	e.t.Helper()
	return e.get("/cgi-bin/ticket/getticket", url.Values{"access_token": {tok}, "type": {typ}})
}

// use calls getcallbackip with tok and returns the errcode (0 = worked).
func (e *env) use(tok string) int {
	e.t.Helper()
	a := e.get("/cgi-bin/getcallbackip", url.Values{"access_token": {tok}})
	if a.Errcode == 0 && len(a.IPList) == 0 {
		e.t.Errorf("getcallbackip: no errcode and no ip_list")
	}
	return a.Errcode
}

// token returns the token or ticket of a successful answer.
func (e *env) token(a answer) string {
	e.t.Helper()
	tok := a.AccessToken + a.Ticket
	if a.Errcode != 0 || !tokenShape.MatchString(tok) {
		e.t.Fatalf("answer = %+v, want a token", a)
	}
	return tok
}

// wantUse checks that tok gets errcode want on use and matches the oracle.
func (e *env) wantUse(tok string, want int) {
	e.t.Helper()
	if got := e.use(tok); got != want {
		e.t.Errorf("use at %v: errcode = %d, want %d", e.clock.Now().Sub(t0), got, want)
	}
	if got := e.srv.Valid(tok, e.clock.Now()); got != (want == 0) {
		e.t.Errorf("Valid at %v = %v, want %v", e.clock.Now().Sub(t0), got, want == 0)
	}
}

func wantCode(t *testing.T, a answer, want int) {
	t.Helper()
	if a.Errcode != want {
		t.Errorf("errcode = %d (%q), want %d", a.Errcode, a.Errmsg, want)
	}
	if want != 0 && (a.AccessToken != "" || a.Ticket != "") {
		t.Errorf("error answer carries a token: %+v", a)
	}
}

func TestFakeClock(t *testing.T) {
	c := NewFakeClock(t0)
	c.Advance(time.Hour)
	if got, want := c.Now(), t0.Add(time.Hour); !got.Equal(want) {
		t.Errorf("after Advance: Now = %v, want %v", got, want)
	}
	c.Set(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Errorf("after Set: Now = %v, want %v", got, t0)
	}
}

func TestHandlerWithoutServer(t *testing.T) {
	sim := New(Config{Seed: 1, AllowIPs: []string{"192.0.2.0/24"}})
	sim.AddApp(appID, appSecret)
	for _, tc := range []struct {
		remote string
		want   int
	}{
		{"192.0.2.7:4000", 0},
		{"[::ffff:192.0.2.8]:4000", 0},
		{"198.51.100.1:4000", 40164},
	} {
		t.Run(tc.remote, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/cgi-bin/token?grant_type=client_credential&appid="+appID+"&secret="+appSecret, nil)
			r.RemoteAddr = tc.remote
			w := httptest.NewRecorder()
			sim.Handler().ServeHTTP(w, r)
			var a answer
			if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
				t.Fatalf("decode %q: %v", w.Body.String(), err)
			}
			wantCode(t, a, tc.want)
			if tc.want == 40164 && !strings.Contains(a.Errmsg, "invalid ip 198.51.100.1") {
				t.Errorf("errmsg = %q, want the caller's IP", a.Errmsg)
			}
		})
	}
}

// TestConns: the server counts the connections it accepts, not requests.
func TestConns(t *testing.T) {
	e := newEnv(t, Config{})
	for _, tc := range []struct {
		name      string
		keepAlive bool
		want      int64
	}{{"keep-alive", true, 1}, {"a connection per request", false, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &http.Transport{DisableKeepAlives: !tc.keepAlive}
			defer tr.CloseIdleConnections()
			e.http = &http.Client{Transport: tr, Timeout: 10 * time.Second}
			before := e.srv.Conns()
			for range 3 {
				if status, _ := e.raw(http.MethodGet, "/cgi-bin/getcallbackip", nil); status != http.StatusOK {
					t.Fatalf("status %d", status)
				}
			}
			if got := e.srv.Conns() - before; got != tc.want {
				t.Errorf("Conns: got %d more, want %d", got, tc.want)
			}
		})
	}
}
