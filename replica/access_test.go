package replica_test

import (
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
)

// Client tokens of the access tests; none may ever appear in a log.
const (
	shopClientToken = "shop-client-token-0123456789"
	miniClientToken = "mini-client-token-0123456789"
	badClientToken  = "not-a-client-token-0123456789"
	miniAppID       = "wxmini0000000002"
)

func sha(tok string) []byte {
	s := sha256.Sum256([]byte(tok))
	return s[:]
}

// accessConfig has two apps, shop (jsapi ticket exposed, JS-SDK for
// shop.example.com) and mini, and two clients: shop-all may do everything
// for shop, mini-all everything but status for mini.
func (e *env) accessConfig(node string) *config.Config {
	e.sim.AddApp(miniAppID, "mini-secret-0002")
	cfg := e.testConfig(node)
	cfg.Apps[0].Tickets = []string{config.TicketJSAPI}
	cfg.Apps[0].ExposeTicket = true
	cfg.Apps[0].JSSDKDomains = []string{"shop.example.com"}
	cfg.Apps = append(cfg.Apps, config.App{Name: "mini", Kind: config.KindClassic, AppID: miniAppID,
		Secret: config.NewSecret("mini-secret-0002"), DailyBudget: 1000})
	cfg.Clients = []config.Client{
		{Name: "shop-all", TokenSHA256: sha(shopClientToken), Apps: []string{"shop"}, Allow: config.Actions},
		{Name: "mini-all", TokenSHA256: sha(miniClientToken), Apps: []string{"mini"}, Allow: []string{"read", "invalidate", "proxy", "jssdk", "ticket"}},
	}
	return cfg
}

