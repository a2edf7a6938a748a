package fetcher

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// classCase is one scripted exchange and what every method must make of it.
type classCase struct {
	name        string
	replies     []reply
	maxAttempts int
	wantCalls   int
	wantClass   Class // ClassUnknown: success
	wantCode    int   // nonzero: an *APIError with this errcode
	wantBad     bool  // wraps ErrBadResponse
	wantHost    bool  // APIError.HostSpecific
}

func classCases(m method) []classCase {
	ok := ok200(m.body("TOKEN", "7200"))
	cases := []classCase{
		{name: "ok", replies: []reply{ok}, wantCalls: 1},
		{name: "errcode -1 then ok", replies: []reply{apiErr(-1), ok}, wantCalls: 2},
		{name: "errcode 45011 twice then ok", replies: []reply{apiErr(45011), apiErr(45011), ok}, wantCalls: 3},
		// An answer that may have come after WeChat minted (5xx, a broken
		// body) is never retried: it ends the fetch as Ambiguous.
		{name: "http 500 is ambiguous", replies: []reply{status(500, "oops"), ok}, wantCalls: 1, wantClass: Ambiguous},
		{name: "http 502 is ambiguous", replies: []reply{status(502, ""), ok}, wantCalls: 1, wantClass: Ambiguous},
		{name: "http 500 with errcode body is ambiguous", replies: []reply{status(500, `{"errcode":40013,"errmsg":"x"}`), ok}, wantCalls: 1, wantClass: Ambiguous},
		{name: "http 404 html then ok", replies: []reply{status(404, "<html>not found</html>"), ok}, wantCalls: 2},
		{name: "broken JSON is ambiguous", replies: []reply{ok200(`{"access_token":"T`), ok}, wantCalls: 1, wantClass: Ambiguous, wantBad: true},
		{name: "http 400 with errcode body", replies: []reply{status(400, `{"errcode":40013,"errmsg":"invalid appid"}`)},
			wantCalls: 1, wantClass: Permanent, wantCode: 40013},
		{name: "always -1 stops at MaxAttempts", replies: []reply{apiErr(-1)}, maxAttempts: 3,
			wantCalls: 3, wantClass: Transient, wantCode: -1},
		{name: "always 45011 stops at MaxAttempts", replies: []reply{apiErr(45011)}, maxAttempts: 2,
			wantCalls: 2, wantClass: Transient, wantCode: 45011},
		{name: "always 404 stops at MaxAttempts", replies: []reply{status(404, "")}, maxAttempts: 4,
			wantCalls: 4, wantClass: Transient},
		{name: "45009 quota", replies: []reply{apiErr(45009), ok}, wantCalls: 1, wantClass: Quota, wantCode: 45009},
		{name: "unknown errcode 99999", replies: []reply{apiErr(99999), ok}, wantCalls: 1, wantClass: Permanent, wantCode: 99999},
	}
	for _, code := range []int{40013, 40125, 41002, 41004, 40002} {
		cases = append(cases, classCase{name: fmt.Sprintf("errcode %d", code), replies: []reply{apiErr(code), ok},
			wantCalls: 1, wantClass: Permanent, wantCode: code})
	}
	for _, code := range []int{40164, 61004, 89501, 89503, 89506, 89507} {
		cases = append(cases, classCase{name: fmt.Sprintf("host refused %d", code), replies: []reply{apiErr(code), ok},
			wantCalls: 1, wantClass: Permanent, wantCode: code, wantHost: true})
	}
	for _, code := range []int{40001, 40014, 42001} {
		want := TokenDead
		if m.tokenEndpoint {
			want = Permanent // 40001 on a token endpoint is a wrong secret
		}
		cases = append(cases, classCase{name: fmt.Sprintf("errcode %d", code), replies: []reply{apiErr(code), ok},
			wantCalls: 1, wantClass: want, wantCode: code})
	}
	bad := map[string]string{
		"empty token":          m.body("", "7200"),
		"missing token":        `{"expires_in":7200}`,
		"expires_in 0":         m.body("TOKEN", "0"),
		"expires_in negative":  m.body("TOKEN", "-7200"),
		"expires_in missing":   strings.Replace(m.body("TOKEN", "1"), `,"expires_in":1`, "", 1),
		"expires_in string":    m.body("TOKEN", `"7200"`),
		"expires_in fraction":  m.body("TOKEN", "7200.5"),
		"expires_in huge":      m.body("TOKEN", "99999999999999999"),
		"token with space":     m.body("TO KEN", "7200"),
		"broken JSON":          `{"access_token":"TOKEN","expires_in":72`,
		"trailing garbage":     m.body("TOKEN", "7200") + "}",
		"JSON array":           `[{"access_token":"TOKEN","expires_in":7200}]`,
		"JSON null":            `null`,
		"empty body":           ``,
		"html body":            `<html><body>502 Bad Gateway</body></html>`,
		"oversize body":        m.body("TOKEN", "7200") + strings.Repeat(" ", cmp.Or(m.maxBody, maxBodySize)),
		"errcode not a number": `{"errcode":"40001","errmsg":"x"}`,
	}
	for name, body := range bad {
		cases = append(cases, classCase{name: name, replies: []reply{ok200(body)}, maxAttempts: 2,
			wantCalls: 1, wantClass: Ambiguous, wantBad: true})
	}
	return cases
}

