// Package client is the Go client of a wxtoken replica. It keeps a local
// cache of tokens that honours the replica's expires_in, reports dead tokens
// (compare-and-refresh), and offers an http.RoundTripper that puts the token
// into WeChat API calls and retries a call once when WeChat answers that the
// token is dead.
//
// It depends on the standard library only, so that apps can import it
// without the replica's dependencies.
package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for Config.
const (
	// DefaultBaseURL is a replica on the local host (a sidecar).
	DefaultBaseURL = "http://127.0.0.1:8417"
	// DefaultTimeout bounds one request to the replica. It is above the
	// replica's own bound on an invalidation (10 s), which waits for a
	// refresh.
	DefaultTimeout = 20 * time.Second
)

// Config configures a Client.
type Config struct {
	// BaseURL is the replica's API, such as "http://127.0.0.1:8417",
	// "https://wxtoken.internal:8417", or "unix:///run/wxtoken/api.sock"
	// for its unix socket (listen_unix). Default DefaultBaseURL.
	BaseURL string
	// Token, if set, is sent as "Authorization: Bearer <Token>" on every
	// request: the replica's clients key token_file or token_sha256.
	// Over the network use https://, or the token crosses it in the clear.
	Token string
	// HTTPClient makes the requests to the replica (set its Transport's
	// TLSClientConfig for a private CA or a client certificate). Default: a
	// client with DefaultTimeout. With a unix: BaseURL its Transport is
	// replaced by one that dials the socket.
	HTTPClient *http.Client
	// Now is the clock that decides when a cached token is stale. Default:
	// time.Now, read through the monotonic clock.
	Now func() time.Time
}

// Token is an access token as the replica hands it out.
type Token struct {
	App         string    `json:"app"`
	Kind        string    `json:"kind"` // classic, stable, wecom, component or authorizer
	AccessToken string    `json:"access_token"`
	ExpiresAt   time.Time `json:"expires_at"`
	// ExpiresIn is how many seconds, from the answer, the token may be
	// kept. The client's cache keeps it no longer.
	ExpiresIn int64  `json:"expires_in"`
	Seq       uint64 `json:"seq"`
	// AuthorizerAppID is the account's appid in an authorizer's token
	// (App is then the platform); "" otherwise.
	AuthorizerAppID string `json:"authorizer_appid,omitempty"`
}

// Client talks to one replica (or a load balancer in front of several).
// Its methods are safe for concurrent use. A cached token is read without
// allocations, and without locks once a few reads have moved its slot into
// the lock-free index; a stale one is fetched by one request per token (an
// app's, a platform's component token, an authorizer's), which concurrent
// callers share.
type Client struct {
	base string
	hc   *http.Client
	auth []string         // the Authorization header's value, or nil
	now  func() time.Time // nil: the timer fast path
	// afterFunc arms the staleness timers; tests replace it.
	afterFunc func(time.Duration, func()) *time.Timer

	slots  atomic.Pointer[index] // read without locks; never changed
	mu     sync.Mutex            // guards dirty and misses
	dirty  *index                // slots plus those made since, or nil
	misses int                   // lookups that needed dirty
}

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err == nil && u.Scheme == "unix" && u.Path != "" && u.Host == "" {
		return newUnix(cfg, u.Path)
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: bad BaseURL %q (want http://host:port, https://host:port or unix:///path)", base)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	return build(cfg, strings.TrimRight(base, "/"), hc), nil
}

// newUnix returns a Client that reaches the replica over its unix socket.
func newUnix(cfg Config, path string) (*Client, error) {
	hc := &http.Client{Timeout: DefaultTimeout}
	if cfg.HTTPClient != nil {
		copied := *cfg.HTTPClient
		hc = &copied
	}
	var d net.Dialer
	hc.Transport = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}
	// The host name is only for the Host header: any name serves.
	return build(cfg, "http://localhost", hc), nil
}

func build(cfg Config, base string, hc *http.Client) *Client {
	c := &Client{base: base, hc: hc, now: cfg.Now, afterFunc: time.AfterFunc}
	if cfg.Token != "" {
		c.auth = []string{"Bearer " + cfg.Token}
	}
	c.slots.Store(newIndex())
	return c
}

// BaseURL is the replica's API base URL, without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// Token returns app's access token. While the cached token is fresh (for
// the expires_in of the answer that brought it) it makes no request and does
// not allocate; otherwise one request per app is in flight at a time, and
// every caller waits for it, each until its own ctx ends. Errors from the
// replica are *Error; an unreachable replica gives an error that wraps
// ErrUnreachable.
func (c *Client) Token(ctx context.Context, app string) (Token, error) {
	if e := c.hit(c.slots.Load().app(app)); e != nil {
		return e.tok, nil
	}
	return c.shared(ctx, key{kind: kindApp, name: app}, "")
}

// Invalidate reports that token failed for app (WeChat answered 40001,
// 40014 or 42001) and returns the token to use instead. It is
// compare-and-refresh: if the cache already holds a fresh, different token
// it answers with that one and makes no request; otherwise the replica asks
// its leader for one refresh, only if token is still the current one, and
// answers with the new token. Concurrent reports of one token from this
// client share one request.
func (c *Client) Invalidate(ctx context.Context, app, token string) (Token, error) {
	if token == "" {
		return Token{}, errors.New("invalidate: empty token")
	}
	return c.shared(ctx, key{kind: kindApp, name: app}, token)
}
