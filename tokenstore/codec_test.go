package tokenstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/internal/etcdtest"
	"github.com/wxtoken/wxtoken/seal"
	"github.com/wxtoken/wxtoken/tokenstore"
)

func sealKey(t *testing.T) seal.Key {
	t.Helper()
	for {
		b := make([]byte, seal.KeySize)
		_, _ = rand.Read(b)
		if k, err := seal.ParseKey(b); err == nil {
			return k
		}
	}
}

func sealRing(t *testing.T, keys ...seal.Key) *seal.Ring {
	t.Helper()
	r, err := seal.NewRing(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sealedStore(c *clientv3.Client, prefix string, sl tokenstore.Sealing) *tokenstore.Store {
	s := tokenstore.New(c, prefix)
	s.SetSealing(sl)
	return s
}

func runSealedCache(t *testing.T, c *clientv3.Client, sl tokenstore.Sealing) *tokenstore.Cache {
	t.Helper()
	cache := tokenstore.NewCache(tokenstore.CacheConfig{Client: c, Prefix: "/w", Sealing: sl})
	cctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = cache.Run(cctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-cache.Loaded():
	case <-time.After(10 * time.Second):
		t.Fatal("cache never loaded")
	}
	return cache
}

// publish writes rec the way the leader does: intent, then fenced publish.
func publish(t *testing.T, s *tokenstore.Store, g tokenstore.Fence, rec tokenstore.Record) {
	t.Helper()
	snap, err := s.Load(ctx(t), rec.Cred, tokenstore.Day(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	rev, err := s.BeginFetch(ctx(t), g, snap, tokenstore.Intent{Seq: rec.Seq, Node: "n"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(ctx(t), g, snap, rev, rec); err != nil {
		t.Fatal(err)
	}
}

func record(cred, value string, seq uint64) tokenstore.Record {
	now := time.Now()
	return tokenstore.Record{Cred: cred, Value: value, Seq: seq, Node: "n",
		ExpiresAt: now.Add(2 * time.Hour), RefreshAt: now.Add(time.Hour), FetchedAt: now}
}

// TestSealedKeyspace: with encryption on, records round-trip through etcd,
// and a scan of the whole keyspace finds no credential in the clear.
func TestSealedKeyspace(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	sl := tokenstore.Sealing{Sealer: sealRing(t, sealKey(t))}
	s := sealedStore(c, "/w", sl)
	cache := runSealedCache(t, c, sl)
	g := leaderKey(t, c, "/w/election/a")
	values := map[string]string{"shop/token": "TOKEN-shop-8c1f0e", "shop/jsapi": "TICKET-shop-77aa01", "crm/token": "TOKEN-crm-5e5e5e"}
	for cred, v := range values {
		publish(t, s, g, record(cred, v, 1))
		if _, _, err := s.Report(ctx(t), tokenstore.Report{Cred: cred, Seq: 1, Node: "n", At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutState(ctx(t), g, tokenstore.State{Cred: cred, Node: "n", UpdatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	for cred, v := range values {
		r, err := cache.Wait(ctx(t), cred, 0)
		if err != nil || r.Value != v {
			t.Fatalf("cache %s = %+v, %v; want %s", cred, r, err, v)
		}
		snap, err := s.Load(ctx(t), cred, tokenstore.Day(time.Now()))
		if err != nil || snap.Record == nil || snap.Record.Value != v {
			t.Fatalf("Load %s = %+v, %v; want %s", cred, snap.Record, err, v)
		}
	}
	resp, err := c.Get(ctx(t), "\x00", clientv3.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	creds := 0
	for _, kv := range resp.Kvs {
		for cred, v := range values {
			if bytes.Contains(kv.Value, []byte(v)) || bytes.Contains(kv.Key, []byte(v)) {
				t.Errorf("etcd key %s holds the value of %s in the clear", kv.Key, cred)
			}
		}
		if strings.HasPrefix(string(kv.Key), "/w/cred/") {
			creds++
			if id, ok := seal.KeyID(kv.Value); !ok || kv.Value[0] == '{' {
				t.Errorf("record %s is not sealed (key id %q, %v)", kv.Key, id, ok)
			}
		}
	}
	if creds != len(values) || len(resp.Kvs) < 3*len(values) {
		t.Fatalf("scanned %d keys with %d records; want every record, report and state", len(resp.Kvs), creds)
	}
	if n := cache.OpenFailures(); n != 0 {
		t.Errorf("OpenFailures = %d, want 0", n)
	}
}

// TestForgedRecordsNotServed: with encryption on, a record written to
// etcd by anyone without the key is never served, is counted, and the
// leader's Load refuses it.
func TestForgedRecordsNotServed(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	sl := tokenstore.Sealing{Sealer: sealRing(t, sealKey(t))}
	s := sealedStore(c, "/w", sl)
	cache := runSealedCache(t, c, sl)
	if err := s.PublishUnfenced(ctx(t), record("a/token", "GOOD-a", 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.PublishUnfenced(ctx(t), record("b/token", "GOOD-b", 50)); err != nil {
		t.Fatal(err)
	}
	if _, err := cache.Wait(ctx(t), "a/token", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := cache.Wait(ctx(t), "b/token", 0); err != nil {
		t.Fatal(err)
	}
	key := s.Keys().Cred("a/token")

	plain, _ := json.Marshal(record("a/token", "FORGED-plain", 999))
	otherKey, _ := sealRing(t, sealKey(t)).Seal(mustJSON(t, record("a/token", "FORGED-other-key", 1000)), []byte(key))
	bVal, err := c.Get(ctx(t), s.Keys().Cred("b/token"))
	if err != nil {
		t.Fatal(err)
	}
	// The same credential name under another prefix, sealed with the right
	// key: the record's own check passes, the associated data does not.
	other := sealedStore(c, "/elsewhere", sl)
	if err := other.PublishUnfenced(ctx(t), record("a/token", "FORGED-moved", 2000)); err != nil {
		t.Fatal(err)
	}
	moved, err := c.Get(ctx(t), "/elsewhere/cred/a/token")
	if err != nil {
		t.Fatal(err)
	}
	forgeries := []struct{ name, val string }{
		{"plain JSON", string(plain)},
		{"sealed with another key", string(otherKey)},
		{"another credential's value", string(bVal.Kvs[0].Value)},
		{"the same credential under another prefix", string(moved.Kvs[0].Value)},
		{"garbage", "\x01not-a-record"},
	}
	for i, f := range forgeries {
		t.Run(f.name, func(t *testing.T) {
			if _, err := c.Put(ctx(t), key, f.val); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the forgery counted", func() bool { return cache.OpenFailures() == int64(i+1) })
			if r, _ := cache.Get("a/token"); r.Value != "GOOD-a" || r.Seq != 1 {
				t.Errorf("cache serves %q seq %d after the forgery; want GOOD-a seq 1", r.Value, r.Seq)
			}
			if _, err := s.Load(ctx(t), "a/token", "20260101"); !errors.Is(err, tokenstore.ErrRecordUnreadable) {
				t.Errorf("Load: got %v, want ErrRecordUnreadable", err)
			} else if strings.Contains(err.Error(), "FORGED") || strings.Contains(err.Error(), "GOOD") {
				t.Errorf("Load error shows a value: %v", err)
			}
		})
	}
	// A fresh cache that lists the forgery serves nothing for it.
	fresh := runSealedCache(t, c, sl)
	if r, ok := fresh.Get("a/token"); ok {
		t.Errorf("a fresh cache serves %q seq %d from a forged record", r.Value, r.Seq)
	}
	if fresh.OpenFailures() != 1 {
		t.Errorf("fresh cache OpenFailures = %d, want 1", fresh.OpenFailures())
	}
	// A genuine record still goes through.
	if err := s.PublishUnfenced(ctx(t), record("a/token", "GOOD-a2", 3000)); err != nil {
		t.Fatal(err)
	}
	if r, err := cache.Wait(ctx(t), "a/token", 1); err != nil || r.Value != "GOOD-a2" {
		t.Fatalf("after the forgeries: %+v, %v; want GOOD-a2", r, err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKeyRotation follows README's steps: add the new key after the old
// one, put it first, let every record be rewritten, remove the old key.
func TestKeyRotation(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	old, next := sealKey(t), sealKey(t)
	s1 := sealedStore(c, "/w", tokenstore.Sealing{Sealer: sealRing(t, old)})
	if err := s1.PublishUnfenced(ctx(t), record("a/token", "v1", 1)); err != nil {
		t.Fatal(err)
	}
	sealedWith := func() string {
		resp, err := c.Get(ctx(t), s1.Keys().Cred("a/token"))
		if err != nil || len(resp.Kvs) == 0 {
			t.Fatalf("get record: %v", err)
		}
		id, _ := seal.KeyID(resp.Kvs[0].Value)
		return id
	}
	// Step 1: both keys, old first; step 2: new first. Both open v1.
	for _, ring := range []*seal.Ring{sealRing(t, old, next), sealRing(t, next, old)} {
		cache := runSealedCache(t, c, tokenstore.Sealing{Sealer: ring})
		if r, ok := cache.Get("a/token"); !ok || r.Value != "v1" {
			t.Fatalf("ring sealing with %s: got %+v, %v; want v1", ring.SealingKeyID(), r, ok)
		}
	}
	both := sealRing(t, next, old)
	cache := runSealedCache(t, c, tokenstore.Sealing{Sealer: both})
	s2 := sealedStore(c, "/w", tokenstore.Sealing{Sealer: both})
	if err := s2.PublishUnfenced(ctx(t), record("a/token", "v2", 2)); err != nil {
		t.Fatal(err)
	}
	if r, err := cache.Wait(ctx(t), "a/token", 1); err != nil || r.Value != "v2" {
		t.Fatalf("after the rewrite: %+v, %v; want v2", r, err)
	}
	if got := sealedWith(); got != next.ID() {
		t.Errorf("rewritten record sealed with %s, want the new key %s", got, next.ID())
	}
	// Step 3: the old key removed; the rewritten record opens.
	onlyNew := runSealedCache(t, c, tokenstore.Sealing{Sealer: sealRing(t, next)})
	if r, ok := onlyNew.Get("a/token"); !ok || r.Value != "v2" {
		t.Errorf("with the new key only: %+v, %v; want v2", r, ok)
	}
	// Removing the old key too early would have hidden v1.
	if err := s1.PublishUnfenced(ctx(t), record("b/token", "b1", 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b/token sealed with the old key refused", func() bool { return onlyNew.OpenFailures() == 1 })
	if _, ok := onlyNew.Get("b/token"); ok {
		t.Error("a record sealed with a removed key is served")
	}
}

// TestAcceptPlaintext: turning encryption on in a running cluster, plain
// records are read only while AcceptPlaintext is set; new writes are
// sealed either way.
func TestAcceptPlaintext(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	if err := tokenstore.New(c, "/w").PublishUnfenced(ctx(t), record("a/token", "plain-v1", 1)); err != nil {
		t.Fatal(err)
	}
	ring := sealRing(t, sealKey(t))
	strict := runSealedCache(t, c, tokenstore.Sealing{Sealer: ring})
	if _, ok := strict.Get("a/token"); ok || strict.OpenFailures() != 1 {
		t.Errorf("strict cache: served a plain record (failures %d)", strict.OpenFailures())
	}
	lenient := runSealedCache(t, c, tokenstore.Sealing{Sealer: ring, AcceptPlaintext: true})
	if r, ok := lenient.Get("a/token"); !ok || r.Value != "plain-v1" {
		t.Errorf("lenient cache: got %+v, %v; want plain-v1", r, ok)
	}
	s := sealedStore(c, "/w", tokenstore.Sealing{Sealer: ring, AcceptPlaintext: true})
	snap, err := s.Load(ctx(t), "a/token", "20260101")
	if err != nil || snap.Seq() != 1 {
		t.Fatalf("lenient Load = %+v, %v", snap, err)
	}
	if err := s.PublishUnfenced(ctx(t), record("a/token", "sealed-v2", 2)); err != nil {
		t.Fatal(err)
	}
	if r, err := strict.Wait(ctx(t), "a/token", 1); err != nil || r.Value != "sealed-v2" {
		t.Errorf("strict cache after the rewrite: %+v, %v; want sealed-v2", r, err)
	}
}
