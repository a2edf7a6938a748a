package tokenstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wxtoken/wxtoken/internal/etcdtest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// tap sits in a test client's gRPC calls. mute makes the watch streams
// open now stay open and deliver nothing, as a watch behind etcd's gRPC
// proxy does once the proxy's merged watch died; hold makes new watch
// streams fail (as unavailable: the client retries them) while set. It
// counts the readiness probes (reads of the beat key).
type tap struct {
	beat   string
	gen    atomic.Int64 // generation of streams opened now
	muted  atomic.Int64 // streams of a lower generation deliver nothing
	hold   atomic.Bool
	probes atomic.Int64
}

func (tp *tap) mute() { tp.muted.Store(tp.gen.Add(1)) }

// client is an etcd client on url whose calls go through tp.
func (tp *tap) client(t *testing.T, url string) *clientv3.Client {
	t.Helper()
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if r, ok := req.(*pb.RangeRequest); ok && string(r.Key) == tp.beat && r.KeysOnly {
			tp.probes.Add(1)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if method != "/etcdserverpb.Watch/Watch" {
			return streamer(ctx, desc, cc, method, opts...)
		}
		if tp.hold.Load() {
			return nil, status.Error(codes.Unavailable, "test: watch streams held back")
		}
		s, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			return nil, err
		}
		return &tappedStream{ClientStream: s, tp: tp, gen: tp.gen.Load()}, nil
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second,
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(unary), grpc.WithChainStreamInterceptor(stream)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type tappedStream struct {
	grpc.ClientStream
	tp  *tap
	gen int64
}

// RecvMsg drops every message of a muted stream.
func (s *tappedStream) RecvMsg(m any) error {
	for {
		if err := s.ClientStream.RecvMsg(m); err != nil || s.gen >= s.tp.muted.Load() {
			return err
		}
	}
}

// beatEvery writes the heartbeat fenced by g every interval, as a leader
// does, until the test ends, and returns the count of beats written.
func beatEvery(t *testing.T, s *tokenstore.Store, g tokenstore.Fence, every time.Duration) *atomic.Int64 {
	var n atomic.Int64
	bctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			if _, err := s.Beat(bctx, g, tokenstore.Beat{Node: "leader", At: time.Now()}); err == nil {
				n.Add(1)
			}
			select {
			case <-bctx.Done():
				return
			case <-tk.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return &n
}

// TestCacheNoticesStoppedWatch: a cache whose watch stops delivering
// without an error (what a cache behind etcd's gRPC proxy saw after a
// member restart with auth on) turns not synced within two probes of the
// leader's heartbeat, opens its watches again on a new stream, gets the
// record it missed and is synced again. With the watch live and a beat
// every probe interval (each one may be in flight at a probe), it never
// stalls. The same holds for a cache that follows only its apps (a
// sidecar's: one watch per app), which watches the beat all the same.
func TestCacheNoticesStoppedWatch(t *testing.T) {
	for _, apps := range [][]string{nil, {"a"}} {
		t.Run(fmt.Sprint(apps), func(t *testing.T) { testCacheNoticesStoppedWatch(t, apps) })
	}
}

func testCacheNoticesStoppedWatch(t *testing.T, apps []string) {
	const probe = 100 * time.Millisecond
	clus := etcdtest.NewCluster(t, 1)
	keys := tokenstore.Keys{Prefix: "/w"}
	tp := &tap{beat: keys.Beat()}
	putRecord(t, clus.Client(0), tokenstore.Record{Cred: "a/token", Value: "v1", Seq: 1})
	cache := runCacheCfg(t, tokenstore.CacheConfig{Client: tp.client(t, clus.Members[0].GRPCURL), Prefix: "/w", Apps: apps, ProbeInterval: probe})
	waitFor(t, "synced", cache.Synced)
	beats := beatEvery(t, tokenstore.New(clus.Client(0), "/w"), leaderKey(t, clus.Client(0), keys.Election()+"/a"), probe)
	waitBeats := func(n int64) {
		from := beats.Load()
		waitFor(t, "beats", func() bool { return beats.Load() >= from+n })
	}

	waitBeats(15)
	if n := cache.Stalls(); n != 0 || !cache.Synced() {
		t.Fatalf("live watch, 15 beats: %d stalls, synced %v; want 0, true", n, cache.Synced())
	}

	tp.hold.Store(true) // so that the not-synced state lasts until we look
	tp.mute()
	putRecord(t, clus.Client(0), tokenstore.Record{Cred: "a/token", Value: "v2", Seq: 2})
	began := time.Now()
	waitFor(t, "not synced once the watch stopped", func() bool { return !cache.Synced() })
	t.Logf("not synced %v after the watch stopped (probe interval %v)", time.Since(began).Round(time.Millisecond), probe)
	if n := cache.Stalls(); n != 1 {
		t.Errorf("stalls %d, want 1", n)
	}
	tp.hold.Store(false)
	if r, err := cache.Wait(ctx(t), "a/token", 1); err != nil || r.Value != "v2" {
		t.Fatalf("after the watch was opened again: %+v, %v; want v2", r, err)
	}
	waitFor(t, "synced again", cache.Synced)
	waitBeats(15)
	if n := cache.Stalls(); n != 1 || !cache.Synced() {
		t.Errorf("15 beats after it was opened again: %d stalls, synced %v; want 1, true", n, cache.Synced())
	}
	putRecord(t, clus.Client(0), tokenstore.Record{Cred: "a/token", Value: "v3", Seq: 3})
	if r, err := cache.Wait(ctx(t), "a/token", 2); err != nil || r.Value != "v3" {
		t.Fatalf("the watch opened again: %+v, %v; want v3", r, err)
	}
}

// TestCacheStallNeedsABeat: with no leader, a stopped watch cannot be told
// from a quiet one, and the cache stays synced: no beat key at all, or a
// beat that no longer changes (the last of a past term), makes no replica
// unready.
func TestCacheStallNeedsABeat(t *testing.T) {
	for _, tc := range []struct {
		name    string
		oldBeat bool
	}{{"no beat", false}, {"old beat", true}} {
		t.Run(tc.name, func(t *testing.T) {
			clus := etcdtest.NewCluster(t, 1)
			keys := tokenstore.Keys{Prefix: "/w"}
			if tc.oldBeat {
				s := tokenstore.New(clus.Client(0), "/w")
				if _, err := s.Beat(ctx(t), leaderKey(t, clus.Client(0), keys.Election()+"/a"), tokenstore.Beat{Node: "gone"}); err != nil {
					t.Fatal(err)
				}
			}
			tp := &tap{beat: keys.Beat()}
			cache := runCache(t, tp.client(t, clus.Members[0].GRPCURL), 50*time.Millisecond)
			waitFor(t, "synced", cache.Synced)
			tp.mute()
			from := tp.probes.Load()
			waitFor(t, "20 probes", func() bool { return tp.probes.Load() >= from+20 })
			if n := cache.Stalls(); n != 0 || !cache.Synced() {
				t.Errorf("20 probes: %d stalls, synced %v; want 0, true", n, cache.Synced())
			}
		})
	}
}
