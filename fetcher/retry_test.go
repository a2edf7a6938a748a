package fetcher

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// A call that timed out after its request was written may still mint a
// token at WeChat: it ends the fetch as Ambiguous, never retried.
func TestTimeoutAfterWriteIsAmbiguous(t *testing.T) {
	for _, m := range methods {
		t.Run(m.name, func(t *testing.T) {
			f := newFakeWeChat(t, reply{block: true}, ok200(m.body("TOKEN", "7200")))
			c := mustNew(t, testConfig(f, nil))
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			tok, err := m.call(ctx, c)
			if got := ClassOf(err); got != Ambiguous {
				t.Fatalf("ClassOf(%v) = %v, want ambiguous", err, got)
			}
			if got := f.callCount(); got != 1 {
				t.Errorf("server calls = %d, want 1", got)
			}
			if m.op != opCallbackIP && tok.Attempts != 1 {
				t.Errorf("Attempts = %d, want 1", tok.Attempts)
			}
		})
	}
}

// The switch the fault suite uses to show the protection matters: with a
// per-try timeout and ambiguous retries, one fetch makes several calls.
func TestRetryAmbiguousSwitch(t *testing.T) {
	f := newFakeWeChat(t, reply{block: true}, reply{block: true}, ok200(tokenBody("TOKEN", "7200")))
	cfg := testConfig(f, nil)
	cfg.TryTimeout, cfg.RetryAmbiguous = 50*time.Millisecond, true
	c := mustNew(t, cfg)
	tok, err := c.Classic(context.Background(), "wxA", "s")
	if err != nil {
		t.Fatalf("err = %v, want nil", err)
	}
	if got := f.callCount(); got != 3 || tok.Attempts != 3 {
		t.Errorf("server calls = %d, Attempts = %d; want 3 and 3", got, tok.Attempts)
	}
}

// A call that failed before its request was written minted nothing: it is
// retried at once.
func TestUnsentIsRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every dial is refused
	c := mustNew(t, Config{BaseURL: "http://" + addr, MaxAttempts: 3,
		NewBackOff: func() backoff.BackOff { return &backoff.ZeroBackOff{} }})
	tok, err := c.Classic(context.Background(), "wxA", "s")
	if got := ClassOf(err); got != Transient {
		t.Fatalf("ClassOf(%v) = %v, want transient", err, got)
	}
	if tok.Attempts != 3 {
		t.Errorf("Attempts = %d, want 3", tok.Attempts)
	}
}

func TestRetriesBoundedByContext(t *testing.T) {
	tests := []struct {
		name        string
		httpTimeout time.Duration // 0: only ctx bounds each call
		backOff     func() backoff.BackOff
	}{
		{"one call outlives ctx", 0, func() backoff.BackOff { return &backoff.ZeroBackOff{} }},
		{"default backoff", 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeWeChat(t, reply{block: true})
			cfg := testConfig(f, nil)
			cfg.HTTPClient = &http.Client{Timeout: tc.httpTimeout}
			cfg.NewBackOff = tc.backOff
			c := mustNew(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			defer cancel()
			tok, err := c.Classic(ctx, "wxA", "s")
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want context.DeadlineExceeded", err)
			}
			if got := ClassOf(err); got != Ambiguous {
				t.Errorf("ClassOf = %v, want ambiguous", got)
			}
			// The last attempt may end before its request reaches the server.
			if calls := f.callCount(); tok.Attempts < 1 || calls > tok.Attempts {
				t.Errorf("Attempts = %d, server calls %d; want 1 <= calls <= Attempts", tok.Attempts, calls)
			}
		})
	}
}

func TestCancelStopsRetries(t *testing.T) {
	for _, m := range methods {
		t.Run(m.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f := newFakeWeChat(t, apiErr(-1), status(404, ""), reply{status: 404, cancel: true}, ok200(m.body("TOKEN", "7200")))
			f.cancel = cancel
			c := mustNew(t, testConfig(f, nil))
			tok, err := m.call(ctx, c)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if got := f.callCount(); got != 3 {
				t.Errorf("server calls = %d, want 3", got)
			}
			if m.op != opCallbackIP && tok.Attempts != 3 {
				t.Errorf("Attempts = %d, want 3", tok.Attempts)
			}
		})
	}
}

func TestCanceledContextMakesOneCallAtMost(t *testing.T) {
	f := newFakeWeChat(t, ok200(tokenBody("T", "7200")))
	c := mustNew(t, testConfig(f, nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Classic(ctx, "wxA", "s")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if got := f.callCount(); got != 0 {
		t.Errorf("server calls = %d, want 0", got)
	}
}

// stopAfter is a BackOff that allows n retries, without waiting.
type stopAfter struct{ n, used int }

var _ backoff.BackOff = (*stopAfter)(nil)

func (b *stopAfter) NextBackOff() time.Duration {
	if b.used >= b.n {
		return backoff.Stop
	}
	b.used++
	return 0
}
func (b *stopAfter) Reset() { b.used = 0 }

func TestBackOffStopEndsRetries(t *testing.T) {
	f := newFakeWeChat(t, apiErr(-1))
	cfg := testConfig(f, nil)
	cfg.NewBackOff = func() backoff.BackOff { return &stopAfter{n: 2} }
	c := mustNew(t, cfg)
	tok, err := c.Classic(context.Background(), "wxA", "s")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != -1 {
		t.Fatalf("err = %v, want errcode -1", err)
	}
	if tok.Attempts != 3 || f.callCount() != 3 {
		t.Errorf("Attempts = %d, server calls = %d; want 3 and 3", tok.Attempts, f.callCount())
	}
}

func TestConcurrentUse(t *testing.T) {
	f := newFakeWeChat(t, apiErr(-1), ok200(tokenBody("TOKEN", "7200")))
	c := mustNew(t, testConfig(f, nil))
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Go(func() {
			if _, err := c.Classic(context.Background(), "wxA", "s"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Classic: %v", err)
	}
	if got := f.callCount(); got != n+1 {
		t.Errorf("server calls = %d, want %d", got, n+1)
	}
}

func TestDefaultClientRefusesRedirects(t *testing.T) {
	target := newFakeWeChat(t, ok200(tokenBody("TOKEN", "7200")))
	f := newFakeWeChat(t)
	f.handler = func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		http.Redirect(w, r, target.srv.URL+"/cgi-bin/token?"+r.URL.RawQuery, http.StatusFound)
		return true
	}
	c := mustNew(t, Config{BaseURL: f.srv.URL, MaxAttempts: 1})
	_, err := c.Classic(context.Background(), "wxA", "s")
	if err == nil || ClassOf(err) != Transient {
		t.Errorf("err = %v, want a transient status error (a redirect is not WeChat's answer)", err)
	}
	if got := target.callCount(); got != 0 {
		t.Errorf("redirect target calls = %d, want 0", got)
	}
}
