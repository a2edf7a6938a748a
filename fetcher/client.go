// Package fetcher calls the WeChat HTTP API for credentials: classic, stable
// and WeCom access tokens and JS-SDK tickets. It classifies WeChat's answers
// (see Class) and retries only transient failures, with exponential backoff
// and jitter. It keeps no state between calls and knows nothing of caching:
// every call reaches WeChat.
//
// Secrets and access tokens never appear in an error or a log line from
// this package.
package fetcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
)

const (
	// DefaultBaseURL is the WeChat API used by Official Accounts and Mini
	// Programs.
	DefaultBaseURL = "https://api.weixin.qq.com"
	// DefaultWeComBaseURL is the WeCom (企业微信) API.
	DefaultWeComBaseURL = "https://qyapi.weixin.qq.com"
	// DefaultTimeout bounds one HTTP call when the caller's context has no
	// deadline. With a deadline, a call may use all of it: the try's
	// timeout comes from the fetch's deadline, so that a slow answer is
	// waited for rather than abandoned and retried (which could mint twice).
	DefaultTimeout = 10 * time.Second
)

// Token is a credential as WeChat returned it. A Client method that fails
// returns a Token with only Attempts set.
type Token struct {
	Value     string        // access_token or ticket
	ExpiresIn time.Duration // from expires_in
	Attempts  int           // HTTP calls made to get it (1 + retries); the caller's budget counts these
}

// TicketType is the type parameter of getticket.
type TicketType string

// Ticket types.
const (
	TicketJSAPI  TicketType = "jsapi"   // JS-SDK jsapi_ticket
	TicketWXCard TicketType = "wx_card" // card ticket
)

// Config configures a Client. The zero value is usable: New fills defaults.
type Config struct {
	// BaseURL is the WeChat API root, e.g. an egress proxy; default
	// DefaultBaseURL. An absolute http or https URL, optionally with a path.
	BaseURL string
	// WeComBaseURL is the WeCom API root; default DefaultWeComBaseURL.
	WeComBaseURL string
	// HTTPClient makes the calls; it should have no Timeout of its own (a
	// call is bounded by its context, see DefaultTimeout). Default: a
	// client without Timeout, a Transport cloned from http.DefaultTransport (so
	// HTTPS_PROXY is honoured) and redirects refused (a redirect could carry
	// a secret elsewhere).
	HTTPClient *http.Client
	// Logger receives Debug and Warn records; default: discard.
	Logger *slog.Logger
	// NewBackOff returns a fresh policy for one method call; the Client wraps
	// it with backoff.WithContext. Default: exponential, InitialInterval
	// 200ms, MaxInterval 5s, RandomizationFactor 0.5, MaxElapsedTime 0
	// (bounded only by ctx). It must be safe to call concurrently.
	NewBackOff func() backoff.BackOff
	// MaxAttempts bounds HTTP calls per method call; 0 means unlimited
	// (bounded by ctx and NewBackOff).
	MaxAttempts int
	// TryTimeout, if set, bounds each HTTP call below the context's
	// deadline, and RetryAmbiguous retries Ambiguous calls like Transient
	// ones. Both bring back the behaviour that can mint two tokens in one
	// fetch; they exist only so that the fault suite can show it.
	TryTimeout     time.Duration
	RetryAmbiguous bool
}

// Client calls WeChat. It is safe for concurrent use; it holds no mutable
// state after New.
type Client struct {
	base        string
	wecomBase   string
	hc          *http.Client
	log         *slog.Logger
	newBackOff  func() backoff.BackOff
	maxAttempts int

	tryTimeout     time.Duration
	retryAmbiguous bool
}

// New validates cfg, fills its defaults and returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.WeComBaseURL == "" {
		cfg.WeComBaseURL = DefaultWeComBaseURL
	}
	base, err := checkBase(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("fetcher: BaseURL: %w", err)
	}
	wecom, err := checkBase(cfg.WeComBaseURL)
	if err != nil {
		return nil, fmt.Errorf("fetcher: WeComBaseURL: %w", err)
	}
	if cfg.MaxAttempts < 0 {
		return nil, fmt.Errorf("fetcher: MaxAttempts %d is negative", cfg.MaxAttempts)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = defaultHTTPClient()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.NewBackOff == nil {
		cfg.NewBackOff = defaultBackOff
	}
	return &Client{
		base:        base,
		wecomBase:   wecom,
		hc:          cfg.HTTPClient,
		log:         cfg.Logger.With("component", "fetcher"),
		newBackOff:  cfg.NewBackOff,
		maxAttempts: cfg.MaxAttempts,

		tryTimeout:     cfg.TryTimeout,
		retryAmbiguous: cfg.RetryAmbiguous,
	}, nil
}

// checkBase accepts an absolute http(s) URL without query or fragment and
// returns it without a trailing slash. Its errors never quote the URL, which
// might carry credentials.
func checkBase(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", errors.New("not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("scheme %q, want http or https", u.Scheme)
	case u.Host == "":
		return "", errors.New("no host")
	case u.User != nil:
		return "", errors.New("user info is not allowed")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", errors.New("query and fragment are not allowed")
	}
	return strings.TrimRight(raw, "/"), nil
}