func TestMethodsClassifyAndRetry(t *testing.T) {
	for _, m := range methods {
		for _, tc := range classCases(m) {
			t.Run(m.name+"/"+tc.name, func(t *testing.T) {
				f := newFakeWeChat(t, tc.replies...)
				cfg := testConfig(f, nil)
				cfg.MaxAttempts = tc.maxAttempts
				c := mustNew(t, cfg)

				tok, err := m.call(context.Background(), c)
				if got := f.callCount(); got != tc.wantCalls {
					t.Errorf("server calls = %d, want %d", got, tc.wantCalls)
				}
				if m.op != opCallbackIP && tok.Attempts != tc.wantCalls {
					t.Errorf("Attempts = %d, want %d", tok.Attempts, tc.wantCalls)
				}
				if tc.wantClass == ClassUnknown {
					if err != nil {
						t.Fatalf("err = %v, want nil", err)
					}
					if tok.Value != m.okValue() || tok.ExpiresIn <= 0 {
						t.Errorf("token = %+v, want value %q and positive ExpiresIn", tok, m.okValue())
					}
					if !m.noTTL && tok.ExpiresIn != 7200*time.Second {
						t.Errorf("ExpiresIn = %v, want 2h", tok.ExpiresIn)
					}
					return
				}
				if err == nil {
					t.Fatalf("err = nil (token %+v), want class %v", tok, tc.wantClass)
				}
				if tok.Value != "" || tok.ExpiresIn != 0 {
					t.Errorf("token on error = %+v, want only Attempts", tok)
				}
				if got := ClassOf(err); got != tc.wantClass {
					t.Errorf("ClassOf(%v) = %v, want %v", err, got, tc.wantClass)
				}
				var ae *APIError
				isAPI := errors.As(err, &ae)
				switch {
				case tc.wantCode != 0 && !isAPI:
					t.Errorf("err = %v, want an *APIError", err)
				case tc.wantCode != 0:
					if ae.Code != tc.wantCode || ae.Op != m.op || ae.Class != tc.wantClass {
						t.Errorf("APIError = %+v, want code %d op %q class %v", ae, tc.wantCode, m.op, tc.wantClass)
					}
					if ae.HostSpecific() != tc.wantHost {
						t.Errorf("HostSpecific() = %v, want %v", ae.HostSpecific(), tc.wantHost)
					}
				case isAPI:
					t.Errorf("err = %v, want no *APIError", err)
				}
				if got := errors.Is(err, ErrBadResponse); got != tc.wantBad {
					t.Errorf("errors.Is(%v, ErrBadResponse) = %v, want %v", err, got, tc.wantBad)
				}
			})
		}
	}
}