// call makes one request with an optional bearer token and extra headers.
func call(t *testing.T, hc *http.Client, method, target, token, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func errCode(body string) string {
	var e struct{ Code string }
	_ = json.Unmarshal([]byte(body), &e)
	return e.Code
}

// TestAccessEveryRoute: every route of the API, asked by an anonymous
// caller, with a token no client has, by a client of another app (or
// without the action), and by a client with the right scope.
func TestAccessEveryRoute(t *testing.T) {
	e := newEnv(t, 1, wechattest.Config{})
	r := e.start(e.accessConfig("r0"), nil)
	hc := &http.Client{Timeout: 10 * time.Second}
	waitFor(t, 10*time.Second, "shop's ticket", func() bool {
		code, _, _ := call(t, hc, "GET", r.URL()+"/v1/apps/shop/ticket/jsapi", shopClientToken, "", nil)
		return code == http.StatusOK
	})
	routes := []struct {
		name, method, path, body string
		want                     int // for the right scope
		open                     bool
	}{
		{"token", "GET", "/v1/apps/shop/token", "", 200, false},
		{"invalidate", "POST", "/v1/apps/shop/token/invalidate", `{"access_token":"a-stale-token"}`, 200, false},
		{"ticket", "GET", "/v1/apps/shop/ticket/jsapi", "", 200, false},
		{"jssdk", "GET", "/v1/apps/shop/jssdk/signature?url=" + url.QueryEscape("https://shop.example.com/pay"), "", 200, false},
		{"proxy", "GET", "/wechat/shop/cgi-bin/getcallbackip", "", 200, false},
		{"status", "GET", "/v1/status", "", 200, false},
		{"metrics", "GET", "/metrics", "", 200, false},
		{"ui", "GET", "/ui/", "", 200, false},
		{"healthz", "GET", "/healthz", "", 200, true},
		{"readyz", "GET", "/readyz", "", 200, true},
	}
	callers := []struct {
		name, token string
		want        func(right int, open bool) int
		code        string
	}{
		{"anonymous", "", func(right int, open bool) int { return pick(open, right, 401) }, "unauthorized"},
		{"wrong token", badClientToken, func(right int, open bool) int { return pick(open, right, 401) }, "unauthorized"},
		{"right token, wrong app or action", miniClientToken, func(right int, open bool) int { return pick(open, right, 403) }, "forbidden"},
		{"right scope", shopClientToken, func(right int, open bool) int { return right }, ""},
	}
	for _, rt := range routes {
		for _, c := range callers {
			t.Run(rt.name+"/"+c.name, func(t *testing.T) {
				code, h, body := call(t, hc, rt.method, r.URL()+rt.path, c.token, rt.body, nil)
				want := c.want(rt.want, rt.open)
				if code != want {
					t.Fatalf("got %d %s, want %d", code, body, want)
				}
				if rt.open || c.code == "" {
					return
				}
				if got := errCode(body); got != c.code {
					t.Errorf("code: got %q, want %q (%s)", got, c.code, body)
				}
				if code == 401 && !strings.HasPrefix(h.Get("WWW-Authenticate"), `Bearer realm="wxtoken"`) {
					t.Errorf("WWW-Authenticate: got %q", h.Get("WWW-Authenticate"))
				}
			})
		}
	}
	// The mini client reads its own app.
	if code, _, body := call(t, hc, "GET", r.URL()+"/v1/apps/mini/token", miniClientToken, "", nil); code != 200 {
		t.Errorf("mini-all reading mini: %d %s", code, body)
	}
	for _, tok := range []string{shopClientToken, miniClientToken, badClientToken} {
		if strings.Contains(e.logs.String(), tok) {
			t.Errorf("a client token is in the logs")
		}
	}
}

func pick(open bool, ifOpen, otherwise int) int {
	if open {
		return ifOpen
	}
	return otherwise
}

// TestAccessBrowser: a rebound host name and a foreign origin are refused
// before any credential is looked at; the advertised name is accepted.
func TestAccessBrowser(t *testing.T) {
	e := newEnv(t, 1, wechattest.Config{})
	cfg := e.accessConfig("r0")
	cfg.Advertise = "http://wxtoken.internal:8417"
	r := e.start(cfg, nil)
	hc := &http.Client{Timeout: 10 * time.Second}
	u := r.URL() + "/v1/apps/shop/token"
	waitFor(t, 10*time.Second, "shop's token", func() bool {
		code, _, _ := call(t, hc, "GET", u, shopClientToken, "", nil)
		return code == http.StatusOK
	})
	for _, tt := range []struct {
		name string
		hdr  map[string]string
		want int
		code string
	}{
		{"advertised name", map[string]string{"Host": "wxtoken.internal:8417"}, 200, ""},
		{"localhost", map[string]string{"Host": "localhost"}, 200, ""},
		{"rebound name", map[string]string{"Host": "attacker.example"}, 421, "bad_host"},
		{"foreign origin", map[string]string{"Origin": "https://attacker.example"}, 403, "cross_origin"},
		{"cross-site fetch", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "cross_origin"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := call(t, hc, "GET", u, shopClientToken, "", tt.hdr)
			if code != tt.want || (tt.code != "" && errCode(body) != tt.code) {
				t.Errorf("got %d %s, want %d %s", code, body, tt.want, tt.code)
			}
		})
	}
	// A cross-site form post is refused whatever its credentials.
	req, _ := http.NewRequest("POST", r.URL()+"/v1/apps/shop/token/invalidate", strings.NewReader("access_token=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+shopClientToken)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("form post: got %d, want 415", resp.StatusCode)
	}
}

// TestAccessReportLimit: reports that would make the leader refresh are
// limited per client and per credential, answered 429 rate_limited with
// Retry-After; reads are not limited.
func TestAccessReportLimit(t *testing.T) {
	e := newEnv(t, 1, wechattest.Config{})
	cfg := e.accessConfig("r0")
	cfg.ReportLimit = config.ReportLimit{PerClient: 1, PerCredential: 2}
	third := "third-client-token-0123456789"
	cfg.Clients = append(cfg.Clients, config.Client{Name: "third", TokenSHA256: sha(third), Apps: []string{"*"}, Allow: []string{"read", "invalidate"}})
	cfg.Clients[1].Apps = []string{"*"}
	r := e.start(cfg, nil)
	hc := &http.Client{Timeout: 15 * time.Second}
	var cur string
	waitFor(t, 10*time.Second, "shop's token", func() bool {
		code, _, body := call(t, hc, "GET", r.URL()+"/v1/apps/shop/token", shopClientToken, "", nil)
		var tr struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.Unmarshal([]byte(body), &tr)
		cur = tr.AccessToken
		return code == http.StatusOK
	})
	// The token is alive: each allowed report is checked with WeChat and
	// rejected, so the same token can be reported again.
	report := func(token string) (int, http.Header, string) {
		return call(t, hc, "POST", r.URL()+"/v1/apps/shop/token/invalidate", token, `{"access_token":"`+cur+`"}`, nil)
	}
	steps := []struct {
		who   string
		token string
		want  int
	}{
		{"shop-all", shopClientToken, 200},
		{"shop-all again", shopClientToken, 429}, // per client
		{"mini-all", miniClientToken, 200},
		{"third", third, 429}, // per credential: two a minute
	}
	for _, s := range steps {
		code, h, body := report(s.token)
		if code != s.want {
			t.Fatalf("%s: got %d %s, want %d", s.who, code, body, s.want)
		}
		if code == 429 && (errCode(body) != "rate_limited" || h.Get("Retry-After") == "") {
			t.Errorf("%s: got %s Retry-After %q, want rate_limited with Retry-After", s.who, body, h.Get("Retry-After"))
		}
	}
	// A report of a token that is not current triggers nothing: never limited.
	if code, _, body := call(t, hc, "POST", r.URL()+"/v1/apps/shop/token/invalidate", third, `{"access_token":"an-old-token"}`, nil); code != 200 {
		t.Errorf("report of an old token: got %d %s, want 200", code, body)
	}
	for range 20 {
		if code, _, _ := call(t, hc, "GET", r.URL()+"/v1/apps/shop/token", shopClientToken, "", nil); code != 200 {
			t.Fatalf("read after reports: %d", code)
		}
	}
}