func defaultHTTPClient() *http.Client {
	var rt http.RoundTripper = http.DefaultTransport
	if t, ok := rt.(*http.Transport); ok {
		rt = t.Clone()
	}
	return &http.Client{
		Transport: rt,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func defaultBackOff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 200 * time.Millisecond
	b.MaxInterval = 5 * time.Second
	b.RandomizationFactor = 0.5
	b.MaxElapsedTime = 0
	b.Reset()
	return b
}

// Classic fetches a classic access_token:
// GET {BaseURL}/cgi-bin/token?grant_type=client_credential&appid=&secret=.
// Each success invalidates the app's previous token after WeChat's overlap.
// It blocks until success, a non-transient error, MaxAttempts or the end of
// ctx.
func (c *Client) Classic(ctx context.Context, appID, secret string) (Token, error) {
	q := url.Values{"grant_type": {"client_credential"}, "appid": {appID}, "secret": {secret}}
	k := newGetCall(opToken, "fetch classic token", appID, c.base+"/cgi-bin/token", q, "secret", newRedactor(secret))
	return c.token(ctx, k)
}

// Stable fetches a stable access_token: POST {BaseURL}/cgi-bin/stable_token.
// With force false WeChat returns the current token while it is valid; force
// true invalidates it at once (WeChat allows 20 a day). It blocks like
// Classic.
func (c *Client) Stable(ctx context.Context, appID, secret string, force bool) (Token, error) {
	body, err := json.Marshal(struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}{"client_credential", appID, secret, force})
	if err != nil { // cannot happen with string and bool fields
		return Token{}, fmt.Errorf("fetch stable token: encode request: %w", err)
	}
	endpoint := c.base + "/cgi-bin/stable_token"
	k := &call{
		op: opStableToken, what: "fetch stable token", appID: appID,
		method: http.MethodPost, url: endpoint, safeURL: endpoint, body: body,
		red: newRedactor(secret),
	}
	return c.token(ctx, k)
}

// WeCom fetches a WeCom access_token:
// GET {WeComBaseURL}/cgi-bin/gettoken?corpid=&corpsecret=. It blocks like
// Classic.
func (c *Client) WeCom(ctx context.Context, corpID, secret string) (Token, error) {
	q := url.Values{"corpid": {corpID}, "corpsecret": {secret}}
	k := newGetCall(opGetToken, "fetch wecom token", corpID, c.wecomBase+"/cgi-bin/gettoken", q, "corpsecret", newRedactor(secret))
	return c.token(ctx, k)
}

// Ticket fetches a JS-SDK or card ticket with accessToken:
// GET {BaseURL}/cgi-bin/ticket/getticket?access_token=&type=. A dead token
// gives an *APIError of Class TokenDead. It blocks like Classic.
func (c *Client) Ticket(ctx context.Context, accessToken string, typ TicketType) (Token, error) {
	q := url.Values{"access_token": {accessToken}, "type": {string(typ)}}
	what := "fetch ticket"
	if typ != "" {
		what = "fetch " + string(typ) + " ticket"
	}
	k := newGetCall(opGetTicket, what, "", c.base+"/cgi-bin/ticket/getticket", q, "access_token", newRedactor(accessToken))
	return c.token(ctx, k)
}

// CallbackIP lists WeChat's callback IPs with accessToken:
// GET {base}/cgi-bin/getcallbackip?access_token=, where base "" means
// BaseURL. It is a cheap way to use a token: a dead token gives an *APIError
// of Class TokenDead. It retries like Classic.
func (c *Client) CallbackIP(ctx context.Context, base, accessToken string) ([]string, error) {
	const what = "get callback ip"
	if base == "" {
		base = c.base
	} else {
		var err error
		if base, err = checkBase(base); err != nil {
			return nil, fmt.Errorf("%s: base: %w", what, err)
		}
	}
	q := url.Values{"access_token": {accessToken}}
	k := newGetCall(opCallbackIP, what, "", base+"/cgi-bin/getcallbackip", q, "access_token", newRedactor(accessToken))
	ips, _, err := run(ctx, c, k, func(status int, body []byte) ([]string, error) {
		return parseIPList(k.op, status, body, k.red)
	})
	return ips, err
}

// token runs k and parses a token or ticket answer.
func (c *Client) token(ctx context.Context, k *call) (Token, error) {
	type result struct {
		value string
		ttl   time.Duration
	}
	r, attempts, err := run(ctx, c, k, func(status int, body []byte) (result, error) {
		v, ttl, err := parseToken(k.op, status, body, k.red)
		return result{v, ttl}, err
	})
	if err != nil {
		return Token{Attempts: attempts}, err
	}
	return Token{Value: r.value, ExpiresIn: r.ttl, Attempts: attempts}, nil
}

// drain discards what is left of a body, up to a bound, so the connection
// can be reused.
func drain(r io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r, maxBodySize))
}
