package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// slot is one key's cache entry and its request in flight.
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

// hit returns the entry of s if it holds a fresh token, or nil. The
// cached reads look their slot up by its names and build a key only on a
// miss: copying a key into a call cost as much as the rest of the read.
func (c *Client) hit(s *slot) *entry {
	if s == nil {
		return nil
	}
	if e := s.cur.Load(); e != nil && c.fresh(e) {
		return e
	}
	return nil
}

// fresh reports whether e may still be handed out.
func (c *Client) fresh(e *entry) bool {
	if c.now == nil {
		return !e.stale.Load()
	}
	return c.before(e.until)
}

// before reports whether the injected clock is before t. It is apart from
// fresh so that fresh, and the cached reads with it, stay inlined.
func (c *Client) before(t time.Time) bool { return c.now().Before(t) }

func (c *Client) clock() time.Time {
	if c.now == nil {
		return time.Now()
	}
	return c.now()
}

// shared reads k's token (dead == "") or invalidates dead, sharing one
// request among concurrent callers.
func (c *Client) shared(ctx context.Context, k key, dead string) (Token, error) {
	s := c.slot(k)
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
		f.tok, f.err = c.fetch(ctx, k, dead)
		f.abandoned = f.err != nil && ctx.Err() != nil
		s.mu.Lock()
		switch {
		case f.err == nil:
			c.store(s, f.tok, start)
		case revoked(f.err):
			c.drop(s) // its cached token is the account's no more
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

// revoked reports whether err says the account behind a token cancelled
// its authorization.
func revoked(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == CodeUnauthorizedAuthorizer
}

// drop forgets s's cached token. Call it with s.mu held.
func (c *Client) drop(s *slot) {
	if old := s.cur.Swap(nil); old != nil && old.timer != nil {
		old.timer.Stop()
	}
}

// fetch asks the replica for k's token (dead == "") or reports dead
// (compare-and-refresh) and returns the token to use instead.
func (c *Client) fetch(ctx context.Context, k key, dead string) (Token, error) {
	var t Token
	if dead == "" {
		if err := c.call(ctx, http.MethodGet, k.path(), nil, &t); err != nil {
			return Token{}, fmt.Errorf("get %s: %w", k, err)
		}
		return t, nil
	}
	body := struct {
		AccessToken string `json:"access_token"`
	}{dead}
	if err := c.call(ctx, http.MethodPost, k.path()+"/invalidate", body, &t); err != nil {
		return Token{}, fmt.Errorf("invalidate %s: %w", k, err)
	}
	return t, nil
}
