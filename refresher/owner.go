package refresher

import (
	"context"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// place decides, on the leader, who fetches c: the leader itself unless
// WeChat refuses c from the leader's host; then a live candidate that
// WeChat has not refused for c (the owner); if there is none, c is blocked
// until the earliest refusal ends, and nothing else moves. It reports
// whether the leader must leave c alone for now, and when to look again.
func (r *Refresher) place(ctx context.Context, w worker, c Cred, snap tokenstore.Snapshot, now time.Time) (time.Time, bool) {
	here := snap.RefusedFor(r.cfg.Node)
	o := snap.Owner
	if o == nil && !here {
		return time.Time{}, false
	}
	live, err := r.candidates(ctx)
	if err != nil {
		r.log.Warn("list candidates", "cred", c.Name, "err", err)
		return now.Add(r.cfg.OwnerCheck), true
	}
	if o != nil && o.LeaderKey == w.leader.Key() && o.LeaderRev == w.leader.Rev() &&
		o.Node != r.cfg.Node && !snap.RefusedFor(o.Node) && slices.Contains(live, o.Node) {
		return now.Add(r.cfg.OwnerCheck), true // its owner is fine
	}
	var owner *tokenstore.Owner
	if !here {
		// Not refused here (any more): the leader takes c back.
	} else {
		if o != nil && o.Node != r.cfg.Node && !snap.RefusedFor(o.Node) && slices.Contains(live, o.Node) {
			live = append([]string{o.Node}, live...) // keep a good owner across terms
		}
		for _, n := range live {
			if n != r.cfg.Node && !snap.RefusedFor(n) {
				owner = &tokenstore.Owner{Cred: c.Name, Node: n, LeaderKey: w.leader.Key(), LeaderRev: w.leader.Rev(), At: now}
				break
			}
		}
	}
	if owner == nil && o == nil && here {
		return r.blocked(ctx, w, c, snap, now), true
	}
	actx, cancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
	_, err = r.cfg.Store.Assign(actx, w.g, snap, owner)
	cancel()
	if err != nil {
		r.log.Warn("assign credential", "cred", c.Name, "err", err)
		return now.Add(r.cfg.OwnerCheck), true
	}
	switch {
	case owner != nil:
		r.log.Warn("credential handed to another candidate: WeChat refuses it from this host", "cred", c.Name, "owner", owner.Node)
		r.putState(ctx, w.g, c, tokenstore.State{LastError: "WeChat refuses this credential from " + r.cfg.Node + "; fetched by " + owner.Node})
		return now.Add(r.cfg.OwnerCheck), true
	case here:
		return r.blocked(ctx, w, c, snap, now), true
	}
	r.log.Info("credential taken back by the leader", "cred", c.Name, "previous_owner", o.Node)
	return now, true
}

// blocked records that every live candidate is refused for c.
func (r *Refresher) blocked(ctx context.Context, w worker, c Cred, snap tokenstore.Snapshot, now time.Time) time.Time {
	until := now.Add(r.cfg.Holdoff)
	for _, ref := range snap.Refusals {
		if ref.Until.Before(until) {
			until = ref.Until
		}
	}
	next := now.Add(r.cfg.OwnerCheck) // a candidate may join, a refusal may end
	if r.cfg.Metrics.Blocked(c.Name) == "refused" {
		return next // said already
	}
	r.log.Error("WeChat refuses this credential from every live candidate: it is blocked until a refusal ends or a candidate joins; add the hosts' egress IPs to the app's whitelist",
		"cred", c.Name, "appid", c.AppID, "refusals", len(snap.Refusals), "until", until)
	r.putState(ctx, w.g, c, tokenstore.State{Blocked: "refused", BlockedTill: until, NextRefresh: next,
		LastError: "WeChat refuses this credential from every live candidate (IP whitelist)"})
	return next
}

// candidates lists the live candidates' node names, sorted.
func (r *Refresher) candidates(ctx context.Context) ([]string, error) {
	lctx, cancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
	defer cancel()
	ps, err := r.cfg.Store.Replicas(lctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range ps {
		if p.Candidate {
			out = append(out, p.Node)
		}
	}
	slices.Sort(out)
	return out, nil
}

// delegateGuard fences a delegate's writes to the owner assignment's term
// (the owner key's revision is checked by the store), and lets it start a
// call only while its own presence lease is fresh: the leader moves the
// credential only after that lease has expired on etcd.
type delegateGuard struct {
	cmp   clientv3.Cmp
	fresh func() bool
}

func (g delegateGuard) Cmp() clientv3.Cmp { return g.cmp }
func (g delegateGuard) Held() bool        { return g.fresh() }

// Delegate runs, on a candidate, the credentials that the leader handed to
// this node (see place), until ctx ends; it returns when the steps in
// flight have finished their calls. fresh reports whether this node's
// presence lease is younger than its TTL less a margin. A credential that
// is taken back or given to another node stops at once if it waits, after
// its step if one runs.
func (r *Refresher) Delegate(ctx context.Context, fresh func() bool) {
	s := newSched(r, ctx, func(error) {})
	defer r.register(s)()
	var wg sync.WaitGroup
	wg.Go(func() { r.watchReports(ctx) })
	wg.Go(s.run)
	revs := map[string]int64{} // the assignment each credential runs under
	r.cfg.Store.WatchOwners(ctx, func(cred string, o *tokenstore.Owner, rev int64) {
		if cur, ok := revs[cred]; ok && (o == nil || o.Node != r.cfg.Node || rev != cur) {
			s.remove(cred)
			delete(revs, cred)
		}
		c, known := r.cred(cred)
		if _, ok := revs[cred]; ok || !known || o == nil || o.Node != r.cfg.Node {
			return
		}
		w := worker{g: delegateGuard{cmp: clientv3.Compare(clientv3.CreateRevision(o.LeaderKey), "=", o.LeaderRev), fresh: fresh}, ownerRev: rev}
		ectx, cancel := context.WithCancel(ctx)
		revs[cred] = rev
		r.log.Info("fetching a credential delegated by the leader", "cred", cred, "leader_rev", o.LeaderRev)
		// Reports written before this assignment were relayed to nobody:
		// its first step looks for one in etcd.
		s.add(&entry{c: c, w: w, ctx: ectx, cancel: cancel, at: r.cfg.Now(), t: term{scanReports: true}})
	})
	wg.Wait()
}