func TestRequestShape(t *testing.T) {
	f := newFakeWeChat(t, ok200(`{"errcode":0,"access_token":"T","ticket":"T","expires_in":7200,"ip_list":[]}`))
	c := mustNew(t, testConfig(f, nil))
	ctx := context.Background()
	other := newFakeWeChat(t, ok200(`{"ip_list":["1.2.3.4"]}`))

	calls := []struct {
		name      string
		call      func() error
		srv       *fakeWeChat
		method    string
		path      string
		query     url.Values
		jsonBody  map[string]any
		wantValue string
	}{
		{"classic", func() error { _, err := c.Classic(ctx, "wxA", "s/e+c"); return err }, f,
			"GET", "/cgi-bin/token", url.Values{"grant_type": {"client_credential"}, "appid": {"wxA"}, "secret": {"s/e+c"}}, nil, ""},
		{"stable", func() error { _, err := c.Stable(ctx, "wxA", "sec", true); return err }, f,
			"POST", "/cgi-bin/stable_token", url.Values{},
			map[string]any{"grant_type": "client_credential", "appid": "wxA", "secret": "sec", "force_refresh": true}, ""},
		{"wecom", func() error { _, err := c.WeCom(ctx, "wwC", "cs"); return err }, f,
			"GET", "/cgi-bin/gettoken", url.Values{"corpid": {"wwC"}, "corpsecret": {"cs"}}, nil, ""},
		{"ticket", func() error { _, err := c.Ticket(ctx, "AT", TicketWXCard); return err }, f,
			"GET", "/cgi-bin/ticket/getticket", url.Values{"access_token": {"AT"}, "type": {"wx_card"}}, nil, ""},
		{"callbackip default base", func() error { _, err := c.CallbackIP(ctx, "", "AT"); return err }, f,
			"GET", "/cgi-bin/getcallbackip", url.Values{"access_token": {"AT"}}, nil, ""},
		{"callbackip other base", func() error {
			ips, err := c.CallbackIP(ctx, other.srv.URL+"/", "AT")
			if err == nil && (len(ips) != 1 || ips[0] != "1.2.3.4") {
				return fmt.Errorf("ips = %q, want [1.2.3.4]", ips)
			}
			return err
		}, other, "GET", "/cgi-bin/getcallbackip", url.Values{"access_token": {"AT"}}, nil, ""},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			before := len(tc.srv.requests())
			if err := tc.call(); err != nil {
				t.Fatalf("call: %v", err)
			}
			reqs := tc.srv.requests()
			if len(reqs) != before+1 {
				t.Fatalf("requests = %d, want %d", len(reqs), before+1)
			}
			r := reqs[len(reqs)-1]
			if r.method != tc.method || r.path != tc.path {
				t.Errorf("request = %s %s, want %s %s", r.method, r.path, tc.method, tc.path)
			}
			q, err := url.ParseQuery(r.query)
			if err != nil {
				t.Fatalf("query %q: %v", r.query, err)
			}
			if q.Encode() != tc.query.Encode() {
				t.Errorf("query = %q, want %q", q.Encode(), tc.query.Encode())
			}
			if tc.jsonBody == nil {
				if r.body != "" {
					t.Errorf("body = %q, want none", r.body)
				}
				return
			}
			if r.contentType != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", r.contentType)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(r.body), &got); err != nil {
				t.Fatalf("body %q: %v", r.body, err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.jsonBody) {
				t.Errorf("body = %v, want %v", got, tc.jsonBody)
			}
		})
	}
}

func TestBodyAtLimitAccepted(t *testing.T) {
	body := tokenBody("TOKEN", "7200")
	body += strings.Repeat(" ", maxBodySize-len(body))
	f := newFakeWeChat(t, ok200(body))
	c := mustNew(t, testConfig(f, nil))
	tok, err := c.Classic(context.Background(), "wxA", "s")
	if err != nil || tok.Value != "TOKEN" {
		t.Fatalf("Classic = %+v, %v; want TOKEN, nil", tok, err)
	}
}

func TestErrorMessages(t *testing.T) {
	f := newFakeWeChat(t, ok200(`{"errcode":40125,"errmsg":"invalid appsecret"}`))
	c := mustNew(t, testConfig(f, nil))
	_, err := c.Classic(context.Background(), "wxA", "s3cr3t")
	const want = "fetch classic token: wechat token: errcode 40125: invalid appsecret"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}
