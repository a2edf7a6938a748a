package refresher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wxtoken/wxtoken/election"
	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// trigger is why a step runs: its schedule, or a report on seq.
type trigger struct {
	report bool
	seq    uint64
}

// term is what one credential's loop remembers within a term.
type term struct {
	intentRev  int64     // mod revision of an unfinished intent being waited out
	intentSeen time.Time // when this term first saw it
	failures   int       // consecutive transient failures
	stopped    string    // why fetching stopped for the rest of the term
}

// retry is the pause after a failure that may be retried.
func (t *term) retry() time.Duration {
	d := time.Second << min(t.failures, 6)
	t.failures++
	return d
}

// step looks at one credential and fetches if it must. It returns when to
// look again; an error ends the term.
func (r *Refresher) step(ctx context.Context, g *election.Guard, c Cred, t *term, trig trigger) (time.Time, error) {
	// At most Concurrency credentials are looked at or fetched at once, so
	// a new term over thousands of credentials is no burst.
	select {
	case r.sem <- struct{}{}:
		defer func() { <-r.sem }()
	case <-ctx.Done():
		return time.Time{}, nil
	}
	now := r.cfg.Now()
	if t.stopped != "" {
		// A permanent error: no loop. The next term tries once more.
		return now.Add(24 * time.Hour), nil
	}
	snap, err := r.load(ctx, c, now)
	if err != nil {
		r.log.Warn("load credential", "cred", c.Name, "err", err)
		return now.Add(t.retry()), nil
	}
	r.cfg.Metrics.budget(c.Name, snap.Budget.Count, c.Budget)
	force := false
	reason := ""
	switch {
	case snap.Intent != nil && snap.IntentRev != t.intentRev:
		// A fetch may be in flight (a previous leader's, or our own call
		// that went unanswered and may still land at WeChat), or may have
		// minted a token that dooms the published one: wait the window
		// out, then refresh.
		t.intentRev, t.intentSeen = snap.IntentRev, now
		wait := r.cfg.FetchTimeout + r.cfg.WindowMargin
		r.log.Warn("unfinished fetch found, waiting out its window", "cred", c.Name, "intent_node", snap.Intent.Node, "wait", wait)
		r.cfg.Metrics.danglingIntent(c.Name)
		return now.Add(wait), nil
	case snap.Intent != nil:
		if rest := t.intentSeen.Add(r.cfg.FetchTimeout + r.cfg.WindowMargin).Sub(now); rest > 0 {
			return now.Add(rest), nil
		}
		reason = "unfinished fetch"
	case trig.report:
		if trig.seq != snap.Seq() {
			// A report on an old record: already replaced, nothing to do.
			if trig.seq < snap.Seq() {
				_ = r.cfg.Store.DeleteReport(ctx, g, c.Name, trig.seq)
			}
			return r.next(c, snap), nil
		}
		if r.alive(ctx, c, snap) {
			rep := tokenstore.Report{Cred: c.Name, Seq: trig.seq, Node: r.cfg.Node, At: now}
			if err := r.cfg.Store.RejectReport(ctx, g, rep); err != nil {
				r.log.Warn("reject report", "cred", c.Name, "err", err)
			}
			return r.next(c, snap), nil
		}
		reason = "reported dead"
		force = c.Kind == KindStable && snap.Budget.Forced < ForceLimit
	case snap.Record == nil:
		reason = "none yet"
	case !now.Before(snap.Record.RefreshAt):
		reason = "scheduled"
	default:
		return snap.Record.RefreshAt, nil
	}
	return r.fetch(ctx, g, c, t, snap, reason, force)
}

