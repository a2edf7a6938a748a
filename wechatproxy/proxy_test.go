package wechatproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/api"
)

var _ Tokens = (*api.API)(nil)

// fakeTokens serves cur for app "shop" and turns it into next when cur is
// reported.
type fakeTokens struct {
	mu      sync.Mutex
	cur     string
	next    string
	reports int
	err     error
}

var _ Tokens = (*fakeTokens)(nil)

func (f *fakeTokens) Token(app string) (api.TokenResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return api.TokenResponse{}, f.err
	}
	return api.TokenResponse{App: app, AccessToken: f.cur, ExpiresIn: 60}, nil
}

func (f *fakeTokens) Invalidate(ctx context.Context, app, token string) (api.TokenResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reports++
	if token == f.cur {
		f.cur = f.next
	}
	return api.TokenResponse{App: app, AccessToken: f.cur, ExpiresIn: 60}, nil
}

// received is what the fake WeChat saw of one call.
type received struct {
	Method, Path, Query, Body string
	Header                    http.Header
}

// upstream is a fake WeChat: 40001 for the token "dead", else it echoes
// the call as JSON, with a hop-by-hop header and an end-to-end one.
type upstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []received
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc := received{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(body), r.Header.Clone()}
		u.mu.Lock()
		u.seen = append(u.seen, rc)
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json; encoding=utf-8")
		w.Header().Set("Connection", "X-Upstream-Hop")
		w.Header().Set("X-Upstream-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Wechat-Trace", "abc")
		if r.URL.Query().Get("access_token") == "dead" {
			fmt.Fprint(w, `{"errcode":40001,"errmsg":"invalid credential, access_token is invalid or not latest rid: x"}`)
			return
		}
		_ = json.NewEncoder(w).Encode(rc)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) calls() []received {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]received(nil), u.seen...)
}

func newProxy(t *testing.T, tokens Tokens, upstreams map[string]string, edit func(*Config)) http.Handler {
	t.Helper()
	cfg := Config{Tokens: tokens, Upstreams: upstreams}
	if edit != nil {
		edit(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle(Pattern, p)
	return mux
}

func TestProxyForwards(t *testing.T) {
	up, wecom := newUpstream(t), newUpstream(t)
	h := newProxy(t, &fakeTokens{cur: "live"}, map[string]string{"shop": up.srv.URL, "crm": wecom.srv.URL + "/"}, nil)
	req := httptest.NewRequest(http.MethodPost, "/wechat/shop/cgi-bin/message/custom/send?b=2&access_token=callers&a=%2F", strings.NewReader(`{"touser":"o1"}`))
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "1")
	req.Header.Set("Proxy-Authorization", "Basic eA==")
	req.Header.Set("Te", "trailers")
	req.Header.Set("X-Request-Id", "r1")
	req.Header.Set("Accept-Encoding", "br")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("status: got %d, want 200; body %s", w.Code, w.Body)
	}
	calls := up.calls()
	if len(calls) != 1 {
		t.Fatalf("calls: got %d, want 1", len(calls))
	}
	c := calls[0]
	if c.Method != http.MethodPost || c.Path != "/cgi-bin/message/custom/send" || c.Query != "b=2&a=%2F&access_token=live" || c.Body != `{"touser":"o1"}` {
		t.Errorf("upstream got %s %s?%s %q, want POST /cgi-bin/message/custom/send?b=2&a=%%2F&access_token=live with the body", c.Method, c.Path, c.Query, c.Body)
	}
	for _, hop := range []string{"X-Hop", "Proxy-Authorization", "Te"} {
		if v := c.Header.Get(hop); v != "" {
			t.Errorf("upstream header %s: got %q, want none", hop, v)
		}
	}
	if c.Header.Get("X-Request-Id") != "r1" {
		t.Errorf("upstream header X-Request-Id: got %q, want r1", c.Header.Get("X-Request-Id"))
	}
	if v := c.Header.Get("Accept-Encoding"); v == "br" {
		t.Errorf("upstream Accept-Encoding: got the caller's %q, want the proxy's own", v)
	}
	for _, hop := range []string{"X-Upstream-Hop", "Keep-Alive", "Connection"} {
		if v := w.Header().Get(hop); v != "" {
			t.Errorf("answer header %s: got %q, want none", hop, v)
		}
	}
	if w.Header().Get("X-Wechat-Trace") != "abc" {
		t.Errorf("answer header X-Wechat-Trace: got %q, want abc", w.Header().Get("X-Wechat-Trace"))
	}

	// A WeCom app goes to its own base.
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/wechat/crm/cgi-bin/user/get?userid=u1", nil))
	if n := len(wecom.calls()); w.Code != http.StatusOK || n != 1 {
		t.Errorf("crm: got status %d and %d calls to its base, want 200 and 1", w.Code, n)
	}
}

