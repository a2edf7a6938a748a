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
type signal struct {
	refresher.Fetcher
	once    sync.Once
	started chan struct{}
	armed   func() bool
}

func (s *signal) Classic(ctx context.Context, appID, secret string) (fetcher.Token, error) {
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
	sig := &signal{started: make(chan struct{}), armed: func() bool { return true }}
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
