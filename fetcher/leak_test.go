package fetcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/internal/testlog"
)

const (
	leakSecret = "Sup3r+Secret/Value=0123456789abcdef"
	leakToken  = "ACCESS.tok3n-0123456789abcdefghij"
)

// forbidden are the forms in which the secret or the token could show.
var forbidden = []string{
	leakSecret, url.QueryEscape(leakSecret), url.PathEscape(leakSecret),
	leakToken, url.QueryEscape(leakToken),
	"Sup3r", "0123456789abcdef", // fragments too
}

// echoFault answers with a failure that quotes whatever secret or token the
// request carried, as WeChat sometimes echoes parts of a request.
type echoFault struct {
	name  string
	write func(w http.ResponseWriter, echo string)
}

var echoFaults = []echoFault{
	{"errcode 40125 echo", func(w http.ResponseWriter, e string) {
		fmt.Fprintf(w, `{"errcode":40125,"errmsg":"invalid appsecret %s, secret=%s hint: [%s]"}`, e, url.QueryEscape(e), e)
	}},
	{"errcode 40001 echo", func(w http.ResponseWriter, e string) {
		fmt.Fprintf(w, `{"errcode":40001,"errmsg":"invalid credential, access_token is invalid or not latest: %s"}`, e)
	}},
	{"errcode -1 echo", func(w http.ResponseWriter, e string) {
		fmt.Fprintf(w, `{"errcode":-1,"errmsg":"system error for %s"}`, e)
	}},
	{"errcode 45009 echo", func(w http.ResponseWriter, e string) {
		fmt.Fprintf(w, `{"errcode":45009,"errmsg":"quota %s"}`, e)
	}},
	{"errcode 89503 echo", func(w http.ResponseWriter, e string) {
		fmt.Fprintf(w, `{"errcode":89503,"errmsg":"ip waits for approval %s"}`, e)
	}},
	{"http 400 errcode echo", func(w http.ResponseWriter, e string) {
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"errcode":40013,"errmsg":"%s"}`, e)
	}},
	{"http 500 echo", func(w http.ResponseWriter, e string) {
		w.WriteHeader(500)
		fmt.Fprintf(w, "internal error for %s", e)
	}},
	{"html echo", func(w http.ResponseWriter, e string) {
		fmt.Fprintf(w, "<html>%s</html>", e)
	}},
	{"broken JSON echo", func(w http.ResponseWriter, e string) {
		fmt.Fprintf(w, `{"errmsg":"%s`, e)
	}},
	{"type error echo", func(w http.ResponseWriter, e string) {
		fmt.Fprintf(w, `{"access_token":"T","expires_in":"%s"}`, e)
	}},
	{"secret as number", func(w http.ResponseWriter, _ string) {
		fmt.Fprint(w, `{"access_token":"T","expires_in":0123456789abcdef}`)
	}},
	{"expires_in 0 echo", func(w http.ResponseWriter, e string) {
		fmt.Fprintf(w, `{"errcode":0,"access_token":%q,"ticket":%q,"expires_in":0}`, e, e)
	}},
	{"oversize echo", func(w http.ResponseWriter, e string) {
		fmt.Fprintf(w, `{"errmsg":"%s"}`, strings.Repeat(e, maxBodySize/len(e)+1))
	}},
	{"redirect echo", func(w http.ResponseWriter, e string) {
		w.Header().Set("Location", "http://127.0.0.1:1/?secret="+url.QueryEscape(e))
		w.WriteHeader(http.StatusFound)
	}},
}

// leakMethods call every method with leakSecret or leakToken.
var leakMethods = []struct {
	name string
	call func(ctx context.Context, c *Client) error
}{
	{"classic", func(ctx context.Context, c *Client) error { _, err := c.Classic(ctx, "wxAPP", leakSecret); return err }},
	{"stable", func(ctx context.Context, c *Client) error {
		_, err := c.Stable(ctx, "wxAPP", leakSecret, true)
		return err
	}},
	{"wecom", func(ctx context.Context, c *Client) error { _, err := c.WeCom(ctx, "wwCORP", leakSecret); return err }},
	{"ticket", func(ctx context.Context, c *Client) error {
		_, err := c.Ticket(ctx, leakToken, TicketJSAPI)
		return err
	}},
	{"callbackip", func(ctx context.Context, c *Client) error { _, err := c.CallbackIP(ctx, "", leakToken); return err }},
	// Open Platform: the secret, ticket, component token, code and refresh
	// token are each leakSecret or leakToken.
	{"component token", func(ctx context.Context, c *Client) error {
		_, err := c.ComponentToken(ctx, "wxCOMP", leakSecret, leakToken)
		return err
	}},
	{"start push ticket", func(ctx context.Context, c *Client) error { return c.StartPushTicket(ctx, "wxCOMP", leakSecret) }},
	{"pre-auth code", func(ctx context.Context, c *Client) error {
		_, err := c.CreatePreAuthCode(ctx, leakToken, "wxCOMP")
		return err
	}},
	{"query auth", func(ctx context.Context, c *Client) error {
		_, err := c.QueryAuth(ctx, leakToken, "wxCOMP", leakSecret)
		return err
	}},
	{"authorizer token", func(ctx context.Context, c *Client) error {
		_, err := c.AuthorizerToken(ctx, leakToken, "wxCOMP", "wxAUTH", leakSecret)
		return err
	}},
	{"authorizer list", func(ctx context.Context, c *Client) error {
		_, err := c.AuthorizerList(ctx, leakToken, "wxCOMP", 0, 10)
		return err
	}},
}

