//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/chaos/checker"
)

// scenario injects TestCompose's faults into a running stack, each one
// just before the leader's next planned refresh so that the refresh has to
// happen under it, and records them. Its methods run on the test goroutine
// and end the test on a failure that leaves the run pointless.
type scenario struct {
	t       *testing.T
	ctx     context.Context
	s       *stack
	rec     *recorder
	logf    func(format string, args ...any)
	planned []plannedRefresh
}

// plannedRefresh is a refresh of the token that was due under a fault.
type plannedRefresh struct {
	fault string
	at    time.Time
}

func (sc *scenario) base(replica string) string { return sc.s.url(replicaPorts[replica]) }

func (sc *scenario) must(err error) {
	sc.t.Helper()
	if err != nil {
		sc.t.Fatal(err)
	}
}

// killLeader kills the leader's process just before it would refresh, the
// way a crash would; the restart policy must bring it back, and another
// replica must take over and refresh.
func (sc *scenario) killLeader() {
	ctx, s := sc.ctx, sc.s
	due, err := sc.beforeRefresh(lead)
	sc.must(err)
	leader, err := sc.leader(replicas)
	sc.must(err)
	id, err := s.container(ctx, leader)
	sc.must(err)
	before, err := s.inspect(ctx, id)
	sc.must(err)
	f := checker.Fault{Kind: "kill-leader", Target: leader + " (leader)", Start: time.Now()}
	sc.planned = append(sc.planned, plannedRefresh{f.Kind, due})
	byPolicy, err := s.crash(ctx, id)
	if err != nil {
		sc.t.Fatalf("kill %s: %v", leader, err)
	}
	f.End = time.Now()
	next, took, err := sc.waitNewLeader(without(replicas, leader), leader)
	if err != nil {
		sc.t.Fatalf("after killing leader %s: %v", leader, err)
	}
	sc.logf("killed leader %s (SIGKILL; restart by policy: %v); %s leads after %v", leader, byPolicy, next, took.Round(100*time.Millisecond))
	if byPolicy {
		err = waitFor(ctx, time.Minute, func() (bool, string) {
			st, err := s.inspect(ctx, id)
			if err != nil {
				return false, err.Error()
			}
			return st.RestartCount > before.RestartCount && st.Running, fmt.Sprintf("restarts %d, running %v", st.RestartCount, st.Running)
		})
		if err != nil {
			sc.t.Fatalf("the restart policy did not restart %s: %v", leader, err)
		}
	} else {
		f.Detail = "docker kill, then docker start: the engine's pids are not this host's"
		_, err := s.docker(ctx, "start", id)
		sc.must(err)
		f.End = time.Now()
	}
	sc.rec.fault(f)
	sc.must(s.waitHealthy(ctx, time.Minute, leader))
	sc.logf("%s is back and healthy", leader)
}

