package access

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// apiPatterns are the routes of the replica's API mux (api.New and the
// routes replica mounts), each with the route classify must give it.
var apiPatterns = []struct {
	pattern string
	action  Action
	open    bool
}{
	{"GET /v1/apps/{app}/token", Read, false},
	{"POST /v1/apps/{app}/token/invalidate", Invalidate, false},
	{"GET /v1/apps/{app}/ticket/{type}", Ticket, false},
	{"GET /v1/apps/{app}/jssdk/signature", JSSDK, false},
	{"/wechat/{app}/{path...}", Proxy, false},
	{"GET /healthz", 0, true},
	{"GET /readyz", 0, true},
	{"GET /metrics", Status, false},
	{"GET /v1/status", Status, false},
	{"/ui/", Status, false},
	{"POST /v1/platforms/{name}/events", 0, true},
	{"GET /v1/platforms/{name}/token", Read, false},
	{"POST /v1/platforms/{name}/token/invalidate", Invalidate, false},
	{"GET /v1/platforms/{name}/authorizers", Read, false},
	{"GET /v1/platforms/{name}/authorizers/{appid}/token", Read, false},
	{"POST /v1/platforms/{name}/authorizers/{appid}/token/invalidate", Invalidate, false},
	{"POST /v1/platforms/{name}/preauth", PreAuth, false},
}

// routeMux answers each request with the pattern that matched and the app
// it names, in headers.
func routeMux() *http.ServeMux {
	mux := http.NewServeMux()
	for _, p := range apiPatterns {
		mux.HandleFunc(p.pattern, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Pattern", r.Pattern)
			app := r.PathValue("app")
			if app == "" { // a platform is an app for scopes
				app = r.PathValue("name")
			}
			w.Header().Set("X-App", app)
		})
	}
	return mux
}

// checkRoute asserts that classify gives the request the action and app
// of the handler the mux routes it to.
func checkRoute(t *testing.T, mux *http.ServeMux, r *http.Request) {
	t.Helper()
	rt := classify(r)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	pattern := w.Header().Get("X-Pattern")
	if pattern == "" {
		return // 404, 405 or a redirect: no handler ran
	}
	for _, p := range apiPatterns {
		if p.pattern != pattern {
			continue
		}
		app := w.Header().Get("X-App")
		if p.open {
			app = "" // an open route names no app
		}
		if rt.action != p.action || rt.open != p.open || rt.app != app {
			t.Fatalf("%s %q (path %q): classify = %+v, but the mux serves %s for app %q", r.Method, r.RequestURI, r.URL.Path, rt, pattern, app)
		}
		return
	}
	t.Fatalf("unknown pattern %q", pattern)
}

// readRequest parses a request line as a server would.
func readRequest(method, target string) (*http.Request, error) {
	return http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")))
}

