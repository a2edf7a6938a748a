package refresher

import (
	"context"
	"time"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// trigger is why a step runs: its schedule, or a report on seq.
type trigger struct {
	report bool
	seq    uint64
}

// term is what one credential's loop remembers under one worker.
type term struct {
	intentRev  int64     // mod revision of an unfinished intent being waited out
	intentSeen time.Time // when it was seen, or when our own call was given up
	failures   int       // consecutive failures that may be retried
	stopped    string    // why fetching stopped for the rest of the term
	// lastUnconfirmed is when a report that WeChat's check could not
	// confirm last caused a refresh; pending is a report postponed until
	// ReportInterval has passed since.
	lastUnconfirmed time.Time
	pending         trigger
	scanReports     bool // the next step looks for a report of the current record in etcd
	awaits          bool // an authorizer waiting for its component token
}

// retry is the pause after a failure that may be retried.
func (t *term) retry() time.Duration {
	d := time.Second << min(t.failures, 6)
	t.failures++
	return d
}

// step looks at one credential and fetches if it must. pre, if set, is
// the credential's state read in bulk at the start of the term; otherwise
// the step reads it. It returns when to look again; an error ends the
// credential's stepping (errNotOwner: quietly) and, on the leader, the
// term. The scheduler runs at most Concurrency steps at once, so a new
// term over thousands of credentials is no burst.
func (r *Refresher) step(ctx context.Context, w worker, c Cred, t *term, trig trigger, pre *tokenstore.Snapshot) (time.Time, error) {
	now := r.cfg.Now()
	if ctx.Err() != nil {
		return time.Time{}, nil
	}
	if t.stopped != "" {
		// A permanent error: no loop. The next term tries once more.
		return now.Add(24 * time.Hour), nil
	}
	var snap tokenstore.Snapshot
	if pre != nil && pre.Day == tokenstore.Day(now) {
		snap = *pre
	} else {
		var err error
		if snap, err = r.load(ctx, c, now); err != nil {
			r.log.Warn("load credential", "cred", c.Name, "err", err)
			return now.Add(t.retry()), nil
		}
	}
	r.cfg.Metrics.budget(c.Name, snap.Budget.Count, c.Budget)
	r.cfg.Metrics.refusedNodes(c.Name, snap.Refusals)
	if w.leader == nil {
		if snap.Owner == nil || snap.Owner.Node != r.cfg.Node || snap.OwnerRev != w.ownerRev {
			return time.Time{}, errNotOwner
		}
	} else if next, placed := r.place(ctx, w, c, snap, now); placed {
		return next, nil
	}
	if t.scanReports && !trig.report && snap.Record != nil {
		if ok, err := r.cfg.Store.Reported(ctx, c.Name, snap.Seq()); err == nil {
			t.scanReports = false
			if ok {
				trig = trigger{report: true, seq: snap.Seq()}
			}
		}
	}
	var code *tokenstore.StoredCode
	if c.Kind == KindAuthorizer {
		var next time.Time
		var done bool
		if code, next, done = r.authorizerView(ctx, w, c, snap, now); done {
			return next, nil
		}
	}
	force := false
	reason := ""
	switch {
	case snap.Intent != nil && snap.IntentRev != t.intentRev:
		// A fetch may be in flight (a previous worker's, or one of ours
		// given up without an answer that may still land at WeChat), or
		// may have minted a token that dooms the published one: wait the
		// window out, then refresh.
		// A held call is made at its CallAt: its window runs from then.
		t.intentRev, t.intentSeen = snap.IntentRev, later(now, snap.Intent.CallAt)
		wait := t.intentSeen.Add(r.window()).Sub(now)
		r.log.Warn("unfinished fetch found, waiting out its window", "cred", c.Name, "intent_node", snap.Intent.Node, "wait", wait)
		r.cfg.Metrics.danglingIntent(c.Name)
		return now.Add(wait), nil
	case snap.Intent != nil:
		if rest := t.intentSeen.Add(r.window()).Sub(now); rest > 0 {
			return now.Add(rest), nil
		}
		reason = "unfinished fetch"
	case code != nil:
		reason = reasonCode
	case trig.report:
		var fetch bool
		if reason, force, fetch = r.judgeReport(ctx, w, c, t, snap, trig, now); !fetch {
			if t.pending.report {
				return t.lastUnconfirmed.Add(r.cfg.ReportInterval), nil
			}
			return r.next(snap), nil
		}
	case snap.Record == nil:
		reason = "none yet"
	case !now.Before(snap.Record.RefreshAt):
		reason = "scheduled"
	default:
		return snap.Record.RefreshAt, nil
	}
	return r.fetch(ctx, w, c, t, snap, plan{reason: reason, force: force, code: code})
}

// window is how long an unfinished fetch may still land at WeChat after it
// was seen or given up.
func (r *Refresher) window() time.Duration { return r.cfg.FetchTimeout + r.cfg.WindowMargin }

// judgeReport decides what a report on trig.seq asks for: nothing (an old
// record, a token WeChat still accepts, an unconfirmed report inside
// ReportInterval of the last one), or a fetch, forced for a stable token
// that WeChat confirmed dead.
func (r *Refresher) judgeReport(ctx context.Context, w worker, c Cred, t *term, snap tokenstore.Snapshot, trig trigger, now time.Time) (reason string, force, fetch bool) {
	if trig.seq != snap.Seq() {
		// A report on an old record: already replaced, nothing to do.
		if trig.seq >= snap.Seq() {
			return "", false, false
		}
		_ = r.cfg.Store.DeleteReport(ctx, w.g, c.Name, trig.seq)
		// A report of the current record may have been relayed behind it.
		if ok, err := r.cfg.Store.Reported(ctx, c.Name, snap.Seq()); err != nil || !ok {
			return "", false, false
		}
		trig.seq = snap.Seq()
	}
	switch r.check(ctx, c, snap) {
	case verdictAlive:
		rep := tokenstore.Report{Cred: c.Name, Seq: trig.seq, Node: r.cfg.Node, At: now}
		if err := r.cfg.Store.RejectReport(ctx, w.g, rep); err != nil {
			r.log.Warn("reject report", "cred", c.Name, "err", err)
		}
		return "", false, false
	case verdictDead:
		// WeChat killed the current token and no newer fetch of ours
		// exists (an intent would have been handled first).
		r.foreign(ctx, w, c, snap)
		return reasonDead, c.Kind == KindStable && snap.Budget.Forced < ForceLimit, true
	}
	// The check failed: the token may be dead or alive. Refresh, but not
	// more often than ReportInterval, so that no caller drains the budget.
	if !r.cfg.Unsafe.NoReportLimit && !t.lastUnconfirmed.IsZero() && now.Before(t.lastUnconfirmed.Add(r.cfg.ReportInterval)) {
		t.pending = trig
		return "", false, false
	}
	t.lastUnconfirmed = now
	return "reported, check failed", false, true
}

// verdict is what WeChat's check says of a reported token.
type verdict int

const (
	verdictUnknown verdict = iota // no checker, or the check failed
	verdictAlive
	verdictDead
)

// check asks WeChat whether the reported token of snap still works.
func (r *Refresher) check(ctx context.Context, c Cred, snap tokenstore.Snapshot) verdict {
	if r.cfg.CheckToken == nil || c.Token != "" || snap.Record == nil {
		return verdictUnknown
	}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
	defer cancel()
	alive, err := r.cfg.CheckToken(cctx, c, snap.Record.Value)
	switch {
	case err != nil:
		r.log.Warn("check reported token: WeChat's check failed, the report counts as unconfirmed", "cred", c.Name, "err", err)
		return verdictUnknown
	case alive:
		r.cfg.Metrics.reportRejected(c.Name)
		r.log.Warn("report of a token that WeChat still accepts: not refreshing", "cred", c.Name, "seq", snap.Seq())
		return verdictAlive
	}
	return verdictDead
}

// foreign records a token that WeChat killed although no fetch of ours
// replaced it: someone outside the cluster fetched this app's token.
func (r *Refresher) foreign(ctx context.Context, w worker, c Cred, snap tokenstore.Snapshot) {
	if r.cfg.Unsafe.NoForeign || c.Token != "" {
		return
	}
	r.cfg.Metrics.foreignFetch(c.Name)
	r.log.Error("WeChat killed the current token although this cluster did not replace it: something outside the cluster fetched this app's token "+
		"(a legacy server or script with the app secret, another environment sharing the appid, the WeChat console, a reset secret); refreshing once",
		"cred", c.Name, "appid", c.AppID, "seq", snap.Seq())
	r.putState(ctx, w.g, c, tokenstore.State{LastError: "token killed by a fetch from outside the cluster"})
}

func (r *Refresher) load(ctx context.Context, c Cred, now time.Time) (tokenstore.Snapshot, error) {
	lctx, cancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
	defer cancel()
	return r.cfg.Store.Load(lctx, c.Name, tokenstore.Day(now))
}

// next is when to look at a credential again when nothing is due.
func (r *Refresher) next(snap tokenstore.Snapshot) time.Time {
	if snap.Record == nil {
		return r.cfg.Now()
	}
	return snap.Record.RefreshAt
}

func (r *Refresher) putState(ctx context.Context, g Guard, c Cred, st tokenstore.State) {
	st.Cred, st.Node, st.UpdatedAt = c.Name, r.cfg.Node, r.cfg.Now()
	r.cfg.Metrics.state(st)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.FetchTimeout)
	defer cancel()
	if err := r.cfg.Store.PutState(sctx, g, st); err != nil {
		r.log.Debug("put state", "cred", c.Name, "err", err)
	}
}

// nextChinaMidnight is the start of the China-time day after t's.
func nextChinaMidnight(t time.Time) time.Time {
	y, m, d := t.In(tokenstore.China).Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, tokenstore.China)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
