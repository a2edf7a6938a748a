package deploy_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// TestEtcdProxyFleetAfterMemberRestart shows a known problem of the
// fleet recipe with etcd's auth on (README, "A fleet of sidecars"): the
// proxy opens the merged watch with the auth token of the first sidecar
// that asked, and when it must open it again (here: the member restarts,
// which forgets every simple token), etcd refuses that token; the proxy
// tells no sidecar, and their caches stay "synced" on the old records.
// With auth off (the same test with AuthEnable left out) it passes. It
// takes about a minute and fails today, so it runs only with
// WXTOKEN_KNOWN_PROBLEMS=1: run it when working on a fix (the cache could
// notice that its watch has stopped from its probe's revision).
func TestEtcdProxyFleetAfterMemberRestart(t *testing.T) {
	if os.Getenv("WXTOKEN_KNOWN_PROBLEMS") != "1" {
		t.Skip("known problem, see the comment; WXTOKEN_KNOWN_PROBLEMS=1 runs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := startEtcdWithProxy(t, ctx)
	sim := wechattest.NewServer(wechattest.Config{Overlap: time.Millisecond})
	t.Cleanup(sim.Close)
	sim.AddApp(proxyAppID, proxySecret)
	leader := runReplica(t, e.replicaConfig(t, "leader", e.member, true, sim.URL))
	cred := tokenstore.CredName("demo", "token")
	first, err := leader.Cache().Wait(ctx, cred, 0)
	if err != nil {
		t.Fatalf("the leader published no token: %v", err)
	}
	var fleet []*tokenstore.Cache
	for range 5 {
		c := tokenstore.NewCache(tokenstore.CacheConfig{Client: e.client(t, e.proxy, "replica", tokenstore.RoleSidecar, e.sidecarPW), Prefix: proxyPrefix})
		fleet = append(fleet, c)
		cctx, ccancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = c.Run(cctx) }()
		t.Cleanup(func() { ccancel(); <-done })
	}
	has := func(seq uint64) bool {
		for _, c := range fleet {
			if r, ok := c.Get(cred); !ok || r.Seq < seq {
				return false
			}
		}
		return true
	}
	if !eventually(ctx, 30*time.Second, func() bool { return has(first.Seq) }) {
		t.Fatal("the fleet does not serve the first token")
	}
	e.stopMember()
	e.startMember(t, ctx)
	strayFetch(t, sim)
	if !eventually(ctx, 10*time.Second, func() bool {
		r, ok := leader.Cache().Get(cred)
		return ok && r.Seq > first.Seq
	}) {
		invalidateAt(ctx, t, leader.URL(), first.Value) // the leader learns of the dead token from a report
	}
	next, err := leader.Cache().Wait(ctx, cred, first.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if !eventually(ctx, 30*time.Second, func() bool { return has(next.Seq) }) {
		for i, c := range fleet {
			r, _ := c.Get(cred)
			t.Logf("cache %d: seq %d, synced %v", i, r.Seq, c.Synced())
		}
		t.Fatalf("after the member's restart, the fleet behind the proxy did not get seq %d within 30 s", next.Seq)
	}
}