// alive asks WeChat whether the reported token of snap still works. Any
// doubt (no checker, an error) counts as dead: the report is served.
func (r *Refresher) alive(ctx context.Context, c Cred, snap tokenstore.Snapshot) bool {
	if r.cfg.CheckToken == nil || c.Token != "" || snap.Record == nil {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
	defer cancel()
	alive, err := r.cfg.CheckToken(cctx, c, snap.Record.Value)
	if err != nil {
		r.log.Warn("check reported token", "cred", c.Name, "err", err)
		return false
	}
	if alive {
		r.cfg.Metrics.reportRejected(c.Name)
		r.log.Warn("report of a token that WeChat still accepts: not refreshing", "cred", c.Name, "seq", snap.Seq())
	}
	return alive
}

func (r *Refresher) load(ctx context.Context, c Cred, now time.Time) (tokenstore.Snapshot, error) {
	lctx, cancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
	defer cancel()
	return r.cfg.Store.Load(lctx, c.Name, tokenstore.Day(now))
}

// next is when to look at a credential again when nothing is due.
func (r *Refresher) next(c Cred, snap tokenstore.Snapshot) time.Time {
	if snap.Record == nil {
		return r.cfg.Now()
	}
	return snap.Record.RefreshAt
}

// fetch runs the write-ahead intent protocol once: intent and budget,
// WeChat, publish.
func (r *Refresher) fetch(ctx context.Context, g *election.Guard, c Cred, t *term, snap tokenstore.Snapshot, reason string, force bool) (time.Time, error) {
	var access string
	if c.Token != "" {
		tok, ok := r.cfg.Cache.Get(c.Token)
		if !ok || !tok.Usable(r.cfg.Now(), r.cfg.WindowMargin) {
			return r.cfg.Now().Add(time.Second), nil // the token comes first
		}
		access = tok.Value
	}
	if !g.Held() {
		return time.Time{}, fmt.Errorf("%s: %w", c.Name, election.ErrNotLeader)
	}
	start := r.cfg.Now()
	// The fetch's deadline is fixed before the intent is written, so a
	// successor that saw the intent can wait the window out on its clock.
	fctx, cancel := context.WithDeadline(ctx, start.Add(r.cfg.FetchTimeout))
	defer cancel()
	in := tokenstore.Intent{Seq: snap.Seq() + 1, Node: r.cfg.Node, Started: start, Reason: reason, Forced: force}
	intentRev, err := r.begin(fctx, g, c, snap, in)
	switch {
	case errors.Is(err, tokenstore.ErrBudget):
		r.cfg.Metrics.budgetRefusal(c.Name)
		tomorrow := nextChinaMidnight(start)
		r.log.Error("daily budget used up: not fetching until the next China-time day", "cred", c.Name, "budget", c.Budget, "until", tomorrow)
		r.putState(ctx, g, c, tokenstore.State{Blocked: "budget", BlockedTill: tomorrow,
			LastError: fmt.Sprintf("daily budget of %d fetches used up", c.Budget)})
		return tomorrow, nil
	case errors.Is(err, tokenstore.ErrFenced):
		return r.cfg.Now().Add(100 * time.Millisecond), nil // re-read: leadership or the record changed
	case err != nil:
		r.log.Warn("begin fetch", "cred", c.Name, "err", err)
		return r.cfg.Now().Add(t.retry()), nil
	}
	r.log.Info("fetching", "cred", c.Name, "reason", reason, "seq", in.Seq, "forced", force)
	tok, err := r.call(fctx, c, access, force)
	r.cfg.Metrics.fetch(c.Name, err)
	if tok.Attempts > 1 && !r.cfg.SkipIntent {
		// The budget counts WeChat calls: add the fetcher's retries.
		cctx, cancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
		if cerr := r.cfg.Store.CountExtra(cctx, g, c.Name, snap.Day, tok.Attempts-1); cerr != nil {
			r.log.Warn("count retries against the budget", "cred", c.Name, "err", cerr)
		}
		cancel()
	}
	if err != nil {
		return r.failed(ctx, g, c, t, intentRev, err)
	}
	rec := tokenstore.Record{
		Cred: c.Name, Value: tok.Value, Seq: in.Seq, Node: r.cfg.Node,
		// expires_in counts whole seconds: it may be up to 1 s optimistic.
		FetchedAt: start, ExpiresAt: start.Add(tok.ExpiresIn - time.Second),
	}
	rec.RefreshAt = r.refreshAt(c, start, rec.ExpiresAt)
	if snap.Record != nil && snap.Record.Value == tok.Value {
		// The platform handed back the token we have (WeCom, stable
		// outside its window): it cannot be replaced before it surely
		// expired, at the latest start + expires_in.
		rec.RefreshAt = start.Add(tok.ExpiresIn)
	}
	// Never plan the next call sooner than a second away: no loops.
	rec.RefreshAt = later(rec.RefreshAt, r.cfg.Now().Add(time.Second))
	pctx, pcancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
	defer pcancel()
	if err := r.publish(pctx, g, snap, intentRev, rec); err != nil {
		if errors.Is(err, tokenstore.ErrFenced) {
			return time.Time{}, fmt.Errorf("publish %s: %w", c.Name, election.ErrNotLeader)
		}
		r.log.Warn("publish", "cred", c.Name, "err", err)
		return r.cfg.Now().Add(t.retry()), nil
	}
	t.failures, t.intentRev = 0, 0
	r.cfg.Metrics.published(c.Name, rec)
	r.log.Info("published", "cred", c.Name, "seq", rec.Seq, "expires_at", rec.ExpiresAt, "refresh_at", rec.RefreshAt)
	r.putState(ctx, g, c, tokenstore.State{NextRefresh: rec.RefreshAt})
	return rec.RefreshAt, nil
}

func (r *Refresher) begin(ctx context.Context, g *election.Guard, c Cred, snap tokenstore.Snapshot, in tokenstore.Intent) (int64, error) {
	if r.cfg.SkipIntent {
		return 0, nil
	}
	return r.cfg.Store.BeginFetch(ctx, g, snap, in, c.Budget)
}

func (r *Refresher) publish(ctx context.Context, g *election.Guard, snap tokenstore.Snapshot, intentRev int64, rec tokenstore.Record) error {
	if r.cfg.SkipIntent {
		return r.cfg.Store.PublishUnfenced(ctx, rec)
	}
	return r.cfg.Store.Publish(ctx, g, snap, intentRev, rec)
}

// call makes the WeChat call for c.
func (r *Refresher) call(ctx context.Context, c Cred, access string, force bool) (fetcher.Token, error) {
	switch c.Kind {
	case KindClassic:
		return r.cfg.Fetcher.Classic(ctx, c.AppID, c.Secret)
	case KindStable:
		return r.cfg.Fetcher.Stable(ctx, c.AppID, c.Secret, force)
	case KindWeCom:
		return r.cfg.Fetcher.WeCom(ctx, c.AppID, c.Secret)
	default:
		return r.cfg.Fetcher.Ticket(ctx, access, fetcher.TicketType(c.Kind))
	}
}

// failed handles a failed WeChat call by its class.
func (r *Refresher) failed(ctx context.Context, g *election.Guard, c Cred, t *term, intentRev int64, err error) (time.Time, error) {
	now := r.cfg.Now()
	class := fetcher.ClassOf(err)
	var apiErr *fetcher.APIError
	answered := errors.As(err, &apiErr)
	if answered && !r.cfg.SkipIntent {
		// WeChat answered with an error: nothing was minted.
		actx, cancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
		if aerr := r.cfg.Store.AbortFetch(actx, g, c.Name, intentRev); aerr != nil {
			r.log.Warn("abort fetch", "cred", c.Name, "err", aerr)
		}
		cancel()
	}
	// An unanswered call keeps its intent: it may still mint a token, so
	// the next try (ours or a successor's) waits its window out and then
	// treats the published token as doomed.
	st := tokenstore.State{LastError: err.Error(), ErrorClass: class.String()}
	var next time.Time
	switch class {
	case fetcher.Quota:
		next = nextChinaMidnight(now)
		st.Blocked, st.BlockedTill = "quota", next
		r.log.Error("WeChat daily quota reached (45009): not fetching until the next China-time day", "cred", c.Name, "until", next)
	case fetcher.Permanent:
		if answered && apiErr.HostSpecific() {
			r.log.Error("WeChat refuses this host: stepping down", "cred", c.Name, "errcode", apiErr.Code, "holdoff", r.cfg.Holdoff)
			r.cfg.Metrics.hostRefusal(c.Name, apiErr.Code)
			st.Blocked = "host refused"
			r.putState(ctx, g, c, st)
			return time.Time{}, election.Holdoff(r.cfg.Holdoff, err)
		}
		t.stopped = err.Error()
		next = now.Add(24 * time.Hour)
		st.Blocked = "permanent"
		r.log.Error("permanent WeChat error: fetching stops until the configuration is fixed", "cred", c.Name, "err", err)
	case fetcher.TokenDead:
		// A ticket call with a dead token: report the token, retry after.
		if tok, ok := r.cfg.Cache.Get(c.Token); ok {
			_, _, _ = r.cfg.Store.Report(ctx, tokenstore.Report{Cred: c.Token, Seq: tok.Seq, Node: r.cfg.Node, At: now})
		}
		next = now.Add(t.retry())
	default:
		next = now.Add(t.retry())
		r.log.Warn("fetch failed, will retry", "cred", c.Name, "err", err, "retry_at", next)
	}
	st.NextRefresh = next
	r.putState(ctx, g, c, st)
	return next, nil
}

func (r *Refresher) putState(ctx context.Context, g *election.Guard, c Cred, st tokenstore.State) {
	st.Cred, st.Node, st.UpdatedAt = c.Name, r.cfg.Node, r.cfg.Now()
	r.cfg.Metrics.state(st)
	sctx, cancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
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
