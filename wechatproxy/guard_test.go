package wechatproxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"

	"github.com/wxtoken/wxtoken/api"
)

// TestProxyDropsCredentials: the caller's Authorization (its replica
// token), cookies and anything holding an access_token never reach WeChat.
func TestProxyDropsCredentials(t *testing.T) {
	up := newUpstream(t)
	h := newProxy(t, &fakeTokens{cur: "live"}, map[string]string{"shop": up.srv.URL}, nil)
	req := httptest.NewRequest(http.MethodGet, "/wechat/shop/cgi-bin/getcallbackip?access_token=callers", nil)
	req.Header.Set("Authorization", "Bearer replica-client-token")
	req.Header.Set("Cookie", "session=abc")
	req.Header.Set("Referer", "http://app.internal/page?access_token=leaked")
	req.Header.Set("X-Token-Echo", "access_token=leaked")
	req.Header.Set("X-Forwarded-For", "10.1.2.3")
	req.Header.Set("X-Request-Id", "r1")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d %s", w.Code, w.Body)
	}
	c := up.calls()[0]
	for _, k := range []string{"Authorization", "Cookie", "Referer", "X-Token-Echo", "X-Forwarded-For"} {
		if v := c.Header.Get(k); v != "" {
			t.Errorf("WeChat got %s: %q, want none", k, v)
		}
	}
	for k, vs := range c.Header {
		for _, v := range vs {
			if strings.Contains(v, "replica-client-token") || strings.Contains(v, "leaked") || strings.Contains(v, "callers") {
				t.Errorf("WeChat got header %s: %q", k, v)
			}
		}
	}
	if c.Query != "access_token=live" {
		t.Errorf("WeChat got query %q, want the app's token alone", c.Query)
	}
	if c.Header.Get("X-Request-Id") != "r1" {
		t.Errorf("X-Request-Id: got %q, want it passed on", c.Header.Get("X-Request-Id"))
	}
}

// TestProxyRefusesPaths: a path that could climb out of the base URL's
// path after decoding, and methods other than GET and POST, never reach
// WeChat.
func TestProxyRefusesPaths(t *testing.T) {
	up := newUpstream(t)
	tokens := &fakeTokens{cur: "live"}
	p, err := New(Config{Tokens: tokens, Upstreams: map[string]string{"shop": up.srv.URL + "/base"}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Pattern, p)
	tests := []struct {
		method, target string
		want           int
		code           string
	}{
		{"GET", "/wechat/shop/cgi-bin/%2e%2e/%2e%2e/admin", 400, "bad_path"},
		{"GET", "/wechat/shop/cgi-bin/%2E%2E/admin", 400, "bad_path"},
		{"GET", "/wechat/shop/%2e./admin", 400, "bad_path"},
		{"GET", "/wechat/shop/cgi-bin%2fadmin", 400, "bad_path"},
		{"GET", "/wechat/shop/cgi-bin%2Fadmin", 400, "bad_path"},
		{"GET", "/wechat/shop/cgi-bin%5cadmin", 400, "bad_path"},
		{"GET", "/wechat/shop/cgi-bin%5C..%5Cadmin", 400, "bad_path"},
		{"GET", "/wechat/shop/cgi-bin\\..\\admin", 400, "bad_path"},
		{"GET", "/wechat/shop/a%252e%252e/x", 200, ""}, // "%2e" as text: WeChat sees the literal %252e
		{"GET", "/wechat/sh%6fp/cgi-bin/token", 200, ""},
		{"PUT", "/wechat/shop/cgi-bin/x", 405, "method_not_allowed"},
		{"DELETE", "/wechat/shop/cgi-bin/x", 405, "method_not_allowed"},
		{"OPTIONS", "/wechat/shop/cgi-bin/x", 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			before := len(up.calls())
			r, err := http.NewRequest(tt.method, "http://127.0.0.1"+tt.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.want)
			}
			if tt.code == "" {
				if c := up.calls()[before]; !strings.HasPrefix(c.Path, "/base/") {
					t.Errorf("WeChat got path %q, want it under /base/", c.Path)
				}
				return
			}
			var e api.Error
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code != tt.code {
				t.Errorf("body %s: want code %s", w.Body, tt.code)
			}
			if n := len(up.calls()); n != before {
				t.Errorf("WeChat was called")
			}
			if tt.want == 405 && w.Header().Get("Allow") != "GET, POST" {
				t.Errorf("Allow: got %q", w.Header().Get("Allow"))
			}
		})
	}
}

