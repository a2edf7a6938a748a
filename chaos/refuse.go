package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/wxtoken/wxtoken/chaos/checker"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// refuseApp refuses one app's token calls from every host for the hold,
// from just before a planned refresh of it, then waits (bounded) until
// every replica serves it again. The app and the refresh are chosen so
// that another app's refresh falls after every host met the refusal and
// that app's token stops being served before the holdoff ends: a cluster
// that stops fetching every app when one is refused then lets a healthy
// app's token expire, which the checker sees.
func (h *harness) refuseApp(ctx context.Context, s Step, f *checker.Fault) error {
	ai, at, err := h.refusePlan(ctx, s.App)
	if err != nil {
		return err
	}
	a := h.cfg.apps[ai]
	f.App, f.Target = a.name, "app "+a.name+" from every host"
	if err := sleep(ctx, time.Until(at)-300*time.Millisecond); err != nil {
		return err
	}
	if err := h.sim.refuse(ctx, a.appID, nil, s.Hold); err != nil {
		return err
	}
	f.Start = time.Now()
	err = sleep(ctx, s.Hold)
	if cerr := h.sim.clearRefusals(ctx); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// The holdoff (per host) bounds how long the app stays blocked after
	// its whitelist is fixed.
	t := h.cfg.Timing
	bound := t.Holdoff + 2*(t.FetchTimeout+t.Margin) + 10*time.Second
	back := time.Now()
	err = poll(ctx, bound, func(ctx context.Context) bool { return h.servedEverywhere(ctx, a.name) })
	f.End = time.Now()
	if err != nil {
		f.Detail = fmt.Sprintf("refused %v; not served again within %v", s.Hold, bound)
		return nil
	}
	f.Detail = fmt.Sprintf("refused %v; served again %v after", s.Hold, f.End.Sub(back).Round(100*time.Millisecond))
	return nil
}

// servedEverywhere reports whether every running replica serves app.
func (h *harness) servedEverywhere(ctx context.Context, app string) bool {
	for _, r := range h.replicas {
		if r.proc.running() && get(ctx, r.url()+"/v1/apps/"+app+"/token") != http.StatusOK {
			return false
		}
	}
	return true
}

// refusePlan picks the app to refuse and the refresh to refuse it at,
// looking at the next few planned refreshes of every app: the first
// refresh R of an app A such that another app B refreshes after R (by
// then every host met the refusal) and B's token stops being served
// (its expiry less the margin) before R plus the holdoff. Without one it
// takes the next refresh of app fallback.
func (h *harness) refusePlan(ctx context.Context, fallback int) (int, time.Time, error) {
	t := h.cfg.Timing
	type plan struct{ refresh, expires time.Time }
	next := make([]plan, len(h.cfg.apps))
	for i, a := range h.cfg.apps {
		rec, err := h.record(ctx, a.name)
		if err != nil {
			return 0, time.Time{}, err
		}
		next[i] = plan{rec.RefreshAt, rec.ExpiresAt}
	}
	// The k-th refresh of app i from now, and the expiry of the token it
	// replaces, assuming the plan holds.
	nth := func(i, k int) plan {
		d := time.Duration(k) * h.cfg.apps[i].refreshEvery
		return plan{next[i].refresh.Add(d), next[i].expires.Add(d)}
	}
	best, bestAt := -1, time.Time{}
	soon := time.Now().Add(time.Second)
	for i := range h.cfg.apps {
		for k := range 4 {
			r := nth(i, k).refresh
			if r.Before(soon) || (best >= 0 && !r.Before(bestAt)) {
				continue
			}
			for j := range h.cfg.apps {
				if j == i {
					continue
				}
				var b plan
				for m := 0; m < 8; m++ {
					if b = nth(j, m); b.refresh.After(r.Add(3 * time.Second)) {
						break
					}
				}
				if b.expires.Add(-t.Margin).Before(r.Add(t.Holdoff - 5*time.Second)) {
					best, bestAt = i, r
				}
			}
		}
	}
	if best >= 0 {
		return best, bestAt, nil
	}
	r := next[fallback].refresh
	for r.Before(soon) {
		r = r.Add(h.cfg.apps[fallback].refreshEvery)
	}
	return fallback, r, nil
}

// refuseLeader refuses one app's token calls from the address of the
// host that fetches it (the leader, or the candidate the leader handed
// the app to after an earlier refusal) only, from just before a planned
// refresh of it, for the hold.
func (h *harness) refuseLeader(ctx context.Context, s Step, f *checker.Fault) error {
	a := h.cfg.apps[s.App]
	if err := h.alignFetch(ctx, a); err != nil {
		return err
	}
	l, role, err := h.fetcherOf(ctx, a.name)
	if err != nil {
		return err
	}
	f.App, f.Target = a.name, fmt.Sprintf("app %s from %s (%s, %s)", a.name, l.name, role, l.sourceIP)
	if err := h.sim.refuse(ctx, a.appID, []string{l.sourceIP}, s.Hold); err != nil {
		return err
	}
	f.Start = time.Now()
	err = sleep(ctx, s.Hold)
	if cerr := h.sim.clearRefusals(ctx); cerr != nil && err == nil {
		err = cerr
	}
	f.End = time.Now()
	f.Detail = fmt.Sprintf("refused %v", s.Hold)
	return err
}

// fetcherOf is the replica that fetches app now: its delegate (the
// owner key in etcd) if the leader handed it over, else the leader.
func (h *harness) fetcherOf(ctx context.Context, app string) (*replica, string, error) {
	gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	resp, err := h.cli.Get(gctx, tokenstore.Keys{Prefix: Prefix}.Owner(tokenstore.CredName(app, "token")))
	cancel()
	if err == nil && len(resp.Kvs) > 0 {
		var o tokenstore.Owner
		if json.Unmarshal(resp.Kvs[0].Value, &o) == nil {
			for _, r := range h.replicas {
				if r.name == o.Node && r.proc.running() {
					return r, "its delegate", nil
				}
			}
		}
	}
	l, err := h.leader(ctx)
	return l, "leader", err
}
