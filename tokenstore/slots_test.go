package tokenstore

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// TestSlotTableConcurrent: while credentials are inserted, every one a
// reader was told about is found, by Get and by Records, whether it waits
// in the dirty map or was promoted.
func TestSlotTableConcurrent(t *testing.T) {
	c := NewCache(CacheConfig{Prefix: "/w"})
	const n = 20000
	inserted := make(chan string, n)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for cred := range inserted {
				if r, ok := c.Get(cred); !ok || r.Cred != cred {
					t.Errorf("Get(%s) = %+v, %v after its insert", cred, r, ok)
					return
				}
			}
		}()
	}
	for i := range n {
		cred := fmt.Sprintf("app%05d/token", i)
		c.apply(&Record{Cred: cred, Seq: 1}, i%3 == 0) // some bulk, left in dirty
		inserted <- cred
	}
	close(inserted)
	wg.Wait()
	if got := len(c.Records()); got != n || c.Len() != n {
		t.Errorf("Records %d, Len %d; want %d", got, c.Len(), n)
	}
	c.slots.flush()
	if got := len(*c.slots.read.Load()); got != n {
		t.Errorf("after flush, read holds %d; want %d", got, n)
	}
}

// TestSlotTableInsertIsLinear: inserting n credentials one by one copies
// O(n) map entries in all, not O(n²) as a copy per insert did.
func TestSlotTableInsertIsLinear(t *testing.T) {
	tab := newSlotTable()
	const n = 100000
	copied := 0
	last := tab.read.Load()
	for i := range n {
		tab.insert(fmt.Sprintf("app%06d/token", i), true)
		if m := tab.read.Load(); m != last {
			copied += len(*m)
			last = m
		}
	}
	tab.flush()
	if copied > 6*n {
		t.Errorf("%d inserts copied %d map entries; want at most %d", n, copied, 6*n)
	}
}

// TestSlotTableMissesPromote: a credential left in the dirty map moves to
// the lock-free map once lookups paid for the copy.
func TestSlotTableMissesPromote(t *testing.T) {
	tab := newSlotTable()
	for i := range 100 {
		tab.insert(fmt.Sprint("a", i), false)
	}
	tab.flush()
	tab.insert("late", false)
	for range 101 {
		if tab.get("late") == nil {
			t.Fatal("late not found")
		}
	}
	if (*tab.read.Load())["late"] == nil {
		t.Error("after 101 lookups through the mutex, late is still in the dirty map")
	}
}

func TestCacheGetAllocates(t *testing.T) {
	c := benchCache(t, 1000)
	if a := testing.AllocsPerRun(1000, func() { _, _ = c.Get("app000500/token") }); a != 0 {
		t.Errorf("Get allocates %v times; want 0", a)
	}
	if a := testing.AllocsPerRun(1000, func() { _, _ = c.Get("nothing/token") }); a != 0 {
		t.Errorf("Get of a missing credential allocates %v times; want 0", a)
	}
}

// benchKVs returns n records as the etcd key-values a listing returns: a
// 150-character token, one node name, times as a leader writes them.
func benchKVs(tb testing.TB, n int) []*mvccpb.KeyValue {
	tb.Helper()
	codec := newRecordCodec(Keys{Prefix: "/w"}, Sealing{})
	now := time.Now()
	kvs := make([]*mvccpb.KeyValue, n)
	for i := range kvs {
		cred := fmt.Sprintf("app%06d/token", i)
		r := Record{Cred: cred, Value: strings.Repeat("x", 140) + fmt.Sprintf("%010d", i), Seq: 42, Node: "replica-1",
			ExpiresAt: now.Add(2 * time.Hour), RefreshAt: now.Add(110 * time.Minute), FetchedAt: now, PublishedAt: now}
		val, err := codec.encodeRecord("/w/cred/"+cred, r)
		if err != nil {
			tb.Fatal(err)
		}
		kvs[i] = &mvccpb.KeyValue{Key: []byte("/w/cred/" + cred), Value: []byte(val), ModRevision: int64(i + 1)}
	}
	return kvs
}

func benchCache(tb testing.TB, n int) *Cache {
	tb.Helper()
	c := NewCache(CacheConfig{Prefix: "/w"})
	c.applyList(benchKVs(tb, n))
	c.slots.flush()
	return c
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestCacheMemoryPerRecord bounds what one cached credential costs: the
// decoded record, its strings and its slot. Run with -v for the figure.
func TestCacheMemoryPerRecord(t *testing.T) {
	const n = 100000
	kvs := benchKVs(t, n)
	before := heapInUse()
	c := NewCache(CacheConfig{Prefix: "/w"})
	start := time.Now()
	for i := 0; i < n; i += DefaultListPage {
		c.applyList(kvs[i:min(i+DefaultListPage, n)])
	}
	c.slots.flush()
	took := time.Since(start)
	after := heapInUse()
	runtime.KeepAlive(kvs) // counted in before and after alike
	per := float64(after-before) / n
	t.Logf("%d records: %.0f bytes per cached record (heap), decode and apply %v (%v per record)", n, per, took.Round(time.Millisecond), took/n)
	if c.Len() != n {
		t.Fatalf("Len %d, want %d", c.Len(), n)
	}
	if per > 1024 {
		t.Errorf("%.0f bytes per cached record; want at most 1 KiB", per)
	}
	runtime.KeepAlive(c)
}

func BenchmarkCacheGet(b *testing.B) {
	c := benchCache(b, 100000)
	key := fmt.Sprintf("app%06d/token", 4242)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := c.Get(key); !ok {
				b.Fatal("missing")
			}
		}
	})
}

func BenchmarkCacheApply(b *testing.B) {
	c := benchCache(b, 100000)
	b.ReportAllocs()
	seq := uint64(42)
	for b.Loop() {
		seq++
		c.apply(&Record{Cred: "app004242/token", Seq: seq}, false)
	}
}

// BenchmarkCacheInsert adds new credentials one by one, as a watch does.
func BenchmarkCacheInsert(b *testing.B) {
	c := benchCache(b, 100000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		c.apply(&Record{Cred: fmt.Sprintf("new%08d/token", i), Seq: 1}, false)
	}
}

// BenchmarkCacheListApply decodes and applies a listing of 100,000
// records in pages, as a cold start does (etcd's reply aside).
func BenchmarkCacheListApply(b *testing.B) {
	kvs := benchKVs(b, 100000)
	b.ReportAllocs()
	for b.Loop() {
		c := NewCache(CacheConfig{Prefix: "/w"})
		for i := 0; i < len(kvs); i += DefaultListPage {
			c.applyList(kvs[i:min(i+DefaultListPage, len(kvs))])
		}
		c.slots.flush()
	}
}
