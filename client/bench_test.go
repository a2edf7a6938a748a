package client

import (
	"context"
	"testing"
)

// BenchmarkTokenCached measures the fresh path: a token served from the
// local cache, with no request and no allocation.
func BenchmarkTokenCached(b *testing.B) {
	f := &fakeReplica{seq: 1, keep: 3600}
	f.srv = newFakeReplicaServer(f)
	defer f.srv.Close()
	c, err := New(Config{BaseURL: f.srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Token(ctx, "shop"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Token(ctx, "shop"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Token(ctx, "shop"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	if n := f.gets.Load(); n != 1 {
		b.Errorf("requests: got %d, want 1", n)
	}
}