// cutLeader cuts the leader off from etcd (network "back") just before it
// would refresh, until the token it holds may be dead; consumers still
// reach it on "front". It must step down, serve its cache only while that
// is surely valid, and report itself not ready.
func (sc *scenario) cutLeader() {
	ctx, s := sc.ctx, sc.s
	due, err := sc.beforeRefresh(lead)
	sc.must(err)
	cut, err := sc.leader(replicas)
	sc.must(err)
	back, err := s.network(ctx, "back")
	sc.must(err)
	id, err := s.container(ctx, cut)
	sc.must(err)
	f := checker.Fault{Kind: "disconnect-replica", Target: cut + " (leader)", Detail: "docker network disconnect " + back, Start: time.Now()}
	sc.planned = append(sc.planned, plannedRefresh{f.Kind, due})
	_, err = s.docker(ctx, "network", "disconnect", back, id)
	sc.must(err)
	next, took, err := sc.waitNewLeader(without(replicas, cut), cut)
	if err != nil {
		sc.t.Fatalf("after cutting leader %s off: %v", cut, err)
	}
	sc.logf("cut leader %s off from etcd; %s leads after %v", cut, next, took.Round(100*time.Millisecond))
	err = waitFor(ctx, time.Until(due.Add(cutAfter)), func() (bool, string) {
		st, err := sc.status(cut)
		return err == nil && !st.Ready, fmt.Sprintf("%+v %v", st, err)
	})
	if err != nil {
		sc.t.Errorf("%s cut off from etcd still reports ready: %v", cut, err)
	} else {
		sc.logf("%s reports not ready", cut)
	}
	hold(ctx, time.Until(due.Add(cutAfter)))
	_, err = s.docker(ctx, "network", "connect", "--alias", cut, back, id)
	sc.must(err)
	f.End = time.Now()
	sc.rec.fault(f)
	served, refused := sc.rec.count(cut, f.Start, f.End)
	sc.logf("while cut off, %s served %d reads and answered %d without a token", cut, served, refused)
	err = waitFor(ctx, time.Minute, func() (bool, string) {
		st, err := sc.status(cut)
		return err == nil && st.Ready, fmt.Sprintf("%+v %v", st, err)
	})
	if err != nil {
		sc.t.Fatalf("%s not ready after reconnecting: %v", cut, err)
	}
	again := time.Since(f.End)
	sc.logf("reconnected %s: ready again after %v", cut, again.Round(100*time.Millisecond))
	// Its reads count again once the checker's grace is over: a replica
	// that waits on connections the cut left dead, or on a long reconnect
	// backoff, costs reads the checker holds against it.
	if again > checker.DefaultGrace {
		sc.t.Errorf("%s took %v to be ready after reconnecting; want within %v", cut, again.Round(100*time.Millisecond), checker.DefaultGrace)
	}
}

// stopEtcdLeader stops etcd's raft leader just before a refresh; the two
// other members keep a quorum, and every replica must stay ready.
func (sc *scenario) stopEtcdLeader() {
	ctx, s := sc.ctx, sc.s
	due, err := sc.beforeRefresh(lead)
	sc.must(err)
	member, err := s.etcdLeader(ctx, "etcd-1")
	sc.must(err)
	id, err := s.container(ctx, member)
	sc.must(err)
	f := checker.Fault{Kind: "stop-etcd-member", Target: member + " (raft leader)", Detail: "docker stop", Start: time.Now()}
	sc.planned = append(sc.planned, plannedRefresh{f.Kind, due})
	_, err = s.docker(ctx, "stop", "-t", "5", id)
	sc.must(err)
	sc.logf("stopped etcd member %s (raft leader)", member)
	hold(ctx, time.Until(due.Add(etcdAfter)))
	ready := 0
	for _, r := range replicas {
		if st, err := sc.status(r); err == nil && st.Ready {
			ready++
		}
	}
	if ready != len(replicas) {
		sc.t.Errorf("with one etcd member of three down, %d of %d replicas are ready; want all", ready, len(replicas))
	}
	_, err = s.docker(ctx, "start", id)
	sc.must(err)
	f.End = time.Now()
	sc.rec.fault(f)
	sc.must(s.waitHealthy(ctx, time.Minute, member))
	sc.logf("restarted %s: healthy again; %d of %d replicas stayed ready while it was down", member, ready, len(replicas))
}

// checkRefreshes checks that each refresh planned under a fault happened,
// once, by whichever replica led by then.
func (sc *scenario) checkRefreshes(fetches []checker.Fetch) {
	for _, p := range sc.planned {
		var minted []time.Time
		for _, fe := range fetches {
			if fe.Kind == "classic" && fe.Issued && !fe.At.Before(p.at.Add(-time.Second)) && !fe.At.After(p.at.Add(refreshLate)) {
				minted = append(minted, fe.At)
			}
		}
		if len(minted) != 1 {
			sc.t.Errorf("%s: want one token minted within [-1s, +%v] of the refresh planned at %s, got %d", p.fault, refreshLate, clock(p.at), len(minted))
			continue
		}
		sc.logf("%s: the refresh planned at %s happened at %s (%+.1fs)", p.fault, clock(p.at), clock(minted[0]), minted[0].Sub(p.at).Seconds())
	}
}
