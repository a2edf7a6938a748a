package replica_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// TestLeaderBeats: the leader, and only the leader, writes the heartbeat
// every probe interval for as long as it leads; after a graceful stop the
// next leader's beats follow.
func TestLeaderBeats(t *testing.T) {
	e := newEnv(t, 1, wechattest.Config{TokenTTL: time.Hour})
	a := e.start(e.testConfig("a"), nil)
	b := e.start(e.testConfig("b"), nil)
	key := tokenstore.Keys{Prefix: "/wxtoken"}.Beat()
	c := e.clus.Client(0)
	// beats waits for n new beats and checks that each is node's.
	beats := func(node string, n int) {
		t.Helper()
		var last int64
		seen := 0
		waitFor(t, time.Duration(n+3)*tokenstore.DefaultProbeInterval, "beats of "+node, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			resp, err := c.Get(ctx, key)
			if err != nil || len(resp.Kvs) == 0 || resp.Kvs[0].ModRevision == last {
				return false
			}
			var b tokenstore.Beat
			if err := json.Unmarshal(resp.Kvs[0].Value, &b); err != nil {
				t.Fatalf("beat %q: %v", resp.Kvs[0].Value, err)
			}
			switch {
			case b.Node == node && last != 0:
				seen++
			case b.Node != node && last != 0:
				t.Fatalf("a beat of %s while %s leads", b.Node, node)
			case b.Node != node:
				return false // a past leader's last beat, before node's first
			}
			last = resp.Kvs[0].ModRevision
			return seen >= n
		})
	}
	first := e.leader(10 * time.Second)
	beats(first.node, 3)
	next := b
	if first == b {
		next = a
	}
	first.stop()
	if got := e.leader(10 * time.Second); got != next {
		t.Fatalf("leader after the stop: %s, want %s", got.node, next.node)
	}
	beats(next.node, 3)
}
