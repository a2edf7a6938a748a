package replica_test

import (
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/internal/etcdtest"
)

// TestStrandedEtcdConnection: a replica whose connection to etcd the
// network lost without a word (open at both ends, carrying nothing: a NAT
// or firewall that forgot its table, an address gone with a partition) is
// back on a new connection within gRPC's keepalive, and serves the
// cluster's newest token. Without keepalives it would wait on the dead
// connection for as long as TCP keeps it, which through a middlebox that
// still acknowledges is for ever.
func TestStrandedEtcdConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out gRPC's keepalive (at least 15 s)")
	}
	e := envOn(t, etcdtest.NewTCPCluster(t, 1), wechattest.Config{TokenTTL: 8 * time.Second})
	b := e.start(e.testConfig("b"), nil)
	// a serves only, and dials etcd itself, through the proxy.
	a, p := e.startBehindProxy(e.testConfig("a"))

	serves := func(r *rep, atLeast uint64) func() bool {
		return func() bool {
			rec, ok := r.Cache().Get("shop/token")
			return ok && rec.Seq >= atLeast
		}
	}
	waitFor(t, 20*time.Second, "a and b to serve a token", func() bool { return serves(a, 1)() && serves(b, 1)() })

	p.Strand()
	stranded := time.Now()
	now, _ := b.Cache().Get("shop/token")
	// The leader refreshes every few seconds; a must catch up on a new
	// connection. gRPC pings after 10 s without a read and gives up on
	// the connection 5 s later; the reconnect and the watch take the rest.
	waitFor(t, 20*time.Second, "b to publish a newer token", serves(b, now.Seq+1))
	newest, _ := b.Cache().Get("shop/token")
	waitFor(t, 35*time.Second, "a, stranded, to serve b's newer token", serves(a, newest.Seq))
	t.Logf("a serves seq %d %v after its connection was stranded", newest.Seq, time.Since(stranded).Round(100*time.Millisecond))
}
