package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/wxtoken/wxtoken/fetcher/wechattest"
)

// platformSec is the section's number in the table.
const platformSec = "8"

// fillResult is what the refresh cycle needs from the fill.
type fillResult struct {
	start, end time.Time // the first authorization; every authorizer served
}

// fill authorizes every authorizer and waits until each one's token is
// served: pushed to the leader's event URL, its code stored, exchanged by
// the leader and its record in the cache.
func (p *platformRun) fill(ctx context.Context, r *Report) (fillResult, error) {
	ids := authorizerIDs(p.n)
	size := fmt.Sprintf("%d authorizers", p.n)
	p.sim.ResetMaxInFlightAll()
	u0, err := unaryByMethod()
	if err != nil {
		return fillResult{}, err
	}
	c0 := p.sim.Conns()
	fmt.Fprintf(os.Stderr, "bench: platform: authorizing %d accounts\n", p.n)
	t0 := time.Now()
	accepted, err := p.authorizeAll(ctx, ids)
	if err != nil {
		return fillResult{}, err
	}
	pushed := time.Since(t0)
	if err := p.track.wait(ctx, 15*time.Minute, "every authorizer's token", func() bool { return len(p.track.cur) >= p.n }); err != nil {
		served, _ := p.track.counts()
		return fillResult{}, fmt.Errorf("%w (%d of %d served)", err, served, p.n)
	}
	took := time.Since(t0)
	now := time.Now()
	valid, usable := p.track.validNow(p.sim, now, p.margin)
	// The leader may still step authorizers woken during the fill (their
	// steps queue behind the exchanges): their etcd requests belong to
	// the fill. Wait until it is idle, or until refreshes fall due.
	idle := "idle"
	if settled, err := waitIdle(ctx, p.leader.proc, time.Until(p.track.earliestRefresh())); err == nil {
		idle = fmt.Sprintf("idle %.1f s after the last token was served", settled.Sub(now).Seconds()-1)
	} else if ctx.Err() != nil {
		return fillResult{}, ctx.Err()
	} else {
		idle = "read as the first refreshes fell due: the leader was not idle yet"
	}
	u1, err := unaryByMethod()
	if err != nil {
		return fillResult{}, err
	}
	inFlight := p.sim.MaxInFlightAll()
	ledger := p.sim.Ledger()
	ex := exchangesOf(ledger)
	rss, peak, err := p.leader.memory()
	if err != nil {
		return fillResult{}, err
	}
	comp, _ := callsOf(ledger, wechattest.KindComponent)
	lists, _ := callsOf(ledger, wechattest.KindAuthorizerList)
	conns := p.sim.Conns() - c0

	r.check(platformSec, "Authorizer tokens served after authorizing "+size, float64(valid), "", ">=", float64(p.n),
		fmt.Sprintf("records in the cache valid at the simulator; %d of them usable by the serving margin", usable))
	r.add(platformSec, "Time from the first authorization until every authorizer token was served", took.Seconds(), "s",
		fmt.Sprintf("%d authorizations from %d pushers; refresh.concurrency %d x WeChat's %v allow %.0f calls/s",
			p.n, platformPushers, scaleConcurrency, fillLatency, float64(scaleConcurrency)/fillLatency.Seconds()))
	r.add(platformSec, "Pushes accepted by the event URL", float64(accepted)/pushed.Seconds(), "/s",
		fmt.Sprintf("%d of %d answered success in %.1f s, %d at a time, while the leader exchanged codes", accepted, p.n, pushed.Seconds(), platformPushers))
	r.add(platformSec, "Codes exchanged (api_query_auth)", ex.rate(), "/s",
		fmt.Sprintf("%d exchanged, %d failed, first call to last answer %.1f s", ex.ok, ex.failed, ex.last.Sub(ex.first).Seconds()))
	r.check(platformSec, "Codes exchanged twice", float64(ex.twice), "", "<=", 0, "from the simulator's ledger")
	r.check(platformSec, "Most WeChat calls in flight at once during the fill", float64(inFlight), "", "<=", scaleConcurrency,
		fmt.Sprintf("refresh.concurrency %d, counted at the simulator across all calls", scaleConcurrency))
	r.add(platformSec, "Connections the leader opened to WeChat (the simulator) during the fill", float64(conns), "",
		fmt.Sprintf("for %d code exchanges; against WeChat each is a TLS handshake", ex.ok+ex.failed))
	r.add(platformSec, "Resident memory (RSS) of the leader after the fill of "+size, rss, "MB",
		fmt.Sprintf("peak %.0f MB; %s", peak, idle))
	reqs, byMethod := perMethod(u0, u1, p.n)
	r.add(platformSec, "etcd requests per authorization (push stored, code exchanged, token published)", reqs, "requests",
		fmt.Sprintf("unary requests counted at the etcd members until the leader was idle: %s; component token calls %d, api_get_authorizer_list calls %d",
			byMethod, comp, lists))
	fmt.Fprintf(os.Stderr, "bench: platform: %d served in %.1f s (pushes %.1f s), RSS %.1f MB\n", p.n, took.Seconds(), pushed.Seconds(), rss)
	return fillResult{start: t0, end: t0.Add(took)}, nil
}

