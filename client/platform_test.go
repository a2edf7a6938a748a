package client

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/fetcher/wechattest"
)

// platformReads are the cached reads of a platform's tokens, with the
// fakeAPI credential each one reads, for tests that treat them alike.
var platformReads = []struct {
	name       string
	cred       string
	read       func(*Client, context.Context) (Token, error)
	invalidate func(*Client, context.Context, string) (Token, error)
}{
	{"component", "component/saas",
		func(c *Client, ctx context.Context) (Token, error) { return c.ComponentToken(ctx, "saas") },
		func(c *Client, ctx context.Context, tok string) (Token, error) {
			return c.InvalidateComponent(ctx, "saas", tok)
		}},
	{"authorizer", "authorizer/saas/wxauth01",
		func(c *Client, ctx context.Context) (Token, error) { return c.AuthorizerToken(ctx, "saas", "wxauth01") },
		func(c *Client, ctx context.Context, tok string) (Token, error) {
			return c.InvalidateAuthorizer(ctx, "saas", "wxauth01", tok)
		}},
}

func TestPlatformTokensCachedUntilExpiresIn(t *testing.T) {
	for _, r := range platformReads {
		t.Run(r.name, func(t *testing.T) {
			f := newFakeAPI(t, "saas")
			clock := wechattest.NewFakeClock(time.Unix(1_700_000_000, 0))
			c := newClient(t, f.srv.URL, clock.Now)
			steps := []struct {
				advance  time.Duration
				wantGets int
			}{{0, 1}, {0, 1}, {59 * time.Second, 1}, {time.Second, 2}, {30 * time.Second, 2}}
			for i, s := range steps {
				clock.Advance(s.advance)
				tok, err := r.read(c, context.Background())
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if tok.AccessToken != r.cred+"#1" || tok.App != "saas" || tok.Kind != r.name || tok.ExpiresIn != 60 {
					t.Errorf("step %d: got %+v, want %s#1 of saas, kind %s", i, tok, r.cred, r.name)
				}
				if want := map[string]string{"component": "", "authorizer": "wxauth01"}[r.name]; tok.AuthorizerAppID != want {
					t.Errorf("step %d: AuthorizerAppID %q, want %q", i, tok.AuthorizerAppID, want)
				}
				if gets, _ := f.requests(r.cred); gets != s.wantGets {
					t.Errorf("step %d: requests: got %d, want %d", i, gets, s.wantGets)
				}
			}
		})
	}
}

func TestPlatformTokensSingleFlight(t *testing.T) {
	for _, r := range platformReads {
		t.Run(r.name, func(t *testing.T) {
			f := newFakeAPI(t, "saas")
			f.arrived = make(chan string, 100)
			release := f.holdRequests()
			c := newClient(t, f.srv.URL, nil)
			const callers = 50
			var wg sync.WaitGroup
			errs := make(chan error, callers)
			for range callers {
				wg.Go(func() {
					tok, err := r.read(c, context.Background())
					if err == nil && tok.AccessToken != r.cred+"#1" {
						err = fmt.Errorf("got %q, want %s#1", tok.AccessToken, r.cred)
					}
					errs <- err
				})
			}
			<-f.arrived // one request is in flight, held
			release()
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			if gets, _ := f.requests(r.cred); gets != 1 {
				t.Errorf("requests: got %d, want 1", gets)
			}
		})
	}
}

func TestPlatformInvalidateCompareAndRefresh(t *testing.T) {
	for _, r := range platformReads {
		t.Run(r.name, func(t *testing.T) {
			f := newFakeAPI(t, "saas")
			c := newClient(t, f.srv.URL, nil)
			ctx := context.Background()
			if _, err := r.read(c, ctx); err != nil {
				t.Fatal(err)
			}
			// A fresh, different token is cached: answered locally.
			tok, err := r.invalidate(c, ctx, r.cred+"#0")
			if err != nil || tok.AccessToken != r.cred+"#1" {
				t.Fatalf("invalidate(old): got %q, %v; want %s#1", tok.AccessToken, err, r.cred)
			}
			if _, posts := f.requests(r.cred); posts != 0 {
				t.Errorf("reports after an old one: got %d, want 0", posts)
			}
			tok, err = r.invalidate(c, ctx, r.cred+"#1")
			if err != nil || tok.AccessToken != r.cred+"#2" || tok.Seq != 2 {
				t.Fatalf("invalidate(current): got %+v, %v; want %s#2", tok, err, r.cred)
			}
			if tok, err = r.read(c, ctx); err != nil || tok.AccessToken != r.cred+"#2" {
				t.Fatalf("read after the report: got %q, %v; want %s#2 cached", tok.AccessToken, err, r.cred)
			}
			if gets, posts := f.requests(r.cred); gets != 1 || posts != 1 {
				t.Errorf("requests: got %d reads and %d reports, want 1 and 1", gets, posts)
			}
			if _, err := r.invalidate(c, ctx, ""); err == nil {
				t.Error("invalidate(empty): got nil error, want one")
			}
		})
	}
}