func TestClassify(t *testing.T) {
	mux := routeMux()
	for _, tt := range []struct {
		method, target string
		want           route
	}{
		{"GET", "/v1/apps/shop/token", route{action: Read, app: "shop"}},
		{"GET", "/v1/apps/sh%6Fp/token", route{action: Read, app: "shop"}},
		{"GET", "/v1/apps/a%2Fb/token", route{action: Read, app: "a/b"}},
		{"GET", "/v%31/apps/shop/token", route{action: Read, app: "shop"}},
		{"POST", "/v1/apps/shop/token/invalidate", route{action: Invalidate, app: "shop"}},
		{"GET", "/v1/apps/shop/ticket/jsapi", route{action: Ticket, app: "shop"}},
		{"GET", "/v1/apps/shop/jssdk/signature?url=x", route{action: JSSDK, app: "shop"}},
		{"POST", "/wechat/shop/cgi-bin/message/custom/send", route{action: Proxy, app: "shop"}},
		{"GET", "/wechat/shop/", route{action: Proxy, app: "shop"}},
		{"GET", "/healthz", route{open: true}},
		{"GET", "/healthz/", route{}},
		{"GET", "/metrics", route{action: Status}},
		{"GET", "/v1/status", route{action: Status}},
		{"GET", "/ui/index.html", route{action: Status}},
		{"GET", "/v1/apps/shop/token/", route{}},
		{"GET", "/v1/apps/shop/token/invalidate/x", route{}},
		{"GET", "/", route{}},
		{"POST", "/v1/platforms/saas/events?timestamp=1&nonce=2&encrypt_type=aes&msg_signature=x", route{open: true}},
		{"POST", "/v1/platforms/saas/events/", route{}},
		{"POST", "/v1/platforms/saas/events/x", route{}},
		{"GET", "/v1/platforms/saas/token", route{action: Read, app: "saas"}},
		{"GET", "/v1/platforms/sa%61s/token", route{action: Read, app: "saas"}},
		{"POST", "/v1/platforms/saas/token/invalidate", route{action: Invalidate, app: "saas"}},
		{"GET", "/v1/platforms/saas/authorizers?limit=10&after=wx1", route{action: Read, app: "saas"}},
		{"GET", "/v1/platforms/saas/authorizers/wxauth0000000001/token", route{action: Read, app: "saas"}},
		{"POST", "/v1/platforms/saas/authorizers/wxauth0000000001/token/invalidate", route{action: Invalidate, app: "saas"}},
		{"POST", "/v1/platforms/saas/preauth", route{action: PreAuth, app: "saas"}},
		{"POST", "/v1/platforms/saas/authorizers/wxauth0000000001/token/invalidate/x", route{}},
		{"GET", "/v1/platforms/saas/authorizers/wxauth0000000001", route{}},
		{"GET", "/v1/platforms/saas/authorizers/", route{}},
		{"GET", "/v1/platforms/saas", route{}},
		{"GET", "/v1/platforms/a%2Fb/token", route{action: Read, app: "a/b"}},
	} {
		r, err := readRequest(tt.method, tt.target)
		if err != nil {
			t.Fatal(err)
		}
		if got := classify(r); got != tt.want {
			t.Errorf("classify(%s %s): got %+v, want %+v", tt.method, tt.target, got, tt.want)
		}
		checkRoute(t, mux, r)
	}
}

// FuzzRoute: whatever the request target, the app and action the Guard
// checks are those of the handler the API's mux runs.
func FuzzRoute(f *testing.F) {
	for _, s := range []string{
		"/v1/apps/shop/token", "/v1/apps/sh%6fp/token", "/v1/apps/%2e%2e/token", "/v1/apps/a%2fb/token",
		"/v1/apps/shop/token/invalidate", "/v1/apps/shop/ticket/jsapi", "/v1/apps/shop/jssdk/signature?url=a",
		"/wechat/shop/cgi-bin/token", "/wechat/sh%6fp/x", "/wechat/shop/%2e%2e/%2e%2e/v1/apps/other/token",
		"/healthz", "/metrics", "/v1/status", "/ui/", "//v1/apps/shop/token", "/v1//apps/shop/token",
		"/v1/apps/shop/./token", "/v1/apps/shop/../other/token", "*", "http://h/v1/apps/shop/token",
		"/v1/platforms/saas/events", "/v1/platforms/sa%61s/events", "/v1/platforms/saas/events/../../apps/shop/token",
		"/v1/platforms/saas/token", "/v1/platforms/saas/token/invalidate", "/v1/platforms/saas/authorizers",
		"/v1/platforms/saas/authorizers/wx1/token", "/v1/platforms/saas/authorizers/wx%2f1/token/invalidate",
		"/v1/platforms/saas/preauth", "/v1/platforms/saas/authorizers/wx1/../../../other/token",
	} {
		f.Add(uint8(0), s)
	}
	methods := []string{"GET", "POST", "HEAD", "PUT"}
	mux := routeMux()
	f.Fuzz(func(t *testing.T, m uint8, target string) {
		r, err := readRequest(methods[int(m)%len(methods)], target)
		if err != nil {
			return
		}
		checkRoute(t, mux, r)
	})
}

// TestGuardCertificate: a verified client certificate's CN names a client;
// an unverified one (no chain) names nobody.
func TestGuardCertificate(t *testing.T) {
	g := newGuard(t, false)
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "billing.internal"}}
	for _, tt := range []struct {
		name   string
		state  *tls.ConnectionState
		target string
		want   int
	}{
		{"verified", &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}, "/v1/apps/shop/token", 200},
		{"verified, other app", &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}, "/v1/apps/mini/token", 403},
		{"verified, other action", &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}, "/wechat/shop/x", 403},
		{"presented, not verified", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}, "/v1/apps/shop/token", 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.target, nil)
			r.TLS = tt.state
			w := httptest.NewRecorder()
			g.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Errorf("got %d %s, want %d", w.Code, w.Body, tt.want)
			}
		})
	}
}
