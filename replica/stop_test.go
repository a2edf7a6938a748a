package replica_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/refresher"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// signal is a Fetcher that closes started when a classic call begins.
type callSignal struct {
	refresher.Fetcher
	once    sync.Once
	started chan struct{}
	armed   func() bool
}

func (s *callSignal) Classic(ctx context.Context, appID, secret string) (fetcher.Token, error) {
	if s.armed() {
		s.once.Do(func() { close(s.started) })
	}
	return s.Fetcher.Classic(ctx, appID, secret)
}

// Invariant 10, a minted token is never thrown away while the lease
// holds: a leader stopped (SIGTERM) while its WeChat call is in flight
// lets the call finish, publishes the token it minted, and only then
// resigns; nobody fetches again, so no token is killed early.
func TestInvariantGracefulStopPublishesCallInFlight(t *testing.T) {
	e := newEnv(t, 1, wechattest.Config{TokenTTL: time.Hour, Overlap: 3 * time.Second})
	watchCfg := e.testConfig("watcher")
	watchCfg.Election.Candidate = false
	watcher := e.start(watchCfg, nil)

	// The leader's first call is held 1 s (inside the 2 s fetch timeout);
	// the leader is stopped while it is in flight.
	e.sim.SetFault(wechattest.Fault{Mode: wechattest.FaultLatency, Latency: time.Second, Count: 1})
	sig := &callSignal{started: make(chan struct{}), armed: func() bool { return true }}
	cfg := e.testConfig("r0")
	cfg.Refresh.FetchTimeout = 2 * time.Second
	r0 := e.start(cfg, func(f refresher.Fetcher) refresher.Fetcher { sig.Fetcher = f; return sig })
	select {
	case <-sig.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the leader never called WeChat")
	}
	stopped := make(chan struct{})
	go func() { r0.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the stop did not end within fetch_timeout + resign")
	}
	var rec tokenstore.Record
	waitFor(t, 5*time.Second, "the minted token on the watcher", func() bool {
		var ok bool
		rec, ok = watcher.Cache().Get("shop/token")
		return ok
	})
	var minted []wechattest.Fetch
	for _, f := range fetches(e.sim) {
		if f.Issued {
			minted = append(minted, f)
		}
	}
	if len(minted) != 1 || minted[0].Token != rec.Value || rec.Node != "r0" {
		t.Errorf("%d tokens minted; record %d by %s; want the one minted during the stop, published by r0", len(minted), rec.Seq, rec.Node)
	}
	snap, err := tokenstore.New(watcher.etcd, "/wxtoken").Load(context.Background(), "shop/token", tokenstore.Day(time.Now()))
	if err != nil || snap.Intent != nil {
		t.Errorf("intent after the stop: %+v (%v), want none: the publish cleared it", snap.Intent, err)
	}
}

// Invariant 9, no blind retry: a call WeChat holds past the fetch's
// deadline and answers (minting) at the end is never retried inside its
// intent. The next call comes only after the call's window, so the late
// token is the older one, replaced by the next; no token is served dead
// and no two calls overlap.
func TestInvariantNoBlindRetry(t *testing.T) {
	e := newEnv(t, 1, wechattest.Config{TokenTTL: time.Hour, Overlap: 3 * time.Second})
	// The first call is held 1.6 s, past the 1.2 s fetch timeout (and
	// past a per-try timeout of a third of it), and mints at the end.
	e.sim.SetFault(wechattest.Fault{Mode: wechattest.FaultLatency, Latency: 1600 * time.Millisecond, Count: 1})
	cfg := e.testConfig("r0")
	cfg.Refresh.FetchTimeout = 1200 * time.Millisecond
	r0 := e.start(cfg, nil)
	cons := e.consume("shop")
	waitFor(t, 15*time.Second, "a token", func() bool { _, code, _ := getToken(r0.URL(), "shop"); return code == 200 })
	first, _ := r0.Cache().Get("shop/token")
	// Read on until the overlap after the newest mint has passed: a token
	// killed by a late mint would be served dead meanwhile.
	waitFor(t, 15*time.Second, "the overlap after the last mint", func() bool {
		fs := fetches(e.sim)
		return len(fs) >= 2 && time.Since(fs[len(fs)-1].At) > 3500*time.Millisecond
	})
	cons.check(t, e.sim)
	fs := fetches(e.sim)
	checkNoOverlap(t, fs)
	if len(fs) < 2 || !fs[0].Issued || fs[1].Start.Before(fs[0].At) {
		t.Fatalf("ledger %+v: want the held call (minted late) first, the next call after its answer", fs)
	}
	if first.Value != fs[1].Token {
		t.Errorf("published %q, want the token of the call after the window", first.Value)
	}
}