// errcodeOnly are the leakMethods for which any answer with errcode 0 is a
// success (they read no other field): a fault with errcode 0 gives them no
// error to check, only logs.
var errcodeOnly = map[string]bool{"start push ticket": true}

// echoOf returns the secret or token that r carried.
func echoOf(r *http.Request, body []byte) string {
	q := r.URL.Query()
	for _, k := range []string{"secret", "corpsecret", "access_token", "component_access_token"} {
		if v := q.Get(k); v != "" {
			return v
		}
	}
	if strings.Contains(string(body), leakSecret) {
		return leakSecret
	}
	if strings.Contains(string(body), leakToken) {
		return leakToken
	}
	return "nothing-to-echo"
}

// errorTexts returns every text a caller could print from err: its message
// in several verbs and the message of every error in its tree.
func errorTexts(err error) []string {
	texts := []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)}
	var ae *APIError
	if errors.As(err, &ae) {
		texts = append(texts, ae.Msg)
	}
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		texts = append(texts, e.Error())
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				walk(inner)
			}
		}
	}
	walk(err)
	return texts
}

func assertNoLeak(t *testing.T, what string, texts ...string) {
	t.Helper()
	for _, text := range texts {
		for _, f := range forbidden {
			if strings.Contains(text, f) {
				t.Errorf("%s contains %q:\n%s", what, f, text)
			}
		}
	}
}

func TestNoSecretInErrorsOrLogs(t *testing.T) {
	type scenario struct {
		name   string
		config func(t *testing.T, logs io.Writer) Config
	}
	var scenarios []scenario
	for _, fault := range echoFaults {
		scenarios = append(scenarios, scenario{fault.name, func(t *testing.T, logs io.Writer) Config {
			f := newFakeWeChat(t)
			f.handler = func(w http.ResponseWriter, r *http.Request, body []byte) bool {
				fault.write(w, echoOf(r, body))
				return true
			}
			cfg := testConfig(f, logs)
			cfg.HTTPClient = nil // the default client: redirects refused
			return cfg
		}})
	}
	scenarios = append(scenarios,
		scenario{"connection refused", func(t *testing.T, logs io.Writer) Config {
			f := newFakeWeChat(t)
			f.srv.Close()
			return testConfig(f, logs)
		}},
		scenario{"timeout", func(t *testing.T, logs io.Writer) Config {
			f := newFakeWeChat(t, reply{block: true})
			cfg := testConfig(f, logs)
			cfg.HTTPClient = &http.Client{Timeout: 20 * time.Millisecond}
			return cfg
		}},
		scenario{"redirect followed by a custom client", func(t *testing.T, logs io.Writer) Config {
			f := newFakeWeChat(t)
			f.handler = func(w http.ResponseWriter, r *http.Request, body []byte) bool {
				if r.URL.Path == "/moved" {
					w.WriteHeader(http.StatusBadGateway)
					return true
				}
				http.Redirect(w, r, "/moved?"+r.URL.RawQuery, http.StatusTemporaryRedirect)
				return true
			}
			return testConfig(f, logs)
		}},
	)
	for _, sc := range scenarios {
		for _, m := range leakMethods {
			t.Run(sc.name+"/"+m.name, func(t *testing.T) {
				logs := &testlog.Buffer{}
				cfg := sc.config(t, logs)
				cfg.MaxAttempts = 2
				c := mustNew(t, cfg)
				err := m.call(context.Background(), c)
				switch {
				case err != nil:
					assertNoLeak(t, "error", errorTexts(err)...)
				case !errcodeOnly[m.name]:
					t.Fatal("err = nil, want an error")
				}
				out := logs.String()
				if !strings.Contains(out, "attempt=1") {
					t.Errorf("logs have no attempt=1, so they were not captured:\n%s", out)
				}
				assertNoLeak(t, "logs", out)
			})
		}
	}
	// The timeout with only ctx bounding the call.
	f := newFakeWeChat(t, reply{block: true})
	logs := &testlog.Buffer{}
	c := mustNew(t, testConfig(f, logs))
	for _, m := range leakMethods {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		err := m.call(ctx, c)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: err = %v, want DeadlineExceeded", m.name, err)
			continue
		}
		assertNoLeak(t, m.name+" ctx timeout error", errorTexts(err)...)
	}
	assertNoLeak(t, "ctx timeout logs", logs.String())
}

func TestLogsCarryFields(t *testing.T) {
	f := newFakeWeChat(t, apiErr(-1), apiErr(40125))
	logs := &testlog.Buffer{}
	c := mustNew(t, testConfig(f, logs))
	if _, err := c.Classic(context.Background(), "wxAPP", leakSecret); ClassOf(err) != Permanent {
		t.Fatalf("err = %v, want permanent", err)
	}
	out := logs.String()
	for _, want := range []string{"op=token", "appid=wxAPP", "attempt=2", "errcode=-1", "errcode=40125", "level=WARN", "level=DEBUG"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
}
