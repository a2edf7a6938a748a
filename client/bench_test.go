package client

import (
	"context"
	"fmt"
	"testing"
	"time"
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

// BenchmarkAuthorizerTokenCached measures the fresh path of an
// authorizer's token (and of a component token), which must be as cheap
// as an app's: a lookup by platform and appid, no request, no allocation.
// "among-10000" reads one of 10,000 cached authorizers.
func BenchmarkAuthorizerTokenCached(b *testing.B) {
	f := newFakeAPI(b, "saas")
	c, err := New(Config{BaseURL: f.srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.AuthorizerToken(ctx, "saas", "wxauth01"); err != nil {
		b.Fatal(err)
	}
	if _, err := c.ComponentToken(ctx, "saas"); err != nil {
		b.Fatal(err)
	}
	read := func(b *testing.B, appid string) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.AuthorizerToken(ctx, "saas", appid); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("serial", func(b *testing.B) { read(b, "wxauth01") })
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.AuthorizerToken(ctx, "saas", "wxauth01"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("component", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.ComponentToken(ctx, "saas"); err != nil {
				b.Fatal(err)
			}
		}
	})
	// 10,000 more authorizers, cached straight into their slots (10,000
	// requests would only slow the setup) and read until the lock-free
	// index has them.
	for i := range 10000 {
		k := key{kind: kindAuthorizer, platform: "saas", name: fmt.Sprintf("wxauth%010d", i)}
		s := c.slot(k)
		s.mu.Lock()
		c.store(s, Token{App: "saas", Kind: "authorizer", AccessToken: "t", ExpiresIn: 3600, Seq: 1, AuthorizerAppID: k.name}, time.Now())
		s.mu.Unlock()
	}
	for i := 0; c.slots.Load().n < 10002; i = (i + 1) % 10000 {
		c.slot(key{kind: kindAuthorizer, platform: "saas", name: fmt.Sprintf("wxauth%010d", i)})
	}
	b.Run("among-10000", func(b *testing.B) { read(b, "wxauth0000004242") })
	if gets, _ := f.requests("authorizer/saas/wxauth01"); gets != 1 {
		b.Errorf("requests: got %d, want 1", gets)
	}
}
