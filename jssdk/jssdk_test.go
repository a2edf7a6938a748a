package jssdk

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/api"
)

var _ Tickets = (*api.API)(nil)

// TestSignDocumentedExample is the example in the appendix of WeChat's
// JS-SDK documentation (附录1-JS-SDK使用权限签名算法).
func TestSignDocumentedExample(t *testing.T) {
	got := Sign("sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg",
		"Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com?params=value")
	if want := "0f9de62fce790f9a083d5c99e95740ceb90c27ed"; got != want {
		t.Errorf("Sign: got %s, want %s", got, want)
	}
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://mp.weixin.qq.com?params=value", true},
		{"https://shop.example.com/pay/?a=1&b=%E4%B8%AD#", false},
		{"https://shop.example.com/#/cart", false},
		{"https://shop.example.com/pay#top", false},
		{"", false},
		{"/pay?a=1", false},
		{"shop.example.com/pay", false},
		{"ftp://shop.example.com/", false},
		{"javascript:alert(1)", false},
		{"https://shop.example.com/a b", false},
		{"https:///nohost", false},
		{"https://shop.example.com/" + string(make([]byte, MaxURL)), false},
		{"https://shop.example.com:8443/pay/?a=1&b=%E4%B8%AD", true},
		{"https://evil.example@shop.example.com/", false},
		{"https://shop.example.com\\@evil.example/", false},
		{"https://shop.example.com\\.evil.example/", false},
		{"https:\\\\evil.example/", false},
		{"https:evil.example/", false},
		{"https:/evil.example/", false},
		{"https://xn--fiq228c.example.com/", true},
		{"https://中文.example.com/", false},
		{"https://[::1]/", false},
		{"https://shop.example.com%2eevil.example/", false},
	}
	for _, tt := range tests {
		if err := CheckURL(tt.url); (err == nil) != tt.ok {
			t.Errorf("CheckURL(%.60q): got %v, want ok=%v", tt.url, err, tt.ok)
		}
	}
}

// fakeTickets has app "shop" with a jsapi ticket and app "bare" without.
type fakeTickets struct{ err error }

func (f fakeTickets) App(name string) (api.App, bool) {
	switch name {
	case "shop":
		return api.App{Name: "shop", AppID: "wxshop", Tickets: []string{"jsapi"}}, true
	case "bare":
		return api.App{Name: "bare", AppID: "wxbare"}, true
	}
	return api.App{}, false
}

func (f fakeTickets) Ticket(app, typ string) (api.TicketResponse, error) {
	if f.err != nil {
		return api.TicketResponse{}, f.err
	}
	if app != "shop" || typ != "jsapi" {
		return api.TicketResponse{}, &api.Error{Status: http.StatusNotFound, Code: "unknown_ticket", Message: fmt.Sprintf("app %q has no %q ticket enabled", app, typ)}
	}
	return api.TicketResponse{App: app, Type: typ, Ticket: "TICKET-SECRET"}, nil
}

