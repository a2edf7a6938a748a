package refresher_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/election"
	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/internal/etcdtest"
	"github.com/wxtoken/wxtoken/refresher"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// script is a Fetcher that answers classic calls from a list of results,
// then with fresh tokens, and counts the calls.
type script struct {
	mu      sync.Mutex
	results []error
	calls   int
	n       int
}

var _ refresher.Fetcher = (*script)(nil)

func (s *script) Classic(ctx context.Context, appID, secret string) (fetcher.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if len(s.results) > 0 {
		err := s.results[0]
		s.results = s.results[1:]
		if err != nil {
			return fetcher.Token{Attempts: 1}, err
		}
	}
	s.n++
	return fetcher.Token{Value: "token-" + string(rune('a'+s.n)), ExpiresIn: time.Hour, Attempts: 1}, nil
}

func (s *script) Stable(ctx context.Context, appID, secret string, force bool) (fetcher.Token, error) {
	return s.Classic(ctx, appID, secret)
}

func (s *script) WeCom(ctx context.Context, corpID, secret string) (fetcher.Token, error) {
	return s.Classic(ctx, corpID, secret)
}

func (s *script) Ticket(ctx context.Context, token string, typ fetcher.TicketType) (fetcher.Token, error) {
	return s.Classic(ctx, token, "")
}

func (s *script) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

type fixture struct {
	store *tokenstore.Store
	cache *tokenstore.Cache
	guard *election.Guard
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	resp, err := c.Put(context.Background(), "/w/election/x", "leader")
	if err != nil {
		t.Fatal(err)
	}
	cache := tokenstore.NewCache(tokenstore.CacheConfig{Client: c, Prefix: "/w"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = cache.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return fixture{store: tokenstore.New(c, "/w"), cache: cache, guard: election.NewGuard("/w/election/x", resp.Header.Revision, time.Now().Add(time.Hour))}
}

// lead runs one term until stop is called and returns Lead's error.
func (f fixture) lead(t *testing.T, r *refresher.Refresher) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- r.Lead(ctx, f.guard) }()
	var once sync.Once
	var err error
	stop = func() error { once.Do(func() { cancel(); err = <-errc }); return err }
	t.Cleanup(func() { stop() })
	return stop
}

func newRefresher(t *testing.T, f fixture, fc refresher.Fetcher, budget int) *refresher.Refresher {
	t.Helper()
	r, err := refresher.New(refresher.Config{
		Store: f.store, Cache: f.cache, Fetcher: fc, Node: "n1",
		Creds:  []refresher.Cred{{Name: "shop/token", App: "shop", Kind: refresher.KindClassic, AppID: "wx1", Secret: "s", Budget: budget}},
		Before: 10 * time.Minute, FetchTimeout: time.Second, WindowMargin: 100 * time.Millisecond, Holdoff: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func apiErr(code int, class fetcher.Class) error {
	return &fetcher.APIError{Op: "token", Code: code, Msg: "x", Class: class}
}

// TestTransientErrorsAreRetried: an answered transient error (busy)
// aborts its intent and is retried; the budget counts every call.
func TestTransientErrorsAreRetried(t *testing.T) {
	f := newFixture(t)
	fc := &script{results: []error{apiErr(-1, fetcher.Transient), apiErr(45011, fetcher.Transient)}}
	r := newRefresher(t, f, fc, 0)
	f.lead(t, r)
	rec, err := f.cache.Wait(context.Background(), "shop/token", 0)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Seq != 1 || fc.count() != 3 {
		t.Fatalf("record seq %d after %d calls; want seq 1 after 3", rec.Seq, fc.count())
	}
	snap, err := f.store.Load(context.Background(), "shop/token", tokenstore.Day(time.Now()))
	if err != nil || snap.Intent != nil || snap.Budget.Count != 3 {
		t.Fatalf("after publish: intent %+v, budget %+v, %v; want no intent, 3 counted", snap.Intent, snap.Budget, err)
	}
}

// TestPermanentErrorStopsWithoutLoop: a wrong secret is tried once in a
// term and then left alone, even when reported.
func TestPermanentErrorStopsWithoutLoop(t *testing.T) {
	f := newFixture(t)
	fc := &script{results: []error{apiErr(40125, fetcher.Permanent), apiErr(40125, fetcher.Permanent)}}
	r := newRefresher(t, f, fc, 0)
	f.lead(t, r)
	waitFor(t, "blocked", func() bool { return r.Metrics().Blocked("shop/token") == "permanent" })
	if _, _, err := f.store.Report(context.Background(), tokenstore.Report{Cred: "shop/token", Seq: 0}); err != nil {
		t.Fatal(err)
	}
	// The report reaches the loop, which must not call again; a budget of
	// fetches counted in etcd proves the loop looked.
	waitFor(t, "the state to be stored", func() bool {
		ov, err := f.store.Overview(context.Background(), tokenstore.Day(time.Now()))
		return err == nil && len(ov.States) == 1 && ov.States[0].Blocked == "permanent"
	})
	if n := fc.count(); n != 1 {
		t.Fatalf("%d calls for a wrong secret, want 1", n)
	}
}

// TestQuotaBlocksUntilChinaMidnight: 45009 stops fetching and says why.
func TestQuotaBlocksUntilChinaMidnight(t *testing.T) {
	f := newFixture(t)
	fc := &script{results: []error{apiErr(45009, fetcher.Quota)}}
	r := newRefresher(t, f, fc, 0)
	f.lead(t, r)
	waitFor(t, "blocked on quota", func() bool { return r.Metrics().Blocked("shop/token") == "quota" })
	var st tokenstore.State
	waitFor(t, "the state", func() bool {
		ov, err := f.store.Overview(context.Background(), tokenstore.Day(time.Now()))
		if err != nil || len(ov.States) != 1 {
			return false
		}
		st = ov.States[0]
		return st.Blocked == "quota"
	})
	if got := st.BlockedTill.In(tokenstore.China); got.Hour() != 0 || got.Minute() != 0 || !got.After(time.Now()) {
		t.Errorf("blocked till %v, want the next China-time midnight", got)
	}
	if fc.count() != 1 {
		t.Errorf("%d calls, want 1", fc.count())
	}
}

func TestNewValidates(t *testing.T) {
	f := newFixture(t)
	for name, creds := range map[string][]refresher.Cred{
		"duplicate":        {{Name: "a/token", Kind: "classic"}, {Name: "a/token", Kind: "classic"}},
		"unknown kind":     {{Name: "a/token", Kind: "classik"}},
		"ticket, no token": {{Name: "a/jsapi", Kind: "jsapi"}},
	} {
		_, err := refresher.New(refresher.Config{Store: f.store, Cache: f.cache, Fetcher: &script{}, Node: "n", Creds: creds})
		if err == nil {
			t.Errorf("%s: New returned nil error", name)
		}
	}
}