// TestProxyBodyBudget: bodies held at once are bounded across calls; a call
// past the budget is answered 503 proxy_busy, and the budget comes back
// when calls end.
func TestProxyBodyBudget(t *testing.T) {
	release := make(chan struct{})
	var arrived sync.WaitGroup
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		arrived.Done()
		<-release
		w.Write([]byte(`{"errcode":0}`))
	}))
	defer slow.Close()
	h := newProxy(t, &fakeTokens{cur: "live"}, map[string]string{"shop": slow.URL}, func(c *Config) {
		c.MaxBody = 1000
		c.BodyBudget = 2500
	})
	post := func(n int) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/wechat/shop/cgi-bin/x", bytes.NewReader(make([]byte, n))))
		return w
	}
	// Two calls of 1000 bytes are held upstream.
	arrived.Add(2)
	done := make(chan int, 2)
	for range 2 {
		go func() { done <- post(1000).Code }()
	}
	arrived.Wait()
	if w := post(1000); w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "proxy_busy") || w.Header().Get("Retry-After") == "" {
		t.Errorf("third 1000-byte body: got %d %s, want 503 proxy_busy with Retry-After", w.Code, w.Body)
	}
	// A small one still fits; a body-less call never counts.
	arrived.Add(2)
	go func() { done <- post(400).Code }()
	go func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/wechat/shop/cgi-bin/y", nil))
		done <- w.Code
	}()
	arrived.Wait()
	close(release)
	for range 4 {
		if code := <-done; code != http.StatusOK {
			t.Errorf("held call: got %d, want 200", code)
		}
	}
	arrived.Add(1)
	if w := post(1000); w.Code != http.StatusOK {
		t.Errorf("after the calls ended: got %d %s, want 200", w.Code, w.Body)
	}
}

// FuzzTarget: whatever the path, the call goes to the upstream's host,
// under its base path, with no segment that a server could read as "."
// or "..".
func FuzzTarget(f *testing.F) {
	for _, s := range []string{"cgi-bin/token", "cgi-bin/%2e%2e/x", "a/../b", "a/./b", "a%2Fb", "%5c", "a%252e", "", "a//b",
		"%", "%zz", "a?b", "a#b", "%3f", "..%2f", "%c0%ae%c0%ae/x", "a/%2E%2e", "\\..\\x", "a;/../b"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://api.example.com/base")
	f.Fuzz(func(t *testing.T, rest string) {
		u, err := target(base, rest, "q=1")
		if err != nil {
			return
		}
		if u.Scheme != base.Scheme || u.Host != base.Host || u.User != nil || u.RawQuery != "q=1" || u.Fragment != "" {
			t.Fatalf("target(%q) = %s: left the upstream", rest, u)
		}
		if !strings.HasPrefix(u.EscapedPath(), "/base/") && u.EscapedPath() != "/base/" {
			t.Fatalf("target(%q) = %s: not under /base/", rest, u)
		}
		lower := strings.ToLower(u.EscapedPath())
		if strings.Contains(lower, "%2e") || strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.Contains(u.Path, "\\") {
			t.Fatalf("target(%q) = %s: an encoded dot, slash or backslash", rest, u)
		}
		for _, p := range []string{u.Path, u.EscapedPath()} {
			if p != "/base/" && path.Clean(p) != p {
				t.Fatalf("target(%q) = %s: path %q has dot or empty segments", rest, u, p)
			}
		}
	})
}