func serve(t *testing.T, tickets Tickets, target string) *httptest.ResponseRecorder {
	t.Helper()
	h, err := New(Config{Tickets: tickets, Now: func() time.Time { return time.Unix(1414587457, 0) },
		Domains: map[string][]string{"shop": {"shop.example.com", "*.shop.example.org"}}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle(Pattern, h)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	return w
}

func TestHandlerSigns(t *testing.T) {
	page := "https://shop.example.com/pay?item=1&n=2"
	w := serve(t, fakeTickets{}, "/v1/apps/shop/jssdk/signature?url="+url.QueryEscape(page))
	if w.Code != http.StatusOK {
		t.Fatalf("status: got %d, want 200; body %s", w.Code, w.Body)
	}
	var sig Signature
	if err := json.Unmarshal(w.Body.Bytes(), &sig); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if sig.AppID != "wxshop" || sig.Timestamp != 1414587457 || sig.URL != page || len(sig.NonceStr) < 16 {
		t.Errorf("answer: got %+v, want appId wxshop, timestamp 1414587457, the page and a nonce", sig)
	}
	if want := Sign("TICKET-SECRET", sig.NonceStr, sig.Timestamp, page); sig.Signature != want {
		t.Errorf("signature: got %s, want %s", sig.Signature, want)
	}
	var raw map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &raw)
	for k, v := range raw {
		if fmt.Sprint(v) == "TICKET-SECRET" {
			t.Errorf("answer field %s holds the ticket", k)
		}
	}
	w2 := serve(t, fakeTickets{}, "/v1/apps/shop/jssdk/signature?url="+url.QueryEscape(page))
	var sig2 Signature
	_ = json.Unmarshal(w2.Body.Bytes(), &sig2)
	if sig2.NonceStr == sig.NonceStr {
		t.Errorf("nonce: got %q twice, want a new one per answer", sig.NonceStr)
	}
}

func TestHandlerErrors(t *testing.T) {
	noCred := &api.Error{Status: http.StatusServiceUnavailable, Code: "no_credential", Message: "no credential yet for shop/jsapi"}
	good := url.QueryEscape("https://shop.example.com/pay")
	tests := []struct {
		name       string
		tickets    Tickets
		target     string
		wantStatus int
		wantCode   string
	}{
		{"unknown app", fakeTickets{}, "/v1/apps/nope/jssdk/signature?url=" + good, 404, "unknown_app"},
		{"no jsapi ticket", fakeTickets{}, "/v1/apps/bare/jssdk/signature?url=" + good, 404, "unknown_ticket"},
		{"no url", fakeTickets{}, "/v1/apps/shop/jssdk/signature", 400, "bad_url"},
		{"fragment", fakeTickets{}, "/v1/apps/shop/jssdk/signature?url=" + url.QueryEscape("https://shop.example.com/#/cart"), 400, "bad_url"},
		{"not percent-encoded", fakeTickets{}, "/v1/apps/shop/jssdk/signature?url=https://shop.example.com/pay?a=1&b=2", 400, "bad_url"},
		{"relative", fakeTickets{}, "/v1/apps/shop/jssdk/signature?url=%2Fpay", 400, "bad_url"},
		{"ticket not yet fetched", fakeTickets{err: noCred}, "/v1/apps/shop/jssdk/signature?url=" + good, 503, "no_credential"},
		{"foreign host", fakeTickets{}, "/v1/apps/shop/jssdk/signature?url=" + url.QueryEscape("https://evil.example/pay"), 403, "forbidden_url"},
		{"sibling host", fakeTickets{}, "/v1/apps/shop/jssdk/signature?url=" + url.QueryEscape("https://pay.example.com/"), 403, "forbidden_url"},
		{"suffix trick", fakeTickets{}, "/v1/apps/shop/jssdk/signature?url=" + url.QueryEscape("https://shop.example.com.evil.example/"), 403, "forbidden_url"},
		{"wildcard parent", fakeTickets{}, "/v1/apps/shop/jssdk/signature?url=" + url.QueryEscape("https://shop.example.org/"), 403, "forbidden_url"},
		{"user info", fakeTickets{}, "/v1/apps/shop/jssdk/signature?url=" + url.QueryEscape("https://evil.example@shop.example.com/"), 400, "bad_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(t, tt.tickets, tt.target)
			var e api.Error
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
				t.Fatalf("decode %q: %v", w.Body, err)
			}
			if w.Code != tt.wantStatus || e.Code != tt.wantCode {
				t.Errorf("got %d %q (%s), want %d %q", w.Code, e.Code, e.Message, tt.wantStatus, tt.wantCode)
			}
		})
	}
}

func TestHostAllowed(t *testing.T) {
	domains := []string{"shop.example.com", "*.example.org"}
	for _, tt := range []struct {
		page string
		ok   bool
	}{
		{"https://shop.example.com/pay", true},
		{"https://SHOP.Example.COM:8443/pay", true},
		{"https://shop.example.com./pay", true},
		{"http://a.example.org/", true},
		{"http://a.b.example.org/", true},
		{"http://example.org/", false},
		{"http://aexample.org/", false},
		{"https://www.shop.example.com/", false},
		{"https://shop.example.com.evil.example/", false},
		{"https://evil.example/?shop.example.com", false},
		{"https://evil.example/#shop.example.com", false},
		{"not a url", false},
	} {
		if got := HostAllowed(PageHost(tt.page), domains); got != tt.ok {
			t.Errorf("%s: got %v, want %v", tt.page, got, tt.ok)
		}
	}
	if HostAllowed("shop.example.com", nil) {
		t.Error("an app without domains signs a page")
	}
}

// FuzzPageURL: a page URL is signed only if every reading of its host
// (Go's URL parser, and the authority as written up to the first "/", "?"
// or "#") gives a host among the domains.
func FuzzPageURL(f *testing.F) {
	for _, s := range []string{"https://shop.example.com/pay?a=1", "https://evil.example@shop.example.com/", "https://shop.example.com\\@evil/",
		"https://a.example.org:1/", "https:shop.example.com", "HTTPS://SHOP.EXAMPLE.COM/", "https://shop.example.com%2f@evil/", "http://[::1]/",
		"https://shop.example.com./", "https://shop.example.com:99999/", "https://.example.org/", "https://example.org/"} {
		f.Add(s)
	}
	domains := []string{"shop.example.com", "*.example.org"}
	f.Fuzz(func(t *testing.T, page string) {
		host := PageHost(page)
		if !HostAllowed(host, domains) {
			return
		}
		scheme, rest, ok := strings.Cut(page, "://")
		if !ok || (!strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https")) {
			t.Fatalf("%q signed: want an http(s):// URL", page)
		}
		authority := rest
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			authority = rest[:i]
		}
		written := strings.ToLower(authority)
		if i := strings.LastIndexByte(written, ':'); i >= 0 {
			written = written[:i]
		}
		written = strings.TrimSuffix(written, ".")
		if written != host || strings.ContainsAny(authority, "@\\%[]") {
			t.Fatalf("%q signed for host %q, but its authority reads %q", page, host, authority)
		}
		if host != "shop.example.com" && !strings.HasSuffix(host, ".example.org") {
			t.Fatalf("%q signed for host %q, not among %q", page, host, domains)
		}
	})
}
