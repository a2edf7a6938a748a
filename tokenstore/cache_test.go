package tokenstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/internal/etcdtest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// putRecords writes n plain records "app<i>/token" under /w, 100 to a
// transaction.
func putRecords(t testing.TB, c *clientv3.Client, n int) {
	t.Helper()
	keys := tokenstore.Keys{Prefix: "/w"}
	now := time.Now()
	var ops []clientv3.Op
	flush := func() {
		if _, err := c.Txn(context.Background()).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
		ops = ops[:0]
	}
	for i := range n {
		cred := fmt.Sprintf("app%06d/token", i)
		r := fmt.Sprintf(`{"cred":%q,"value":"v%0140d","seq":1,"node":"replica-1","expires_at":%q,"fetched_at":%q}`,
			cred, i, now.Add(2*time.Hour).Format(time.RFC3339Nano), now.Format(time.RFC3339Nano))
		ops = append(ops, clientv3.OpPut(keys.Cred(cred), r))
		if len(ops) == 100 {
			flush()
		}
	}
	if len(ops) > 0 {
		flush()
	}
}

// probeCost runs a cache over n records on a client whose gRPC calls are
// counted, and returns what one readiness probe costs once the cache is
// synced: requests and reply bytes per probe, and how many of the probes'
// range reads covered more than one key.
func probeCost(t *testing.T, n int) (perProbe etcdtest.Count, ranged int64) {
	t.Helper()
	clus := etcdtest.NewCluster(t, 1)
	began := time.Now()
	putRecords(t, clus.Client(0), n)
	t.Logf("put %d records in %v", n, time.Since(began))
	// The key the probe reads: a leader's last heartbeat (a live leader's
	// would add the watch's traffic to the count).
	s := tokenstore.New(clus.Client(0), "/w")
	if _, err := s.Beat(ctx(t), leaderKey(t, clus.Client(0), s.Keys().Election()+"/a"), tokenstore.Beat{Node: "replica-1", At: time.Now()}); err != nil {
		t.Fatal(err)
	}

	const rangeMethod = "/etcdserverpb.KV/Range"
	var measuring atomic.Bool
	var ranges atomic.Int64
	cnt := &etcdtest.Counter{Observe: func(method string, req any) {
		if r, ok := req.(*pb.RangeRequest); ok && measuring.Load() && method == rangeMethod && len(r.RangeEnd) > 0 {
			ranges.Add(1)
		}
	}}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{clus.Members[0].GRPCURL}, DialTimeout: 5 * time.Second, DialOptions: cnt.DialOptions()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cache := runCacheCfg(t, tokenstore.CacheConfig{Client: c, Prefix: "/w", ProbeInterval: 200 * time.Millisecond})
	if cache.Len() != n {
		t.Fatalf("cache holds %d records, want %d", cache.Len(), n)
	}
	waitFor(t, "synced", cache.Synced)
	// The probe after the one that made it synced starts the window.
	first := cnt.Method(rangeMethod).Requests
	waitFor(t, "a probe", func() bool { return cnt.Method(rangeMethod).Requests > first })
	measuring.Store(true)
	start, probes0 := cnt.Total(), cnt.Method(rangeMethod).Requests
	const probes = 10
	waitFor(t, "10 probes", func() bool { return cnt.Method(rangeMethod).Requests >= probes0+probes })
	d := cnt.Total().Sub(start)
	got := cnt.Method(rangeMethod).Requests - probes0
	if !cache.Synced() {
		t.Fatal("cache not synced after the probes")
	}
	return etcdtest.Count{Requests: d.Requests / got, Bytes: d.Bytes / got}, ranges.Load()
}

// TestProbeCostIsConstant: the readiness probe costs the same requests and
// reply bytes at 10 and at 20,000 credentials, and it reads one key (the
// leader's heartbeat), not a range (a count over every record costs etcd a
// scan of them all).
func TestProbeCostIsConstant(t *testing.T) {
	var small, big etcdtest.Count
	var smallRanged, bigRanged int64
	t.Run("10", func(t *testing.T) { small, smallRanged = probeCost(t, 10) })
	t.Run("20000", func(t *testing.T) { big, bigRanged = probeCost(t, 20000) })
	t.Logf("per probe: 10 credentials %+v, 20,000 credentials %+v", small, big)
	if small.Requests != 1 || big.Requests != 1 {
		t.Errorf("requests per probe: %d at 10 credentials, %d at 20,000; want 1 and 1", small.Requests, big.Requests)
	}
	// The reply header's revision is a varint: a byte or two more at a
	// higher revision, nothing per credential.
	if big.Bytes > small.Bytes+4 {
		t.Errorf("reply bytes per probe: %d at 10 credentials, %d at 20,000; want no growth", small.Bytes, big.Bytes)
	}
	if smallRanged+bigRanged != 0 {
		t.Errorf("%d probes read a key range; want each to read one key", smallRanged+bigRanged)
	}
}

