package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// termStart replaces the leader after the refresh cycle, in the lull
// before the next refreshes fall due, and times the new leader's term
// start: from exec until it is idle, having looked at every authorizer
// once. A term reads the configured credentials in bulk; authorizers are
// created at run time and each one's first step reads it alone.
func (p *platformRun) termStart(ctx context.Context, r *Report) error {
	room := time.Until(p.track.earliestRefresh())
	if room < 20*time.Second {
		r.note("Section 8: the term start of a new leader was not measured: the next refreshes fell due %.0f s after the cycle ended.", room.Seconds())
		return nil
	}
	p.leader.stop(30 * time.Second)
	p.leader = nil
	u0, err := unaryByMethod()
	if err != nil {
		return err
	}
	calls0 := len(p.sim.Ledger())
	pc := p.pc
	pc.Node = "platform-leader-2"
	fmt.Fprintf(os.Stderr, "bench: platform: a new leader over %d authorizers (%.0f s before the next refreshes)\n", p.n, room.Seconds())
	t0 := time.Now()
	if p.leader, err = p.e.startNode(ctx, pc); err != nil {
		return err
	}
	keys := tokenstore.Keys{Prefix: platformPrefix}
	if err := waitUntil(ctx, time.Minute, 20*time.Millisecond, "a new leader", func() bool {
		return countKeys(ctx, p.cli, keys.Election()) > 0
	}); err != nil {
		return err
	}
	elected := time.Since(t0)
	settled, err := waitIdle(ctx, p.leader.proc, room-time.Since(t0))
	if err != nil {
		r.note("Section 8: the new leader was still busy when the next refreshes fell due, %.0f s after its exec: its term start was not timed.", room.Seconds())
		return nil
	}
	u1, err := unaryByMethod()
	if err != nil {
		return err
	}
	rss, peak, err := p.leader.memory()
	if err != nil {
		return err
	}
	calls := len(p.sim.Ledger()) - calls0
	reqs, byMethod := perMethod(u0, u1, p.n)
	// waitIdle returns after a full second below 5% of a CPU.
	took := settled.Sub(t0) - time.Second
	r.add(platformSec, fmt.Sprintf("Term start of a new leader over %d authorizers (exec until idle)", p.n), took.Seconds(), "s",
		fmt.Sprintf("leading %.2f s after exec; %d WeChat calls meanwhile", elected.Seconds(), calls))
	r.add(platformSec, "etcd requests per authorizer at that term start", reqs, "requests",
		fmt.Sprintf("unary requests counted at the etcd members from the old leader's exit until the new one was idle: %s", byMethod))
	r.add(platformSec, fmt.Sprintf("Resident memory (RSS) of that new leader with %d authorizers", p.n), rss, "MB", fmt.Sprintf("peak %.0f MB", peak))
	return nil
}