func TestProxyRetriesDeadToken(t *testing.T) {
	up := newUpstream(t)
	tokens := &fakeTokens{cur: "dead", next: "fresh"}
	h := newProxy(t, tokens, map[string]string{"shop": up.srv.URL}, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/wechat/shop/cgi-bin/x", strings.NewReader("payload")))
	var got received
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != http.StatusOK {
		t.Fatalf("answer: got %d %s, want 200 and the echo", w.Code, w.Body)
	}
	calls := up.calls()
	if len(calls) != 2 || calls[0].Body != "payload" || calls[1].Body != "payload" || calls[1].Query != "access_token=fresh" {
		t.Errorf("upstream calls: got %+v, want the payload twice, then with the fresh token", calls)
	}
	if tokens.reports != 1 {
		t.Errorf("reports: got %d, want 1", tokens.reports)
	}
}

func TestProxyErrors(t *testing.T) {
	up := newUpstream(t)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer hang.Close()
	ups := map[string]string{"shop": up.srv.URL, "down": down.URL, "hang": hang.URL}
	noCred := &api.Error{Status: http.StatusServiceUnavailable, Code: "no_credential", Message: "no credential yet for shop/token"}

	tests := []struct {
		name     string
		tokens   *fakeTokens
		req      func() *http.Request
		wantCode int
		wantErr  string
	}{
		{"unknown app", &fakeTokens{cur: "live"},
			func() *http.Request { return httptest.NewRequest(http.MethodGet, "/wechat/nope/cgi-bin/x", nil) },
			http.StatusNotFound, "unknown_app"},
		{"body too large", &fakeTokens{cur: "live"},
			func() *http.Request {
				return httptest.NewRequest(http.MethodPost, "/wechat/shop/cgi-bin/x", bytes.NewReader(make([]byte, 1025)))
			},
			http.StatusRequestEntityTooLarge, "body_too_large"},
		{"body too large, length unknown", &fakeTokens{cur: "live"},
			func() *http.Request {
				r := httptest.NewRequest(http.MethodPost, "/wechat/shop/cgi-bin/x", io.MultiReader(bytes.NewReader(make([]byte, 1025))))
				r.ContentLength = -1
				return r
			},
			http.StatusRequestEntityTooLarge, "body_too_large"},
		{"no credential", &fakeTokens{err: noCred},
			func() *http.Request { return httptest.NewRequest(http.MethodGet, "/wechat/shop/cgi-bin/x", nil) },
			http.StatusServiceUnavailable, "no_credential"},
		{"WeChat unreachable", &fakeTokens{cur: "live"},
			func() *http.Request { return httptest.NewRequest(http.MethodGet, "/wechat/down/cgi-bin/x", nil) },
			http.StatusBadGateway, "upstream_unreachable"},
		{"WeChat silent", &fakeTokens{cur: "live"},
			func() *http.Request { return httptest.NewRequest(http.MethodGet, "/wechat/hang/cgi-bin/x", nil) },
			http.StatusGatewayTimeout, "upstream_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newProxy(t, tt.tokens, ups, func(c *Config) { c.MaxBody = 1024; c.Timeout = 200 * time.Millisecond })
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tt.req())
			var e api.Error
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
				t.Fatalf("answer %q: %v", w.Body, err)
			}
			if w.Code != tt.wantCode || e.Code != tt.wantErr {
				t.Errorf("answer: got %d %q (%s), want %d %q", w.Code, e.Code, e.Message, tt.wantCode, tt.wantErr)
			}
			if strings.Contains(e.Message, "live") {
				t.Errorf("answer %q names the access token", e.Message)
			}
		})
	}
	if n := len(up.calls()); n != 0 {
		t.Errorf("calls to WeChat: got %d, want 0", n)
	}
}

func TestProxyStreamsLargeAnswer(t *testing.T) {
	big := bytes.Repeat([]byte("wxtoken!"), 1<<19) // 4 MiB
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(big)
	}))
	defer srv.Close()
	front := httptest.NewServer(newProxy(t, &fakeTokens{cur: "live"}, map[string]string{"shop": srv.URL}, nil))
	defer front.Close()
	resp, err := http.Get(front.URL + "/wechat/shop/cgi-bin/media/get?media_id=m")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(got, big) {
		t.Errorf("answer: got %d bytes (err %v), want the %d sent", len(got), err, len(big))
	}
}

func TestNewRejectsBadUpstream(t *testing.T) {
	if _, err := New(Config{Tokens: &fakeTokens{}, Upstreams: map[string]string{"a": "api.weixin.qq.com"}}); err == nil {
		t.Errorf("New(upstream without scheme): got nil error, want one")
	}
	if _, err := New(Config{}); err == nil {
		t.Errorf("New(no Tokens): got nil error, want one")
	}
}