// TestCacheSlotsApart: an app, a platform's component token and
// authorizers whose names coincide are cached apart. Were the cache keyed
// by the bare name, "x" would be one slot and the later reads would get
// the first one's token.
func TestCacheSlotsApart(t *testing.T) {
	f := newFakeAPI(t, "p", "x")
	c := newClient(t, f.srv.URL, nil)
	ctx := context.Background()
	reads := []struct {
		cred string
		read func() (Token, error)
	}{
		{"app/x", func() (Token, error) { return c.Token(ctx, "x") }},
		{"authorizer/p/x", func() (Token, error) { return c.AuthorizerToken(ctx, "p", "x") }},
		{"component/x", func() (Token, error) { return c.ComponentToken(ctx, "x") }},
		{"authorizer/x/x", func() (Token, error) { return c.AuthorizerToken(ctx, "x", "x") }},
		{"component/p", func() (Token, error) { return c.ComponentToken(ctx, "p") }},
		{"authorizer/x/p", func() (Token, error) { return c.AuthorizerToken(ctx, "x", "p") }},
	}
	for round := range 2 {
		for _, r := range reads {
			tok, err := r.read()
			if err != nil || tok.AccessToken != r.cred+"#1" {
				t.Errorf("round %d: %s: got %q, %v; want %s#1", round, r.cred, tok.AccessToken, err, r.cred)
			}
			if gets, _ := f.requests(r.cred); gets != 1 {
				t.Errorf("round %d: %s: %d requests, want 1", round, r.cred, gets)
			}
		}
	}
	// A report of the app's token refreshes the app's slot alone.
	if tok, err := c.Invalidate(ctx, "x", "app/x#1"); err != nil || tok.AccessToken != "app/x#2" {
		t.Fatalf("Invalidate(app x): got %q, %v; want app/x#2", tok.AccessToken, err)
	}
	for _, r := range reads[1:] {
		if tok, err := r.read(); err != nil || tok.AccessToken != r.cred+"#1" {
			t.Errorf("after the app's report: %s: got %q, %v; want %s#1", r.cred, tok.AccessToken, err, r.cred)
		}
	}
}

// TestIndexGrowsAmortized: a client of many authorizers does not copy its
// index once per new one (which allocated 2.2 GB for 10,000), and every
// slot made is found again.
func TestIndexGrowsAmortized(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1", nil)
	const n = 10000
	keys := make([]key, n)
	for i := range keys {
		keys[i] = key{kind: kindAuthorizer, platform: "saas", name: fmt.Sprintf("wxauth%010d", i)}
	}
	made := make([]*slot, n)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i, k := range keys {
		made[i] = c.slot(k)
		for range 3 { // the reads that follow a first one
			if c.slot(k) != made[i] {
				t.Fatalf("%s: a second slot", k)
			}
		}
	}
	runtime.ReadMemStats(&after)
	if mb := (after.TotalAlloc - before.TotalAlloc) >> 20; mb > 64 {
		t.Errorf("%d slots allocated %d MB, want at most 64", n, mb)
	}
	// Slots made since the last copy are found under the lock until they
	// have been missed as often as there are slots: 10 more reads each.
	for range 10 {
		for i, k := range keys {
			if c.slot(k) != made[i] {
				t.Fatalf("%s: a second slot", k)
			}
		}
	}
	if x := c.slots.Load(); x.n != n || x.authorizer("saas", keys[n-1].name) != made[n-1] {
		t.Errorf("the lock-free index holds %d slots after 10 more reads of each, want %d", x.n, n)
	}
}