func runCacheCfg(t *testing.T, cfg tokenstore.CacheConfig) *tokenstore.Cache {
	t.Helper()
	cache := tokenstore.NewCache(cfg)
	cctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = cache.Run(cctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-cache.Loaded():
	case <-time.After(30 * time.Second):
		t.Fatal("cache never loaded")
	}
	return cache
}

// TestCacheApps: a cache limited to some apps lists and watches only their
// records and intents ("ab" is not "a"), and is synced like any other;
// with more than MaxAppWatches apps, it follows everything and drops the
// others on arrival.
func TestCacheApps(t *testing.T) {
	many := []string{"b", "a"}
	for i := range tokenstore.MaxAppWatches {
		many = append(many, fmt.Sprintf("other%d", i))
	}
	for _, apps := range [][]string{{"b", "a", "a"}, many} {
		t.Run(fmt.Sprint(len(apps)), func(t *testing.T) { testCacheApps(t, apps) })
	}
}

func testCacheApps(t *testing.T, apps []string) {
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	for _, cred := range []string{"a/token", "a/jsapi", "ab/token", "b/token", "c/token"} {
		putRecord(t, c, tokenstore.Record{Cred: cred, Value: "v1", Seq: 1})
	}
	cache := runCacheCfg(t, tokenstore.CacheConfig{Client: c, Prefix: "/w", Apps: apps, ProbeInterval: 100 * time.Millisecond, ListPage: 1})
	waitFor(t, "synced", cache.Synced)
	if cache.Len() != 3 {
		t.Errorf("cache holds %d records, want 3 (a/token, a/jsapi, b/token)", cache.Len())
	}
	for _, cred := range []string{"ab/token", "c/token"} {
		if _, ok := cache.Get(cred); ok {
			t.Errorf("cache holds %s, of an app not its own", cred)
		}
	}
	keys := tokenstore.Keys{Prefix: "/w"}
	for _, cred := range []string{"c/token", "ab/token", "b/token"} {
		if _, err := c.Put(ctx(t), keys.Intent(cred), `{"seq":2,"node":"n"}`); err != nil {
			t.Fatal(err)
		}
		putRecord(t, c, tokenstore.Record{Cred: cred, Value: "v3", Seq: 3})
	}
	if r, err := cache.Wait(ctx(t), "b/token", 2); err != nil || r.Value != "v3" {
		t.Fatalf("Wait b/token = %+v, %v; want v3", r, err)
	}
	if cache.Len() != 3 {
		t.Errorf("after the watch, the cache holds %d records, want 3", cache.Len())
	}
	// An intent of b's, written before b's record, has arrived too; its
	// seq is below the record's, so it no longer counts. One of b's with
	// a seq above it does; c's, written just before, never arrives.
	if _, err := c.Put(ctx(t), keys.Intent("c/token"), `{"seq":4,"node":"n"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx(t), keys.Intent("b/token"), `{"seq":4,"node":"n"}`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b's intent", func() bool { _, ok := cache.Intent("b/token"); return ok })
	if _, ok := cache.Intent("c/token"); ok {
		t.Error("cache follows the intent of c, not one of its apps")
	}
	if _, ok := cache.Intent("ab/token"); ok {
		t.Error("cache follows the intent of ab, not one of its apps")
	}
}

// TestCacheListsInPages: a cold start reads a few records per request
// and caches them all, at one revision.
func TestCacheListsInPages(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	putRecords(t, clus.Client(0), 250)
	cache := runCacheCfg(t, tokenstore.CacheConfig{Client: clus.Client(0), Prefix: "/w", ListPage: 7})
	if cache.Len() != 250 || len(cache.Records()) != 250 {
		t.Fatalf("Len %d, Records %d; want 250", cache.Len(), len(cache.Records()))
	}
	for i := range 250 {
		if _, ok := cache.Get(fmt.Sprintf("app%06d/token", i)); !ok {
			t.Fatalf("app%06d/token missing", i)
		}
	}
}

// BenchmarkCacheColdStart lists and applies 100,000 records from a real
// etcd (in-process, one member): a replica's start up to Loaded.
func BenchmarkCacheColdStart(b *testing.B) {
	clus := etcdtest.NewCluster(b, 1)
	c := clus.Client(0)
	const n = 100000
	putRecords(b, c, n)
	for b.Loop() {
		cache := tokenstore.NewCache(tokenstore.CacheConfig{Client: c, Prefix: "/w"})
		cctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = cache.Run(cctx) }()
		<-cache.Loaded()
		if cache.Len() != n {
			b.Fatalf("Len %d, want %d", cache.Len(), n)
		}
		cancel()
		<-done
	}
}
