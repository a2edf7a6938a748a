package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/chaos/checker"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// reportLateReject reports an app's current, working token via one
// replica while the check of it (getcallbackip from the address of the
// host that fetches the app: the leader or its delegate) is held for
// s.Param, past the replicas' invalidate
// wait: the report answers refresh_pending, and the rejection lands
// later. Once it has landed in etcd, it reports the same token again via
// the same replica: that report must be answered at once with the
// current token (the checker's "stuck reports").
func (h *harness) reportLateReject(ctx context.Context, s Step, f *checker.Fault) error {
	a, r := h.cfg.apps[s.App], h.replicas[s.Replica]
	t := h.cfg.Timing
	f.App = a.name
	if t.invalidateWait() >= t.FetchTimeout {
		f.Missed = fmt.Sprintf("invalidate wait %v is not shorter than the fetch timeout %v, which bounds the leader's check", t.invalidateWait(), t.FetchTimeout)
		return nil
	}
	// A token that stays current through both reports.
	rec, err := h.freshRecord(ctx, a, s.Param+t.invalidateWait()+10*time.Second)
	if err != nil {
		return err
	}
	if err := poll(ctx, 5*time.Second, func(ctx context.Context) bool { return h.serves(ctx, r, a.name, rec.Value) }); err != nil {
		return fmt.Errorf("%s does not serve %s seq %d: %w", r.name, a.name, rec.Seq, err)
	}
	l, role, err := h.fetcherOf(ctx, a.name)
	if err != nil {
		return err
	}
	f.Target = fmt.Sprintf("app %s via %s; the check by %s (%s) held %v", a.name, r.name, l.name, role, s.Param)
	cred := tokenstore.CredName(a.name, "token")
	key := tokenstore.Keys{Prefix: Prefix}.Report(cred, rec.Seq)
	gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	resp, err := h.cli.Get(gctx, key)
	cancel()
	if err != nil {
		return fmt.Errorf("read report key: %w", err)
	}
	// Hold the first check from any replica: the app's fetcher does it.
	var ips []string
	for _, r := range h.replicas {
		ips = append(ips, r.sourceIP)
	}
	if err := h.sim.holdUses(ctx, ips, s.Param, 1); err != nil {
		return err
	}
	defer func() { _ = h.sim.clearUseLatency(context.WithoutCancel(ctx)) }()
	hc := &http.Client{Timeout: t.invalidateWait() + 10*time.Second}
	f.Start = time.Now()
	first := h.harnessReport(ctx, hc, r, a.name, rec.Value, false)
	if used, err := h.sim.usesHeld(ctx); err != nil || !used {
		_ = h.sim.clearUseLatency(ctx)
		f.Missed = fmt.Sprintf("the check was not held (the report answered %d %s after %v)",
			first.Status, first.Code, first.End.Sub(first.Start).Round(time.Millisecond))
		return nil
	}
	landed, err := h.waitRejected(ctx, key, resp.Header.Revision, s.Param+10*time.Second)
	if err != nil {
		f.Missed = fmt.Sprintf("the report was not rejected within %v of the first answer: %v", s.Param+10*time.Second, err)
		return nil
	}
	second := h.harnessReport(ctx, hc, r, a.name, rec.Value, true)
	f.End = time.Now()
	f.Detail = fmt.Sprintf("first report: %d %s after %v; rejected %v after it was made; repeat: %d %s after %v",
		first.Status, first.Code, first.End.Sub(first.Start).Round(time.Millisecond), landed.Sub(first.Start).Round(time.Millisecond),
		second.Status, second.Code, second.End.Sub(second.Start).Round(time.Millisecond))
	return nil
}

// harnessReport reports token of app dead via r and records it.
func (h *harness) harnessReport(ctx context.Context, hc *http.Client, r *replica, app, token string, repeat bool) checker.Invalidation {
	inv := postInvalidate(ctx, hc, r.url(), appTarget(app), token)
	inv.By, inv.Replica, inv.Repeat = "harness", r.name, repeat
	h.mu.Lock()
	h.invals = append(h.invals, inv)
	h.mu.Unlock()
	return inv
}

// waitRejected waits, bounded by d, until the report at key is marked
// rejected or removed after revision rev, and returns when.
func (h *harness) waitRejected(ctx context.Context, key string, rev int64, d time.Duration) (time.Time, error) {
	wctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), d)
	defer cancel()
	for wr := range h.cli.Watch(wctx, key, clientv3.WithRev(rev+1)) {
		if err := wr.Err(); err != nil {
			return time.Time{}, err
		}
		for _, ev := range wr.Events {
			var rep tokenstore.Report
			if ev.Type == clientv3.EventTypeDelete ||
				(json.Unmarshal(ev.Kv.Value, &rep) == nil && rep.Rejected) {
				return time.Now(), nil
			}
		}
	}
	return time.Time{}, wctx.Err()
}

// freshRecord returns app a's record once it is not due to be replaced
// within d: the current one, or the next if a refresh comes sooner.
func (h *harness) freshRecord(ctx context.Context, a app, d time.Duration) (tokenstore.Record, error) {
	rec, err := h.record(ctx, a.name)
	if err != nil || time.Until(rec.RefreshAt) > d {
		return rec, err
	}
	return h.nextRecord(ctx, a, rec.Seq)
}

// nextRecord waits for app a's planned refresh and returns the first
// record after seq.
func (h *harness) nextRecord(ctx context.Context, a app, seq uint64) (tokenstore.Record, error) {
	if err := h.alignFetch(ctx, a); err != nil {
		return tokenstore.Record{}, err
	}
	t := h.cfg.Timing
	var rec tokenstore.Record
	bound := 3*(t.FetchTimeout+t.Margin) + 10*time.Second
	err := poll(ctx, bound, func(ctx context.Context) bool {
		r, err := h.record(ctx, a.name)
		rec = r
		return err == nil && r.Seq > seq
	})
	if err != nil {
		return rec, fmt.Errorf("no record of %s after seq %d: %w", a.name, seq, err)
	}
	return rec, nil
}

// serves reports whether r answers app's token with token.
func (h *harness) serves(ctx context.Context, r *replica, app, token string) bool {
	rd := (&consumer{url: r.url(), hc: &http.Client{Timeout: 2 * time.Second}}).read(ctx, appTarget(app))
	return rd.OK() && rd.Token == token
}
