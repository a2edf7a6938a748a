package access

import (
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const (
	shopToken  = "shop-token-0123456789abcdef"
	opsToken   = "ops-token-0123456789abcdef"
	wrongToken = "wrong-token-0123456789abcdef"
)

func sum(tok string) []byte {
	s := sha256.Sum256([]byte(tok))
	return s[:]
}

// newGuard guards a handler that answers 200 "ok" and records the caller.
func newGuard(t testing.TB, anonymous bool) *Guard {
	t.Helper()
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := CallerFrom(r.Context()); ok {
			w.Header().Set("X-Caller", c.Name+"|"+c.Addr)
		}
		w.WriteHeader(http.StatusOK)
	})
	g, err := New(next, Config{
		Clients: []Client{
			{Name: "shop-web", TokenSHA256: sum(shopToken), Apps: []string{"shop"}, Allow: Read | Invalidate | Proxy | JSSDK | Ticket},
			{Name: "ops", TokenSHA256: sum(opsToken), Apps: []string{"*"}, Allow: Status},
			{Name: "billing", CertCN: "billing.internal", Apps: []string{"shop"}, Allow: Read},
		},
		Anonymous: anonymous,
		Hosts:     []string{"wxtoken.internal"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func do(h http.Handler, method, target, token string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	r.Host = "127.0.0.1:8417"
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestGuard(t *testing.T) {
	g := newGuard(t, false)
	tests := []struct {
		name, method, target, token string
		want                        int
		code                        string
	}{
		{"health open", "GET", "/healthz", "", 200, ""},
		{"ready open", "GET", "/readyz", "", 200, ""},
		{"anonymous read", "GET", "/v1/apps/shop/token", "", 401, "unauthorized"},
		{"wrong token", "GET", "/v1/apps/shop/token", wrongToken, 401, "unauthorized"},
		{"read", "GET", "/v1/apps/shop/token", shopToken, 200, ""},
		{"read other app", "GET", "/v1/apps/mini/token", shopToken, 403, "forbidden"},
		{"read escaped app", "GET", "/v1/apps/sh%6fp/token", shopToken, 200, ""},
		{"read escaped other app", "GET", "/v1/apps/m%69ni/token", shopToken, 403, "forbidden"},
		{"escaped literal", "GET", "/v%31/apps/mini/token", shopToken, 403, "forbidden"},
		{"status needs status", "GET", "/v1/status", shopToken, 403, "forbidden"},
		{"metrics needs status", "GET", "/metrics", shopToken, 403, "forbidden"},
		{"ui needs status", "GET", "/ui/", shopToken, 403, "forbidden"},
		{"status", "GET", "/v1/status", opsToken, 200, ""},
		{"ops may not read", "GET", "/v1/apps/shop/token", opsToken, 403, "forbidden"},
		{"proxy", "GET", "/wechat/shop/cgi-bin/getcallbackip", shopToken, 200, ""},
		{"proxy other app", "GET", "/wechat/mini/cgi-bin/getcallbackip", shopToken, 403, "forbidden"},
		{"ticket", "GET", "/v1/apps/shop/ticket/jsapi", shopToken, 200, ""},
		{"jssdk", "GET", "/v1/apps/shop/jssdk/signature?url=x", shopToken, 200, ""},
		{"unknown route, known caller", "GET", "/nope", shopToken, 200, ""},
		{"unknown route, anonymous", "GET", "/nope", "", 401, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(g, tt.method, tt.target, tt.token, nil)
			if w.Code != tt.want {
				t.Fatalf("%s %s: got %d %s, want %d", tt.method, tt.target, w.Code, w.Body, tt.want)
			}
			if tt.code == "" {
				return
			}
			var e errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code != tt.code || e.Message == "" {
				t.Errorf("body: got %s, want code %q", w.Body, tt.code)
			}
			if got := w.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type: got %q", got)
			}
			if tt.want == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `Bearer realm="wxtoken"`) {
				t.Errorf("WWW-Authenticate: got %q", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestGuardAuthorizationHeader(t *testing.T) {
	g := newGuard(t, false)
	for _, tt := range []struct {
		header string
		want   int
	}{
		{"Bearer " + shopToken, 200},
		{"bearer " + shopToken, 200},
		{"BEARER  " + shopToken + " ", 200},
		{"Basic " + shopToken, 401},
		{"Bearer", 401},
		{"Bearer ", 401},
		{shopToken, 401},
	} {
		w := do(g, "GET", "/v1/apps/shop/token", "", map[string]string{"Authorization": tt.header})
		if w.Code != tt.want {
			t.Errorf("Authorization %q: got %d, want %d", tt.header, w.Code, tt.want)
		}
	}
	r := httptest.NewRequest("GET", "/v1/apps/shop/token", nil)
	r.Host = "127.0.0.1:8417"
	r.Header.Add("Authorization", "Bearer "+shopToken)
	r.Header.Add("Authorization", "Bearer "+opsToken)
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	if w.Code != 401 {
		t.Errorf("two Authorization headers: got %d, want 401", w.Code)
	}
}

func TestGuardAnonymous(t *testing.T) {
	g := newGuard(t, true)
	for _, tt := range []struct {
		target, token string
		want          int
	}{
		{"/v1/apps/shop/token", "", 200},
		{"/v1/status", "", 200},
		{"/v1/apps/shop/token", wrongToken, 401}, // a wrong token is an error even here
		{"/v1/apps/mini/token", shopToken, 403},  // a known client keeps its scope
	} {
		if w := do(g, "GET", tt.target, tt.token, nil); w.Code != tt.want {
			t.Errorf("GET %s (token %q): got %d, want %d", tt.target, tt.token, w.Code, tt.want)
		}
	}
}

func TestGuardBrowser(t *testing.T) {
	g := newGuard(t, true)
	tests := []struct {
		name, method, target string
		hdr                  map[string]string
		host                 string
		want                 int
		code                 string
	}{
		{"loopback host", "GET", "/v1/apps/shop/token", nil, "127.0.0.1:8417", 200, ""},
		{"localhost", "GET", "/v1/apps/shop/token", nil, "localhost:8417", 200, ""},
		{"IPv6 host", "GET", "/v1/apps/shop/token", nil, "[::1]:8417", 200, ""},
		{"configured host", "GET", "/v1/apps/shop/token", nil, "WXTOKEN.internal:8417", 200, ""},
		{"rebound name", "GET", "/v1/apps/shop/token", nil, "evil.example:8417", 421, "bad_host"},
		{"rebound name, health", "GET", "/healthz", nil, "evil.example:8417", 200, ""},
		{"own origin", "POST", "/v1/apps/shop/token/invalidate", map[string]string{"Origin": "http://127.0.0.1:8417", "Content-Type": "application/json"}, "127.0.0.1:8417", 200, ""},
		{"foreign origin", "GET", "/v1/apps/shop/token", map[string]string{"Origin": "http://evil.example"}, "127.0.0.1:8417", 403, "cross_origin"},
		{"null origin", "POST", "/v1/apps/shop/token/invalidate", map[string]string{"Origin": "null", "Content-Type": "application/json"}, "127.0.0.1:8417", 403, "cross_origin"},
		{"other port", "GET", "/v1/apps/shop/token", map[string]string{"Origin": "http://127.0.0.1:8080"}, "127.0.0.1:8417", 403, "cross_origin"},
		{"cross-site fetch", "GET", "/v1/apps/shop/token", map[string]string{"Sec-Fetch-Site": "cross-site"}, "127.0.0.1:8417", 403, "cross_origin"},
		{"typed by user", "GET", "/v1/apps/shop/token", map[string]string{"Sec-Fetch-Site": "none"}, "127.0.0.1:8417", 200, ""},
		{"form post", "POST", "/v1/apps/shop/token/invalidate", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "127.0.0.1", 415, "unsupported_media_type"},
		{"text post", "POST", "/wechat/shop/cgi-bin/x", map[string]string{"Content-Type": "text/plain"}, "127.0.0.1", 415, "unsupported_media_type"},
		{"json with charset", "POST", "/v1/apps/shop/token/invalidate", map[string]string{"Content-Type": "Application/JSON; charset=utf-8"}, "127.0.0.1", 200, ""},
		{"body-less post", "POST", "/wechat/shop/cgi-bin/x", nil, "127.0.0.1", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, nil)
			r.Host = tt.host
			for k, v := range tt.hdr {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			g.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.want)
			}
			if tt.code != "" && !strings.Contains(w.Body.String(), `"code":"`+tt.code+`"`) {
				t.Errorf("body: got %s, want code %s", w.Body, tt.code)
			}
		})
	}
	// A body without a declared type is refused.
	r := httptest.NewRequest("POST", "/v1/apps/shop/token/invalidate", strings.NewReader(`{"access_token":"x"}`))
	r.Host = "127.0.0.1:8417"
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	if w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("POST with a body and no Content-Type: got %d, want 415", w.Code)
	}
}

// TestGuardCaller: requests that may trigger a refresh carry their caller
// for the Limiter; others do not pay for a new context.
func TestGuardCaller(t *testing.T) {
	g := newGuard(t, true)
	hdr := map[string]string{"Content-Type": "application/json"}
	if got := do(g, "POST", "/v1/apps/shop/token/invalidate", shopToken, hdr).Header().Get("X-Caller"); got != "shop-web|" {
		t.Errorf("invalidate by shop-web: caller %q, want %q", got, "shop-web|")
	}
	if got := do(g, "GET", "/wechat/shop/x", "", nil).Header().Get("X-Caller"); got != "|192.0.2.1" {
		t.Errorf("anonymous proxy: caller %q, want %q", got, "|192.0.2.1")
	}
	if got := do(g, "GET", "/v1/apps/shop/token", shopToken, nil).Header().Get("X-Caller"); got != "" {
		t.Errorf("read: caller %q, want none", got)
	}
}

// TestGuardAllocs: a granted token read costs no allocation in the guard.
func TestGuardAllocs(t *testing.T) {
	g, err := New(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), Config{
		Clients: []Client{{Name: "shop-web", TokenSHA256: sum(shopToken), Apps: []string{"shop"}, Allow: Read}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/v1/apps/shop/token", nil)
	r.Header.Set("Authorization", "Bearer "+shopToken)
	r.Host = "127.0.0.1:8417"
	w := httptest.NewRecorder()
	if n := testing.AllocsPerRun(100, func() { g.ServeHTTP(w, r) }); n != 0 {
		t.Errorf("allocations per granted read: got %v, want 0", n)
	}
}

func TestParseAction(t *testing.T) {
	for _, name := range []string{"read", "invalidate", "proxy", "jssdk", "ticket", "status", "preauth"} {
		a, ok := ParseAction(name)
		if !ok || a.String() != name {
			t.Errorf("ParseAction(%q) = %v, %v", name, a, ok)
		}
	}
	if _, ok := ParseAction("write"); ok {
		t.Error(`ParseAction("write"): got ok`)
	}
	if got, want := All.String(), "read,invalidate,proxy,jssdk,ticket,status,preauth"; got != want {
		t.Errorf("All: got %q, want %q", got, want)
	}
}

func TestNewRefuses(t *testing.T) {
	next := http.NotFoundHandler()
	for _, c := range []Client{
		{Name: "none"},
		{Name: "both", TokenSHA256: sum("x"), CertCN: "x"},
		{Name: "short", TokenSHA256: []byte{1, 2}},
	} {
		if _, err := New(next, Config{Clients: []Client{c}}); err == nil {
			t.Errorf("New with client %+v: got nil error", c)
		}
	}
}

// BenchmarkGuard is the guard's own cost on a granted token read (a
// bearer token, three clients), in front of a handler that does nothing.
func BenchmarkGuard(b *testing.B) {
	var clients []Client
	for i, tok := range []string{opsToken, wrongToken, shopToken} {
		clients = append(clients, Client{Name: string(rune('a' + i)), TokenSHA256: sum(tok), Apps: []string{"mini", "shop"}, Allow: Read})
	}
	g, err := New(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), Config{Clients: clients})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/v1/apps/shop/token", nil)
	r.Header.Set("Authorization", "Bearer "+shopToken)
	r.Host = "127.0.0.1:8417"
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		g.ServeHTTP(w, r)
	}
}

func TestEqual(t *testing.T) {
	a := sha256.Sum256([]byte("a"))
	for i := range sha256.Size {
		b := a
		b[i] ^= 0x80
		if equal(&a, &b) {
			t.Errorf("hashes differing in byte %d: equal", i)
		}
	}
	b := a
	if !equal(&a, &b) {
		t.Error("the same hash: not equal")
	}
}

// TestGuardPlatformEvents: a platform's event URL takes WeChat's pushes
// as they come (no credentials, text/xml, the public Host), and that
// exemption is for that route alone.
func TestGuardPlatformEvents(t *testing.T) {
	g := newGuard(t, false)
	push := func(target, ctype, host string) int {
		r := httptest.NewRequest("POST", target, strings.NewReader("<xml><Encrypt>x</Encrypt></xml>"))
		r.Host = host
		r.Header.Set("Content-Type", ctype)
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		return w.Code
	}
	q := "?timestamp=1&nonce=2&encrypt_type=aes&msg_signature=x"
	if got := push("/v1/platforms/saas/events"+q, "text/xml", "wx.example.com"); got != http.StatusOK {
		t.Errorf("a push: %d, want it passed to the handler", got)
	}
	for _, target := range []string{"/v1/apps/shop/token/invalidate", "/v1/platforms/saas/events/x", "/v1/platforms/saas/preauth"} {
		if got := push(target, "text/xml", "127.0.0.1"); got != http.StatusUnauthorized {
			t.Errorf("POST %s without credentials: %d, want 401", target, got)
		}
	}
}
