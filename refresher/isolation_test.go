package refresher_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/refresher"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// byApp is a Fetcher that refuses the appids in refuse (40164) and answers
// every other classic call with a fresh token; it logs each call's time.
type byApp struct {
	mu     sync.Mutex
	refuse map[string]bool
	calls  map[string][]time.Time
	first  []error // answered, in order, before anything else
}

var _ refresher.Fetcher = (*byApp)(nil)

func (b *byApp) Classic(ctx context.Context, appID, secret string) (fetcher.Token, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.calls == nil {
		b.calls = map[string][]time.Time{}
	}
	b.calls[appID] = append(b.calls[appID], time.Now())
	if len(b.first) > 0 {
		err := b.first[0]
		b.first = b.first[1:]
		return fetcher.Token{Attempts: 1}, err
	}
	if b.refuse[appID] {
		return fetcher.Token{Attempts: 1}, apiErr(40164, fetcher.Permanent)
	}
	return fetcher.Token{Value: fmt.Sprintf("%s-%d", appID, len(b.calls[appID])), ExpiresIn: time.Hour, Attempts: 1}, nil
}

func (b *byApp) Stable(ctx context.Context, appID, secret string, force bool) (fetcher.Token, error) {
	return b.Classic(ctx, appID, secret)
}
func (b *byApp) WeCom(ctx context.Context, corpID, secret string) (fetcher.Token, error) {
	return b.Classic(ctx, corpID, secret)
}
func (b *byApp) Ticket(ctx context.Context, token string, typ fetcher.TicketType) (fetcher.Token, error) {
	return b.Classic(ctx, token, "")
}

func (b *byApp) times(appID string) []time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]time.Time(nil), b.calls[appID]...)
}