// refreshCycle waits until every authorizer has been refreshed once and
// reports how the refreshes spread and whether any token outlived its
// record.
func (p *platformRun) refreshCycle(ctx context.Context, r *Report, fill fillResult) error {
	from := time.Now()
	u0, err := unaryByMethod()
	if err != nil {
		return err
	}
	within := p.clock.tokenTTL() + fill.end.Sub(fill.start) + 2*time.Minute
	fmt.Fprintf(os.Stderr, "bench: platform: waiting for a refresh cycle (at most %v)\n", within.Round(time.Second))
	if err := p.track.wait(ctx, within, "every authorizer's refresh", func() bool { return p.track.refreshed >= p.n }); err != nil {
		_, refreshed := p.track.counts()
		return fmt.Errorf("%w (%d of %d refreshed)", err, refreshed, p.n)
	}
	to := time.Now()
	u1, err := unaryByMethod()
	if err != nil {
		return err
	}
	inFlight := p.sim.MaxInFlightAll() // since the fill started
	ledger := p.sim.Ledger()
	rs := refreshesOf(ledger, fill.start, to) // the first ones may fall due before the fill ends
	peak, median := rs.busiest()
	alone := refreshesOf(ledger, from, to) // those the etcd requests below were counted over
	ec := p.track.checkExpiry(p.sim, p.margin)
	valid, _ := p.track.validNow(p.sim, to, p.margin)
	rss, hwm, err := p.leader.memory()
	if err != nil {
		return err
	}
	bound := float64(scaleConcurrency) / fillLatency.Seconds()
	tm := p.clock.timing(0)

	r.add(platformSec, "Refresh calls (api_authorizer_token) in the busiest second of the cycle", float64(peak), "",
		fmt.Sprintf("%d refreshes over %d s, median %d a second; refresh.concurrency %d x %v allow %.0f/s", rs.ok, len(rs.perSecond), median,
			scaleConcurrency, fillLatency, bound))
	r.check(platformSec, "Most WeChat calls in flight at once over the fill and the refresh cycle", float64(inFlight), "", "<=", scaleConcurrency,
		"counted at the simulator across all calls")
	r.add(platformSec, "Refresh delay after the planned refresh time: p99", quantile(ec.delays, 0.99).Seconds(), "s",
		fmt.Sprintf("until the cache had the new record: the wait for a slot of refresh.concurrency, the %v call, the publish; p50 %.2f s, worst %.2f s; refresh.before %v",
			fillLatency, quantile(ec.delays, 0.5).Seconds(), quantile(ec.delays, 1).Seconds(), tm.Before))
	r.check(platformSec, "Authorizer records served after their token died", float64(ec.dead), "", "<=", 0,
		fmt.Sprintf("%d replacements, each checked at the simulator at the last instant the record was served (replaced, or out of its serving margin); "+
			"the least time a replaced record had left: %.2f s", ec.replaced, ec.minLeft.Seconds()))
	r.check(platformSec, "Authorizer records replaced only after their serving margin ended", float64(ec.late), "", "<=", 0,
		fmt.Sprintf("the authorizer had no token to serve meanwhile; margin %v; longest such gap %.2f s", round(tm.Margin), ec.worstGap.Seconds()))
	r.check(platformSec, "Authorizer tokens valid at the simulator at the end of the cycle", float64(valid), "", ">=", float64(p.n),
		fmt.Sprintf("%d refresh calls failed, %d refreshed an authorizer again within the cycle", rs.failed, rs.again))
	reqs, byMethod := perMethod(u0, u1, alone.ok+alone.again)
	r.add(platformSec, "etcd requests per refresh", reqs, "requests",
		fmt.Sprintf("unary requests counted at the etcd members over the %d refreshes after the fill: %s", alone.ok+alone.again, byMethod))
	r.add(platformSec, fmt.Sprintf("Resident memory (RSS) of the leader after the refresh cycle of %d authorizers", p.n), rss, "MB",
		fmt.Sprintf("peak %.0f MB", hwm))
	if d := fill.end.Sub(rs.first); d > 0 {
		r.note("Section 8: the first refreshes fell due %.1f s before the fill ended (a fill slower than the scaled token lifetime allows for): "+
			"refreshes and exchanges shared refresh.concurrency meanwhile.", d.Seconds())
	}
	r.note("Section 8: time runs %d times faster: the simulator's tokens live %v (wxtoken plans on %v, the 7,200 s of a real token), "+
		"refresh.before %v, jitter %v, margin %v (8 min, 1 min, 30 s scaled), fetch_timeout %v; every WeChat call is answered after %v. "+
		"Seconds of the refresh cycle by refresh calls started in them: %s.", p.clock.scale, p.clock.tokenTTL(), p.clock.tokenTTL()-time.Second,
		round(tm.Before), round(tm.Jitter), round(tm.Margin), tm.FetchTimeout, fillLatency, rs.histogram(10))
	return nil
}

func round(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
