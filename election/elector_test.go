package election_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/election"
	"github.com/wxtoken/wxtoken/internal/etcdtest"
)

func newElector(t *testing.T, c *clientv3.Client, node string) *election.Elector {
	t.Helper()
	e, err := election.New(election.Config{Client: c, Prefix: "/test/election", Node: node, TTL: 2 * time.Second, Retry: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// term is one observed term of leadership.
type term struct {
	node  string
	guard *election.Guard
	ctx   context.Context
	ended chan time.Time // when the lead function saw its context end
}

// runElector runs e in the background, sending each term's start on terms;
// the lead function blocks until its context ends.
func runElector(t *testing.T, e *election.Elector, node string, terms chan<- term) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Run(ctx, func(lctx context.Context, g *election.Guard) error {
			ended := make(chan time.Time, 1)
			terms <- term{node: node, guard: g, ctx: lctx, ended: ended}
			<-lctx.Done()
			ended <- time.Now()
			return nil
		})
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func waitTerm(t *testing.T, terms <-chan term, d time.Duration) term {
	t.Helper()
	select {
	case tm := <-terms:
		return tm
	case <-time.After(d):
		t.Fatalf("no leader within %v", d)
		return term{}
	}
}

func fencedPut(c *clientv3.Client, g *election.Guard, key, val string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := c.Txn(ctx).If(g.Cmp()).Then(clientv3.OpPut(key, val)).Commit()
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}

func TestOneLeaderAtATimeAndResignOnStop(t *testing.T) {
	clus := etcdtest.NewCluster(t, 3)
	terms := make(chan term, 10)
	stops := map[string]func(){}
	for i, n := range []string{"a", "b", "c"} {
		stops[n] = runElector(t, newElector(t, clus.Client(i), n), n, terms)
	}
	first := waitTerm(t, terms, 10*time.Second)
	if !first.guard.Held() {
		t.Fatalf("new leader %s: Held() = false", first.node)
	}
	if ok, err := fencedPut(clus.Client(0), first.guard, "/test/x", "1"); err != nil || !ok {
		t.Fatalf("fenced put by the leader: ok=%v err=%v, want ok", ok, err)
	}
	select {
	case other := <-terms:
		t.Fatalf("second leader %s while %s leads", other.node, first.node)
	default:
	}
	leader, err := election.Leader(context.Background(), clus.Client(1), "/test/election")
	if err != nil || leader != first.node {
		t.Fatalf("Leader() = %q, %v; want %q", leader, err, first.node)
	}

	start := time.Now()
	stops[first.node]() // graceful: resigns
	if first.ctx.Err() == nil {
		t.Fatal("stopped leader's context still live")
	}
	second := waitTerm(t, terms, 5*time.Second)
	if second.node == first.node {
		t.Fatalf("stopped node %s leads again", first.node)
	}
	t.Logf("graceful failover %s -> %s in %v", first.node, second.node, time.Since(start))
	if ok, _ := fencedPut(clus.Client(0), first.guard, "/test/x", "stale"); ok {
		t.Fatal("fenced put with the resigned leader's guard succeeded")
	}
}

func TestPartitionedLeaderLosesLeadershipAndIsFenced(t *testing.T) {
	clus := etcdtest.NewCluster(t, 3)
	terms := make(chan term, 10)
	for i, n := range []string{"a", "b", "c"} {
		runElector(t, newElector(t, clus.Client(i), n), n, terms)
	}
	first := waitTerm(t, terms, 10*time.Second)
	idx := map[string]int{"a": 0, "b": 1, "c": 2}[first.node]

	// Cut the leader's client off its member: keepalives stop arriving.
	clus.Members[idx].Bridge().Blackhole()
	defer clus.Members[idx].Bridge().Unblackhole()
	start := time.Now()
	select {
	case <-first.ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("partitioned leader's context not cancelled")
	}
	lost := time.Since(start)
	if first.guard.Held() {
		t.Fatal("partitioned leader's guard still Held")
	}
	// The term ends on the leader's own clock, at its newest keepalive plus
	// the TTL less the margin, not later when the session notices that the
	// lease is gone (a TTL after the keepalive, and then some).
	if ended := <-first.ended; ended.After(first.guard.Deadline().Add(200 * time.Millisecond)) {
		t.Errorf("term ended %v after the keepalive deadline (TTL less margin), want at it", ended.Sub(first.guard.Deadline()))
	}
	second := waitTerm(t, terms, 10*time.Second)
	if second.node == first.node {
		t.Fatalf("partitioned node %s leads again", first.node)
	}
	t.Logf("leader %s lost its term after %v; %s took over after %v", first.node, lost, second.node, time.Since(start))
	// The new leader's term cannot begin before the old lease expired on
	// the server, and the old leader's own deadline ends its term first.
	if ok, err := fencedPut(clus.Client((idx+1)%3), first.guard, "/test/x", "late"); err != nil || ok {
		t.Fatalf("late fenced put of the old leader: ok=%v err=%v; want refused", ok, err)
	}
	if ok, err := fencedPut(clus.Client((idx+1)%3), second.guard, "/test/x", "new"); err != nil || !ok {
		t.Fatalf("fenced put of the new leader: ok=%v err=%v; want ok", ok, err)
	}
}

func TestHoldoffStepsDownAndLetsOthersLead(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	refused := errors.New("refused")
	aTerms := make(chan struct{}, 10)
	ea := newElector(t, clus.Client(0), "a")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = ea.Run(ctx, func(lctx context.Context, g *election.Guard) error {
			aTerms <- struct{}{}
			return election.Holdoff(time.Hour, refused)
		})
	}()
	select {
	case <-aTerms:
	case <-time.After(10 * time.Second):
		t.Fatal("a never led")
	}
	terms := make(chan term, 10)
	runElector(t, newElector(t, clus.Client(0), "b"), "b", terms)
	if tm := waitTerm(t, terms, 5*time.Second); tm.node != "b" {
		t.Fatalf("leader %s, want b", tm.node)
	}
	select {
	case <-aTerms:
		t.Fatal("a campaigned again during its holdoff")
	default:
	}
}

func TestNewValidatesConfig(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	for _, tc := range []struct {
		name string
		cfg  election.Config
	}{
		{"no client", election.Config{Prefix: "/p", Node: "n"}},
		{"no prefix", election.Config{Client: clus.Client(0), Node: "n"}},
		{"ttl too short", election.Config{Client: clus.Client(0), Prefix: "/p", Node: "n", TTL: time.Second}},
		{"margin above ttl", election.Config{Client: clus.Client(0), Prefix: "/p", Node: "n", TTL: 2 * time.Second, Margin: 3 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := election.New(tc.cfg); err == nil {
				t.Fatal("New: got nil error")
			}
		})
	}
}
