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
	Kind        string    `json:"kind"` // classic, stable or wecom
	AccessToken string    `json:"access_token"`
	ExpiresAt   time.Time `json:"expires_at"`
	// ExpiresIn is how many seconds, from the answer, the token may be
	// kept. The client's cache keeps it no longer.
	ExpiresIn int64  `json:"expires_in"`
	Seq       uint64 `json:"seq"`
}

// Client talks to one replica (or a load balancer in front of several).
// Its methods are safe for concurrent use. A cached token is read without
// locks or allocations; a stale one is fetched by one request per app, which
// concurrent callers share.
type Client struct {
	base string
	hc   *http.Client
	auth []string         // the Authorization header's value, or nil
	now  func() time.Time // nil: the timer fast path
	// afterFunc arms the staleness timers; tests replace it.
	afterFunc func(time.Duration, func()) *time.Timer

	mu    sync.Mutex // serializes copies of the slot map
	slots atomic.Pointer[map[string]*slot]
}

// slot is one app's cache entry and its request in flight.
type slot struct {
	cur atomic.Pointer[entry]

	mu     sync.Mutex
	flight *flight
}

// entry is a cached token and the instant it turns stale. Without an
// injected clock, a timer marks it stale at that instant, so that a read
// need not look at the clock (which costs more than the rest of the read).
type entry struct {
	tok   Token
	until time.Time
	stale atomic.Bool
	timer *time.Timer // nil with an injected clock
}

// flight is one request to the replica that concurrent callers share.
type flight struct {
	done chan struct{}
	// dead is the token being invalidated, "" for a plain read.
	dead string
	// Set before done is closed.
	tok       Token
	err       error
	abandoned bool // the caller running it gave up: its ctx ended
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
	m := map[string]*slot{}
	c.slots.Store(&m)
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
	if s := (*c.slots.Load())[app]; s != nil {
		if e := s.cur.Load(); e != nil && c.fresh(e) {
			return e.tok, nil
		}
	}
	return c.shared(ctx, app, "")
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
	return c.shared(ctx, app, token)
}

// fresh reports whether e may still be handed out.
func (c *Client) fresh(e *entry) bool {
	if c.now == nil {
		return !e.stale.Load()
	}
	return c.now().Before(e.until)
}

func (c *Client) clock() time.Time {
	if c.now == nil {
		return time.Now()
	}
	return c.now()
}

// slot returns app's slot, creating it.
func (c *Client) slot(app string) *slot {
	if s := (*c.slots.Load())[app]; s != nil {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := *c.slots.Load()
	if s := cur[app]; s != nil {
		return s
	}
	next := make(map[string]*slot, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	s := &slot{}
	next[app] = s
	c.slots.Store(&next)
	return s
}

// shared reads app's token (dead == "") or invalidates dead, sharing one
// request among concurrent callers.
func (c *Client) shared(ctx context.Context, app, dead string) (Token, error) {
	s := c.slot(app)
	good := func(t Token) bool { return dead == "" || t.AccessToken != dead }
	for {
		if e := s.cur.Load(); e != nil && c.fresh(e) && good(e.tok) {
			return e.tok, nil
		}
		s.mu.Lock()
		if e := s.cur.Load(); e != nil && c.fresh(e) && good(e.tok) {
			s.mu.Unlock()
			return e.tok, nil
		}
		if f := s.flight; f != nil {
			s.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return Token{}, ctx.Err()
			}
			switch {
			case f.err == nil && good(f.tok):
				return f.tok, nil
			case f.err != nil && !f.abandoned && f.dead == dead:
				return Token{}, f.err // the same question just failed
			}
			continue // a different question, or given up: ask ours
		}
		f := &flight{done: make(chan struct{}), dead: dead}
		s.flight = f
		s.mu.Unlock()

		start := c.clock()
		if dead == "" {
			f.tok, f.err = c.get(ctx, app)
		} else {
			f.tok, f.err = c.invalidate(ctx, app, dead)
		}
		f.abandoned = f.err != nil && ctx.Err() != nil
		s.mu.Lock()
		if f.err == nil {
			c.store(s, f.tok, start)
		}
		s.flight = nil
		s.mu.Unlock()
		close(f.done)
		return f.tok, f.err
	}
}

// store caches t, asked for at start, unless a fresh newer token is cached.
// Call it with s.mu held.
func (c *Client) store(s *slot, t Token, start time.Time) {
	if e := s.cur.Load(); e != nil && e.tok.Seq > t.Seq && c.fresh(e) {
		return
	}
	e := &entry{tok: t, until: start.Add(time.Duration(t.ExpiresIn) * time.Second)}
	if c.now == nil {
		if d := time.Until(e.until); d > 0 {
			e.timer = c.afterFunc(d, func() { e.stale.Store(true) })
		} else {
			e.stale.Store(true)
		}
	}
	if old := s.cur.Swap(e); old != nil && old.timer != nil {
		old.timer.Stop()
	}
}

func (c *Client) get(ctx context.Context, app string) (Token, error) {
	var t Token
	if err := c.call(ctx, http.MethodGet, "/v1/apps/"+url.PathEscape(app)+"/token", nil, &t); err != nil {
		return Token{}, fmt.Errorf("get token of %s: %w", app, err)
	}
	return t, nil
}

func (c *Client) invalidate(ctx context.Context, app, token string) (Token, error) {
	var t Token
	body := struct {
		AccessToken string `json:"access_token"`
	}{token}
	if err := c.call(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(app)+"/token/invalidate", body, &t); err != nil {
		return Token{}, fmt.Errorf("invalidate token of %s: %w", app, err)
	}
	return t, nil
}
