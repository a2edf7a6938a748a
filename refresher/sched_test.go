package refresher_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/wxtoken/wxtoken/election"
	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/internal/etcdtest"
	"github.com/wxtoken/wxtoken/refresher"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// gate is a Fetcher whose classic calls take a while and count the calls
// in flight.
type gate struct {
	latency time.Duration
	now     atomic.Int64
	peak    atomic.Int64
	calls   atomic.Int64
}

func (g *gate) Classic(ctx context.Context, appID, _ string) (fetcher.Token, error) {
	n := g.now.Add(1)
	defer g.now.Add(-1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	g.calls.Add(1)
	select {
	case <-time.After(g.latency):
	case <-ctx.Done():
		return fetcher.Token{}, ctx.Err()
	}
	return fetcher.Token{Value: "tok-" + appID, ExpiresIn: 2 * time.Hour, Attempts: 1}, nil
}
func (g *gate) Stable(ctx context.Context, a, s string, _ bool) (fetcher.Token, error) {
	return g.Classic(ctx, a, s)
}
func (g *gate) WeCom(ctx context.Context, a, s string) (fetcher.Token, error) {
	return g.Classic(ctx, a, s)
}
func (g *gate) Ticket(ctx context.Context, tok string, _ fetcher.TicketType) (fetcher.Token, error) {
	return g.Classic(ctx, tok, "")
}

func manyCreds(n int) []refresher.Cred {
	creds := make([]refresher.Cred, n)
	for i := range creds {
		app := fmt.Sprintf("app%05d", i)
		creds[i] = refresher.Cred{Name: tokenstore.CredName(app, "token"), App: app, Kind: refresher.KindClassic, AppID: "wx" + app, Secret: "s"}
	}
	return creds
}

// TestLeaderHoldsNoGoroutinePerCredential fills an empty cluster with
// 300 credentials: the term's goroutines stay bounded by
// refresh.concurrency, not by the number of credentials, and never more
// WeChat calls are in flight than refresh.concurrency.
func TestLeaderHoldsNoGoroutinePerCredential(t *testing.T) {
	const n, concurrency = 300, 8
	f := newFixture(t)
	g := &gate{latency: 2 * time.Millisecond}
	r, err := refresher.New(refresher.Config{
		Store: f.store, Cache: f.cache, Fetcher: g, Node: "n1", Creds: manyCreds(n), Concurrency: concurrency,
		Before: 10 * time.Minute, FetchTimeout: 5 * time.Second, WindowMargin: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()
	stop := f.lead(t, r)
	most := 0
	// etcd under the race detector may take 100 ms a write: give the
	// fill (three writes per credential) time.
	for deadline := time.Now().Add(2 * time.Minute); f.cache.Len() < n; time.Sleep(5 * time.Millisecond) {
		most = max(most, runtime.NumGoroutine()-base)
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d credentials published", f.cache.Len(), n)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// A term runs its scheduler, the report watch and its etcd streams,
	// and a goroutine per step in flight.
	if limit := 50 + concurrency; most > limit {
		t.Fatalf("the term ran up to %d goroutines for %d credentials; want at most %d", most, n, limit)
	}
	if p := g.peak.Load(); p > concurrency || p < 2 {
		t.Fatalf("at most %d WeChat calls were in flight at once; want 2..%d (refresh.concurrency)", p, concurrency)
	}
	if c := g.calls.Load(); c != n {
		t.Fatalf("%d WeChat calls for %d credentials", c, n)
	}
	t.Logf("%d credentials: at most %d goroutines above the base, %d calls in flight", n, most, g.peak.Load())
}

// counter counts the unary etcd requests (Range, Txn, Put, ...) a client
// sends.
type counter struct{ n atomic.Int64 }

func (c *counter) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	c.n.Add(1)
	return invoker(ctx, method, req, reply, cc, opts...)
}

// TestTermStartReadsInBulk: a new term over credentials that are all fresh
// reads their state with a few range requests, not one per credential,
// and calls WeChat for none.
func TestTermStartReadsInBulk(t *testing.T) {
	const n = 300
	clus := etcdtest.NewCluster(t, 1)
	var cnt counter
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{clus.Members[0].GRPCURL}, DialTimeout: 5 * time.Second,
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(cnt.intercept)}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	store := tokenstore.New(cli, "/w")
	resp, err := cli.Put(ctx, "/w/election/x", "leader")
	if err != nil {
		t.Fatal(err)
	}
	guard := election.NewGuard("/w/election/x", resp.Header.Revision, time.Now().Add(time.Hour))
	now := time.Now()
	for i, c := range manyCreds(n) {
		snap := tokenstore.Snapshot{Cred: c.Name, Day: tokenstore.Day(now)}
		rev, err := store.BeginFetch(ctx, guard, snap, tokenstore.Intent{Seq: 1, Node: "old", Started: now, Since: now}, 0)
		if err != nil {
			t.Fatal(err)
		}
		rec := tokenstore.Record{Cred: c.Name, Value: fmt.Sprint("v", i), Seq: 1, FetchedAt: now, ExpiresAt: now.Add(2 * time.Hour), RefreshAt: now.Add(time.Hour)}
		if err := store.Publish(ctx, guard, snap, rev, rec); err != nil {
			t.Fatal(err)
		}
	}
	cache := tokenstore.NewCache(tokenstore.CacheConfig{Client: clus.Client(0), Prefix: "/w"})
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = cache.Run(cctx) }()
	defer func() { cancel(); <-done }()

	g := &gate{}
	r, err := refresher.New(refresher.Config{Store: store, Cache: cache, Fetcher: g, Node: "n1", Creds: manyCreds(n),
		Before: 10 * time.Minute, FetchTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheusRegistry(t, r.Metrics())
	before := cnt.n.Load()
	lctx, lcancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- r.Lead(lctx, guard) }()
	// Every credential's first step sets its budget gauge.
	waitFor(t, "every credential looked at", func() bool { return seriesOf(t, reg, "wxtoken_budget_fetches_today") == n })
	reads := cnt.n.Load() - before
	lcancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if reads > 10 {
		t.Fatalf("the term's start over %d credentials sent %d etcd requests; want a few (bulk reads)", n, reads)
	}
	if c := g.calls.Load(); c != 0 {
		t.Fatalf("%d WeChat calls for fresh credentials", c)
	}
	t.Logf("term start over %d credentials: %d etcd requests", n, reads)
}

func prometheusRegistry(t *testing.T, c prometheus.Collector) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	return reg
}

// seriesOf is the number of series of the metric family name.
func seriesOf(t *testing.T, g prometheus.Gatherer, name string) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}