func twoApps(t *testing.T, f fixture, node string, fc refresher.Fetcher) *refresher.Refresher {
	t.Helper()
	r, err := refresher.New(refresher.Config{
		Store: f.store, Cache: f.cache, Fetcher: fc, Node: node,
		Creds: []refresher.Cred{
			{Name: "shop/token", App: "shop", Kind: refresher.KindClassic, AppID: "wxshop", Secret: "s"},
			{Name: "mini/token", App: "mini", Kind: refresher.KindClassic, AppID: "wxmini", Secret: "s"},
		},
		Before: 10 * time.Minute, FetchTimeout: time.Second, WindowMargin: 100 * time.Millisecond,
		Holdoff: time.Hour, OwnerCheck: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// announce puts a candidate's presence key, as a live replica would.
func announce(t *testing.T, f fixture, node string) {
	t.Helper()
	val, _ := json.Marshal(tokenstore.Presence{Node: node, Candidate: true})
	if _, err := f.store.Client().Put(context.Background(), f.store.Keys().Replica(node), string(val)); err != nil {
		t.Fatal(err)
	}
}

// TestRefusalIsPerCredential: WeChat refusing one app from the leader's
// host is recorded for that (credential, node) alone; the leader keeps
// leading and serving the other app; with no other candidate the refused
// app is blocked, and once one appears it fetches the app there.
func TestRefusalIsPerCredential(t *testing.T) {
	f := newFixture(t)
	announce(t, f, "n1")
	leaderFetch := &byApp{refuse: map[string]bool{"wxshop": true}}
	r := twoApps(t, f, "n1", leaderFetch)
	stop := f.lead(t, r)

	if _, err := f.cache.Wait(context.Background(), "mini/token", 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "shop blocked as refused everywhere", func() bool {
		ov, err := f.store.Overview(context.Background(), tokenstore.Day(time.Now()))
		if err != nil {
			return false
		}
		for _, st := range ov.States {
			if st.Cred == "shop/token" && st.Blocked == "refused" {
				return true
			}
		}
		return false
	})
	snap, err := f.store.Load(context.Background(), "shop/token", tokenstore.Day(time.Now()))
	if err != nil || !snap.RefusedFor("n1") || snap.Refusals[0].Code != 40164 {
		t.Fatalf("refusals %+v (%v), want n1's 40164", snap.Refusals, err)
	}
	if n := len(leaderFetch.times("wxshop")); n != 1 {
		t.Errorf("leader called WeChat %d times for the refused app, want 1", n)
	}

	// A second candidate joins, not refused: the leader hands shop to it.
	announce(t, f, "n2")
	delegateFetch := &byApp{}
	d := twoApps(t, f, "n2", delegateFetch)
	dctx, dcancel := context.WithCancel(context.Background())
	ddone := make(chan struct{})
	go func() { defer close(ddone); d.Delegate(dctx, func() bool { return true }) }()
	t.Cleanup(func() { dcancel(); <-ddone })
	rec, err := f.cache.Wait(context.Background(), "shop/token", 0)
	if err != nil || rec.Node != "n2" {
		t.Fatalf("shop record %+v (%v), want one published by n2", rec, err)
	}
	if n := len(delegateFetch.times("wxmini")); n != 0 {
		t.Errorf("the delegate fetched mini %d times, want 0: only what is delegated", n)
	}
	if err := stop(); err != nil {
		t.Errorf("Lead = %v, want nil: a refusal never ends the term", err)
	}
}

// TestAmbiguousCallKeepsIntent: a call that ended without a complete
// answer keeps its intent and is not retried before its window (fetch
// timeout + margin) has passed since it was given up.
func TestAmbiguousCallKeepsIntent(t *testing.T) {
	f := newFixture(t)
	announce(t, f, "n1")
	fc := &byApp{first: []error{fmt.Errorf("%w: truncated body", fetcher.ErrBadResponse)}}
	r := newRefresher(t, f, fc, 0)
	f.lead(t, r)
	waitFor(t, "the intent of the ambiguous call", func() bool {
		snap, err := f.store.Load(context.Background(), "shop/token", tokenstore.Day(time.Now()))
		return err == nil && snap.Intent != nil && len(fc.times("wx1")) == 1
	})
	rec, err := f.cache.Wait(context.Background(), "shop/token", 0)
	if err != nil {
		t.Fatal(err)
	}
	calls := fc.times("wx1")
	if len(calls) != 2 || calls[1].Sub(calls[0]) < 1100*time.Millisecond {
		t.Fatalf("calls at %v, want 2, the second at least fetch timeout + margin (1.1 s) after the first", calls)
	}
	if rec.Seq != 1 {
		t.Errorf("seq %d, want 1", rec.Seq)
	}
}

// TestReportOfOldRecordFetchesNothing: a report that reaches etcd for a
// record already replaced causes no fetch (the refresher compares seqs;
// the API's own check of the token is not in the way here).
func TestReportOfOldRecordFetchesNothing(t *testing.T) {
	f := newFixture(t)
	fc := &script{}
	r, err := refresher.New(refresher.Config{
		Store: f.store, Cache: f.cache, Fetcher: fc, Node: "n1",
		Creds:  []refresher.Cred{{Name: "shop/token", App: "shop", Kind: refresher.KindClassic, AppID: "wx1", Secret: "s"}},
		Before: 10 * time.Minute, FetchTimeout: time.Second, WindowMargin: 100 * time.Millisecond,
		ReportInterval: time.Millisecond, // every unconfirmed report refreshes: nothing masks the seq check
	})
	if err != nil {
		t.Fatal(err)
	}
	f.lead(t, r)
	ctx := context.Background()
	if _, err := f.cache.Wait(ctx, "shop/token", 0); err != nil {
		t.Fatal(err)
	}
	report := func(seq uint64) {
		t.Helper()
		if _, _, err := f.store.Report(ctx, tokenstore.Report{Cred: "shop/token", Seq: seq, Node: "x", At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	report(1) // the current record: refreshed (no checker: unconfirmed)
	if _, err := f.cache.Wait(ctx, "shop/token", 1); err != nil {
		t.Fatal(err)
	}
	report(1) // now an old record
	waitFor(t, "the old report to be dropped", func() bool {
		resp, err := f.store.Client().Get(ctx, f.store.Keys().Report("shop/token", 1))
		return err == nil && len(resp.Kvs) == 0
	})
	if n := fc.count(); n != 2 {
		t.Fatalf("%d calls, want 2: a report of an old record fetches nothing", n)
	}
}

// TestReportBeforeTermIsServed: a report written while no loop of this
// process ran (between terms, or before a new leader's loops started) is
// found in etcd by the first step, not lost.
func TestReportBeforeTermIsServed(t *testing.T) {
	f := newFixture(t)
	fc := &script{}
	r := newRefresher(t, f, fc, 0)
	// As in a replica: the candidate's Delegate runs all along, so the
	// report watch outlives each term.
	dctx, dcancel := context.WithCancel(context.Background())
	ddone := make(chan struct{})
	go func() { defer close(ddone); r.Delegate(dctx, func() bool { return true }) }()
	t.Cleanup(func() { dcancel(); <-ddone })
	stop := f.lead(t, r)
	ctx := context.Background()
	if _, err := f.cache.Wait(ctx, "shop/token", 0); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.store.Report(ctx, tokenstore.Report{Cred: "shop/token", Seq: 1, Node: "x", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	f.lead(t, r) // the next term, as after a failover
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := f.cache.Wait(wctx, "shop/token", 1); err != nil {
		t.Fatalf("no refresh after a report made between terms: %v", err)
	}
	if n := fc.count(); n != 2 {
		t.Errorf("%d calls, want 2: the report made one refresh", n)
	}
}
