package tokenstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/election"
	"github.com/wxtoken/wxtoken/internal/etcdtest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// leaderKey writes a key standing in for an election leader key and
// returns a guard on it.
func leaderKey(t *testing.T, c *clientv3.Client, key string) *election.Guard {
	t.Helper()
	resp, err := c.Put(context.Background(), key, "n")
	if err != nil {
		t.Fatal(err)
	}
	return election.NewGuard(key, resp.Header.Revision, time.Now().Add(time.Hour))
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestIntentPublishFencing(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	s := tokenstore.New(c, "/w")
	g := leaderKey(t, c, "/w/election/a")
	day := tokenstore.Day(time.Now())

	snap, err := s.Load(ctx(t), "app/token", day)
	if err != nil || snap.Record != nil || snap.Intent != nil {
		t.Fatalf("empty Load = %+v, %v", snap, err)
	}
	rev, err := s.BeginFetch(ctx(t), g, snap, tokenstore.Intent{Seq: 1, Node: "a"}, 2)
	if err != nil {
		t.Fatalf("BeginFetch: %v", err)
	}
	// A second writer holding the same old snapshot is refused.
	if _, err := s.BeginFetch(ctx(t), g, snap, tokenstore.Intent{Seq: 1, Node: "b"}, 2); !errors.Is(err, tokenstore.ErrFenced) {
		t.Fatalf("BeginFetch on a stale snapshot: got %v, want ErrFenced", err)
	}
	// A new term deletes and re-creates the leader key: the old guard dies.
	if _, err := c.Delete(ctx(t), "/w/election/a"); err != nil {
		t.Fatal(err)
	}
	g2 := leaderKey(t, c, "/w/election/b")
	rec := tokenstore.Record{Cred: "app/token", Value: "T1", Seq: 1, ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.Publish(ctx(t), g, snap, rev, rec); !errors.Is(err, tokenstore.ErrFenced) {
		t.Fatalf("Publish by the old term: got %v, want ErrFenced", err)
	}
	if err := s.Publish(ctx(t), g2, snap, rev, rec); err != nil {
		t.Fatalf("Publish by the new term: %v", err)
	}
	snap, err = s.Load(ctx(t), "app/token", day)
	if err != nil || snap.Record == nil || snap.Record.Value != "T1" || snap.Intent != nil || snap.Budget.Count != 1 {
		t.Fatalf("after publish: %+v, %v; want record T1, no intent, budget 1", snap, err)
	}
	if err := s.Publish(ctx(t), g2, snap, rev, tokenstore.Record{Cred: "app/token", Seq: 1}); err == nil {
		t.Fatal("Publish of a seq not above the current: got nil error")
	}
	// Budget: one more fetch fits in 2, the third is refused.
	rev, err = s.BeginFetch(ctx(t), g2, snap, tokenstore.Intent{Seq: 2}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AbortFetch(ctx(t), g2, snap, rev); err != nil {
		t.Fatal(err)
	}
	snap, _ = s.Load(ctx(t), "app/token", day)
	if _, err := s.BeginFetch(ctx(t), g2, snap, tokenstore.Intent{Seq: 2}, 2); !errors.Is(err, tokenstore.ErrBudget) {
		t.Fatalf("third fetch with budget 2: got %v, want ErrBudget", err)
	}
}

func TestReportCreatedOnce(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	s := tokenstore.New(clus.Client(0), "/w")
	var created atomic.Int64
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stored, _, err := s.Report(ctx(t), tokenstore.Report{Cred: "app/token", Seq: 7, Node: fmt.Sprint(i)})
			if err != nil {
				t.Error(err)
			}
			if stored.Node == fmt.Sprint(i) {
				created.Add(1)
			}
		}()
	}
	wg.Wait()
	if created.Load() != 1 {
		t.Fatalf("reports created: %d, want 1", created.Load())
	}
	cred, seq, ok := s.Keys().ParseReport(s.Keys().Report("app/token", 7))
	if !ok || cred != "app/token" || seq != 7 {
		t.Fatalf("ParseReport = %q %d %v", cred, seq, ok)
	}
}

func runCache(t *testing.T, c *clientv3.Client, probe time.Duration) *tokenstore.Cache {
	t.Helper()
	cache := tokenstore.NewCache(tokenstore.CacheConfig{Client: c, Prefix: "/w", ProbeInterval: probe})
	cctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = cache.Run(cctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-cache.Loaded():
	case <-time.After(10 * time.Second):
		t.Fatal("cache never loaded")
	}
	return cache
}

func putRecord(t *testing.T, c *clientv3.Client, r tokenstore.Record) {
	t.Helper()
	s := tokenstore.New(c, "/w")
	if err := s.PublishUnfenced(ctx(t), r); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInvariantMonotonicRecords: the cache serves the highest seq it has
// seen; a lower seq written later is never served.
func TestInvariantMonotonicRecords(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	cache := runCache(t, c, 0)
	putRecord(t, c, tokenstore.Record{Cred: "a/token", Value: "v5", Seq: 5})
	if _, err := cache.Wait(ctx(t), "a/token", 4); err != nil {
		t.Fatal(err)
	}
	putRecord(t, c, tokenstore.Record{Cred: "a/token", Value: "v3", Seq: 3})
	putRecord(t, c, tokenstore.Record{Cred: "b/token", Value: "b1", Seq: 1}) // a marker after it
	if _, err := cache.Wait(ctx(t), "b/token", 0); err != nil {
		t.Fatal(err)
	}
	if r, _ := cache.Get("a/token"); r.Seq != 5 || r.Value != "v5" {
		t.Fatalf("served %+v after a lower seq was written; want seq 5", r)
	}
	// A fresh cache that lists the lower record still never goes back
	// once it has seen the higher one.
	putRecord(t, c, tokenstore.Record{Cred: "a/token", Value: "v6", Seq: 6})
	if r, err := cache.Wait(ctx(t), "a/token", 5); err != nil || r.Value != "v6" {
		t.Fatalf("Wait = %+v, %v; want v6", r, err)
	}
}

// TestCacheSurvivesCutOffAndCatchesUp: a cache whose member is cut off
// keeps serving, reports not synced, and catches up after.
func TestCacheSurvivesCutOffAndCatchesUp(t *testing.T) {
	clus := etcdtest.NewCluster(t, 3)
	cache := runCache(t, clus.Client(0), 200*time.Millisecond)
	putRecord(t, clus.Client(1), tokenstore.Record{Cred: "a/token", Value: "v1", Seq: 1})
	if _, err := cache.Wait(ctx(t), "a/token", 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "synced", cache.Synced)

	clus.Members[0].Bridge().Blackhole()
	waitFor(t, "not synced while cut off", func() bool { return !cache.Synced() })
	putRecord(t, clus.Client(1), tokenstore.Record{Cred: "a/token", Value: "v2", Seq: 2})
	if r, ok := cache.Get("a/token"); !ok || r.Value != "v1" {
		t.Fatalf("cut-off cache serves %+v, want v1", r)
	}
	clus.Members[0].Bridge().Unblackhole()
	clus.Members[0].Bridge().DropConnections()
	if r, err := cache.Wait(ctx(t), "a/token", 1); err != nil || r.Value != "v2" {
		t.Fatalf("after reconnect: %+v, %v; want v2", r, err)
	}
	waitFor(t, "synced again", cache.Synced)
}

// TestCacheOnApply: a published record carries PublishedAt, and OnApply
// sees the records the watch applies, not those of the first list nor a
// lower seq.
func TestCacheOnApply(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	putRecord(t, c, tokenstore.Record{Cred: "a/token", Value: "listed", Seq: 1})
	applied := make(chan tokenstore.Record, 10)
	cache := tokenstore.NewCache(tokenstore.CacheConfig{Client: c, Prefix: "/w",
		OnApply: func(r tokenstore.Record, _ time.Time) { applied <- r }})
	cctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = cache.Run(cctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-cache.Loaded()
	before := time.Now()
	putRecord(t, c, tokenstore.Record{Cred: "a/token", Value: "old", Seq: 0})
	putRecord(t, c, tokenstore.Record{Cred: "a/token", Value: "watched", Seq: 2})
	if _, err := cache.Wait(ctx(t), "a/token", 1); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-applied:
		if r.Value != "watched" || r.PublishedAt.Before(before) || r.PublishedAt.After(time.Now()) {
			t.Errorf("OnApply got %s published at %v; want watched, published after %v", r.Value, r.PublishedAt, before)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnApply not called for the watched record")
	}
	if len(applied) != 0 {
		t.Errorf("OnApply called %d more times (the listed or the lower record)", len(applied))
	}
}

// TestPublishBoundsReports: a publish leaves only the report on its own
// seq (one a replica may still be writing), and a state's error message
// is cut to MaxLastError: what etcd holds per credential stays bounded.
func TestPublishBoundsReports(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	s := tokenstore.New(c, "/w")
	g := leaderKey(t, c, "/w/election/a")
	for _, seq := range []uint64{1, 3, 7, 1 << 60} {
		if _, _, err := s.Report(ctx(t), tokenstore.Report{Cred: "a/token", Seq: seq, Node: "n"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Report(ctx(t), tokenstore.Report{Cred: "a/token2", Seq: 9, Node: "n"}); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Load(ctx(t), "a/token", tokenstore.Day(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	rev, err := s.BeginFetch(ctx(t), g, snap, tokenstore.Intent{Seq: 3}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(ctx(t), g, snap, rev, tokenstore.Record{Cred: "a/token", Value: "v", Seq: 3}); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.ReportsAll(ctx(t))
	want := []tokenstore.ReportKey{{Cred: "a/token", Seq: 3}, {Cred: "a/token2", Seq: 9}}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("reports after publishing seq 3: %v (%v); want %v", got, err, want)
	}

	long := strings.Repeat("é", tokenstore.MaxLastError)
	if err := s.PutState(ctx(t), g, tokenstore.State{Cred: "a/token", LastError: long}); err != nil {
		t.Fatal(err)
	}
	ov, err := s.Overview(ctx(t), tokenstore.Day(time.Now()))
	if err != nil || len(ov.States) != 1 {
		t.Fatalf("Overview: %+v, %v", ov.States, err)
	}
	if e := ov.States[0].LastError; len(e) > tokenstore.MaxLastError+len("…") || !utf8.ValidString(e) || !strings.HasPrefix(long, strings.TrimSuffix(e, "…")) {
		t.Errorf("stored LastError of %d bytes (valid UTF-8: %v); want at most %d, cut on a rune", len(e), utf8.ValidString(e), tokenstore.MaxLastError)
	}
}
