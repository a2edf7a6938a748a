package deploy_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// TestEtcdProxyFleetAfterMemberRestart: the fleet recipe with etcd's
// auth on (README, "A fleet of sidecars") survives a member restart. The
// proxy opens its merged watch with the auth token of the first sidecar
// that asked; when it must open it again (here: the member restarts,
// which forgets every simple token), etcd refuses that token and the
// proxy tells no sidecar. Each cache notices from the leader's heartbeat
// (tokenstore/cachebeat.go): its probe reads a beat its watch never
// delivers, it turns not synced and opens its watches again, spelled so
// that the proxy cannot fold them back into the dead merged watch. It
// takes about a minute.
func TestEtcdProxyFleetAfterMemberRestart(t *testing.T) {
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
	// The fleet: a serve-only sidecar replica (its cache follows its app
	// alone, one watch per app), bare caches that follow everything and
	// bare caches that follow the app alone. The client of one of them
	// holds a watch of its own too (as a replica's client does for other
	// parts), which keeps the client's first watch stream, and its auth
	// token, in use.
	sidecar := runReplica(t, e.replicaConfig(t, "sidecar", e.proxy, false, sim.URL))
	fleet := []*tokenstore.Cache{sidecar.Cache()}
	for i := range 5 {
		var apps []string
		if i >= 3 {
			apps = []string{"demo"}
		}
		cl := e.client(t, e.proxy, "replica", tokenstore.RoleSidecar, e.sidecarPW)
		c := tokenstore.NewCache(tokenstore.CacheConfig{Client: cl, Prefix: proxyPrefix, Apps: apps})
		fleet = append(fleet, c)
		cctx, ccancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = c.Run(cctx) }()
		t.Cleanup(func() { ccancel(); <-done })
		if i == 0 {
			other := make(chan struct{})
			go func() {
				defer close(other)
				for range cl.Watch(clientv3.WithRequireLeader(cctx), tokenstore.Keys{Prefix: proxyPrefix}.Replicas(), clientv3.WithPrefix()) {
				}
			}()
			t.Cleanup(func() { ccancel(); <-other })
		}
	}
	has := func(seq uint64) bool {
		for _, c := range fleet {
			if r, ok := c.Get(cred); !ok || r.Seq < seq {
				return false
			}
		}
		return true
	}
	synced := func(seq uint64) bool {
		for _, c := range fleet {
			if !c.Synced() {
				return false
			}
		}
		return has(seq)
	}
	if !eventually(ctx, 30*time.Second, func() bool { return synced(first.Seq) }) {
		t.Fatal("the fleet does not serve the first token, synced")
	}
	dump := func() {
		for i, c := range fleet {
			r, _ := c.Get(cred)
			t.Logf("cache %d: seq %d, synced %v, stalls %d", i, r.Seq, c.Synced(), c.Stalls())
		}
	}
	e.stopMember()
	e.startMember(t, ctx)
	restarted := time.Now()
	// A new token at once, while the fleet's watches are dead: it reaches
	// the fleet when they find out and list again.
	strayFetch(t, sim)
	invalidateAt(ctx, t, leader.URL(), first.Value) // the leader learns of the dead token from a report
	next, err := leader.Cache().Wait(ctx, cred, first.Seq)
	if err != nil {
		t.Fatal(err)
	}
	leaderHad := time.Now()
	if !eventually(ctx, 30*time.Second, func() bool { return synced(next.Seq) }) {
		dump()
		t.Fatalf("after the member's restart, the fleet behind the proxy did not get seq %d and turn synced within 30 s", next.Seq)
	}
	t.Logf("the fleet serves seq %d, synced, %v after the member restarted, %v after the leader had it",
		next.Seq, time.Since(restarted).Round(100*time.Millisecond), time.Since(leaderHad).Round(100*time.Millisecond))
	dump()

	// The watches opened again are live: the next token reaches the fleet
	// through them, not through one more stall and listing.
	stalls := make([]int64, len(fleet))
	for i, c := range fleet {
		stalls[i] = c.Stalls()
	}
	strayFetch(t, sim)
	value := invalidateAt(ctx, t, leader.URL(), next.Value)
	third, err := leader.Cache().Wait(ctx, cred, next.Seq)
	if err != nil || third.Value != value {
		t.Fatalf("the leader's next token: %+v, %v; want the one the report returned", third, err)
	}
	began := time.Now()
	if !eventually(ctx, 10*time.Second, func() bool { return synced(third.Seq) && servedToken(ctx, sidecar.URL()) == value }) {
		dump()
		t.Fatalf("the fleet did not get seq %d within 10 s", third.Seq)
	}
	t.Logf("seq %d reached the fleet in %v", third.Seq, time.Since(began).Round(time.Millisecond))
	for i, c := range fleet {
		if n := c.Stalls(); n != stalls[i] {
			t.Errorf("cache %d: %d stalls before seq %d, %d after; want its watch to deliver it", i, stalls[i], third.Seq, n)
		}
	}
}
