package fetcher

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// reply is one scripted answer of fakeWeChat.
type reply struct {
	status int    // 0 means 200
	body   string // written as is
	block  bool   // wait until the client gives up on the request
	cancel bool   // call fakeWeChat.cancel before answering
}

func ok200(body string) reply            { return reply{body: body} }
func status(code int, body string) reply { return reply{status: code, body: body} }
func apiErr(code int) reply {
	return reply{body: fmt.Sprintf(`{"errcode":%d,"errmsg":"message for %d"}`, code, code)}
}

// request is what fakeWeChat saw of one call.
type request struct {
	method, path, query, body, contentType string
}

// fakeWeChat answers every path with its script, one reply per call; the
// last reply repeats. It records the calls. Safe for concurrent use.
type fakeWeChat struct {
	srv    *httptest.Server
	done   chan struct{}
	cancel context.CancelFunc // set by tests that use reply.cancel

	mu      sync.Mutex
	script  []reply
	calls   int
	seen    []request
	handler func(w http.ResponseWriter, r *http.Request, body []byte) bool // optional: true = handled
}

func newFakeWeChat(t *testing.T, script ...reply) *fakeWeChat {
	t.Helper()
	f := &fakeWeChat{done: make(chan struct{}), script: script}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { close(f.done) }) // runs first: unblocks handlers
	return f
}

func (f *fakeWeChat) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls++
	f.seen = append(f.seen, request{r.Method, r.URL.Path, r.URL.RawQuery, string(body), r.Header.Get("Content-Type")})
	var rep reply
	if len(f.script) > 0 {
		rep = f.script[0]
		if len(f.script) > 1 {
			f.script = f.script[1:]
		}
	}
	handler, cancel := f.handler, f.cancel
	f.mu.Unlock()

	if handler != nil && handler(w, r, body) {
		return
	}
	if rep.cancel {
		cancel()
	}
	if rep.block {
		select {
		case <-r.Context().Done():
		case <-f.done:
		}
		return
	}
	if rep.status != 0 {
		w.WriteHeader(rep.status)
	}
	_, _ = io.WriteString(w, rep.body)
}

func (f *fakeWeChat) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeWeChat) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.seen...)
}

// testConfig points both base URLs at f, retries without waiting and logs
// at Debug into logs (if not nil).
func testConfig(f *fakeWeChat, logs io.Writer) Config {
	if logs == nil {
		logs = io.Discard
	}
	return Config{
		BaseURL:      f.srv.URL,
		WeComBaseURL: f.srv.URL + "/",
		HTTPClient:   &http.Client{Timeout: 5 * time.Second},
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		NewBackOff:   func() backoff.BackOff { return &backoff.ZeroBackOff{} },
	}
}

func mustNew(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// method is one Client method under test, called with appID "wxAPP" and
// secret "SECRET" (or access token "ACCESS"), and adapted to return a Token.
type method struct {
	name          string
	op            string
	path          string
	tokenEndpoint bool   // a token endpoint (40001 = wrong secret) rather than a call with a token
	noTTL         bool   // its answer has no lifetime: ExpiresIn is not checked
	okVal         string // what it returns for body("TOKEN", "7200"), if not "TOKEN"
	maxBody       int    // its answer's size limit, if not maxBodySize
	call          func(ctx context.Context, c *Client) (Token, error)
	// body returns a success-shaped answer with the given credential and
	// expires_in (a JSON literal).
	body func(value, expiresIn string) string
}

func tokenBody(value, exp string) string {
	return fmt.Sprintf(`{"access_token":%q,"expires_in":%s}`, value, exp)
}

// methods are every Client method that fetches something; the Open
// Platform ones are in platform_methods_test.go.
var methods = append([]method{
	{
		name: "classic", op: opToken, path: "/cgi-bin/token", tokenEndpoint: true,
		call: func(ctx context.Context, c *Client) (Token, error) { return c.Classic(ctx, "wxAPP", "SECRET") },
		body: tokenBody,
	},
	{
		name: "stable", op: opStableToken, path: "/cgi-bin/stable_token", tokenEndpoint: true,
		call: func(ctx context.Context, c *Client) (Token, error) { return c.Stable(ctx, "wxAPP", "SECRET", false) },
		body: tokenBody,
	},
	{
		name: "wecom", op: opGetToken, path: "/cgi-bin/gettoken", tokenEndpoint: true,
		call: func(ctx context.Context, c *Client) (Token, error) { return c.WeCom(ctx, "wwCORP", "SECRET") },
		body: func(v, exp string) string {
			return fmt.Sprintf(`{"errcode":0,"errmsg":"ok","access_token":%q,"expires_in":%s}`, v, exp)
		},
	},
	{
		name: "ticket", op: opGetTicket, path: "/cgi-bin/ticket/getticket",
		call: func(ctx context.Context, c *Client) (Token, error) { return c.Ticket(ctx, "ACCESS", TicketJSAPI) },
		body: func(v, exp string) string {
			return fmt.Sprintf(`{"errcode":0,"errmsg":"ok","ticket":%q,"expires_in":%s}`, v, exp)
		},
	},
	{
		name: "callbackip", op: opCallbackIP, path: "/cgi-bin/getcallbackip", noTTL: true,
		okVal: "101.226.62.77,101.226.62.78",
		call: func(ctx context.Context, c *Client) (Token, error) {
			ips, err := c.CallbackIP(ctx, "", "ACCESS")
			if err != nil {
				return Token{}, err
			}
			return Token{Value: strings.Join(ips, ","), ExpiresIn: time.Second}, nil
		},
		// A successful answer lists IPs; a token-shaped one has no ip_list,
		// so every malformed token body is also malformed here.
		body: func(v, exp string) string {
			if v == "TOKEN" && exp == "7200" {
				return `{"ip_list":["101.226.62.77","101.226.62.78"]}`
			}
			return tokenBody(v, exp)
		},
	},
}, platformMethods...)

// okValue is what m returns for m.body("TOKEN", "7200").
func (m method) okValue() string {
	if m.okVal != "" {
		return m.okVal
	}
	return "TOKEN"
}
