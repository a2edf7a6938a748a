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

// reasonDead is the reason of a refresh after WeChat confirmed the
// reported token dead.
const reasonDead = "reported dead"

// outcome is how one WeChat call of a fetch ended; each kind is one branch
// of what happens to the intent.
type outcome int

const (
	minted    outcome = iota // a token came back: publish it, the intent goes with the publish
	answered                 // WeChat answered with an error, or the call was never sent: nothing minted, drop the intent
	ambiguous                // no complete answer after the request was written: keep the intent, wait its window out
)

func outcomeOf(err error) outcome {
	switch {
	case err == nil:
		return minted
	case fetcher.ClassOf(err) == fetcher.Ambiguous:
		return ambiguous
	}
	return answered
}

// fetch runs the write-ahead intent protocol once: intent and budget,
// WeChat, then publish or abort by the call's outcome. Once the intent is
// written the call and what follows no longer depend on ctx: a stop or a
// lost term lets the call finish (bounded by FetchTimeout) and publishes
// what it minted while the lease holds (the fence refuses a stale write).
func (r *Refresher) fetch(ctx context.Context, w worker, c Cred, t *term, snap tokenstore.Snapshot, p plan) (time.Time, error) {
	reason, force := p.reason, p.force
	if c.Kind == KindAuthorizer {
		if tok, ok := r.cfg.Cache.Get(c.Token); !ok || !tok.Usable(r.cfg.Now(), r.cfg.WindowMargin) {
			// Thousands of authorizers wait for their component token:
			// its publish wakes them (wakeAwaiting), no polling.
			t.awaits = true
			return r.cfg.Now().Add(r.ticketWait()), nil
		}
		t.awaits = false
	}
	in, wait := r.prepare(ctx, w, c, snap, p)
	if !wait.IsZero() {
		return wait, nil
	}
	if ctx.Err() != nil {
		return time.Time{}, nil // stopping: no new call
	}
	if next, lost, err := r.unheld(w, c); lost {
		return next, err
	}
	start := r.cfg.Now()
	intent := tokenstore.Intent{Seq: snap.Seq() + 1, Node: r.cfg.Node, Started: start, Since: start, Reason: reason, Forced: force,
		Foreign: reason == reasonDead && c.Token == "" && !r.cfg.Unsafe.NoForeign}
	if snap.Intent != nil {
		intent.Since = snap.Intent.Earliest() // the earliest unfinished call still counts
	}
	callAt := start
	if r.holds(intent) {
		callAt = start.Add(r.cfg.Hold)
		intent.CallAt = callAt
	}
	bctx, bcancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
	intentRev, err := r.begin(bctx, w, c, snap, intent, in.code)
	bcancel()
	switch {
	case errors.Is(err, tokenstore.ErrBudget):
		r.cfg.Metrics.budgetRefusal(c.Name)
		tomorrow := nextChinaMidnight(start)
		r.log.Error("daily budget used up: not fetching until the next China-time day", "cred", c.Name, "budget", c.Budget, "until", tomorrow)
		r.putState(ctx, w.g, c, tokenstore.State{Blocked: "budget", BlockedTill: tomorrow,
			LastError: fmt.Sprintf("daily budget of %d fetches used up", c.Budget)})
		return tomorrow, nil
	case errors.Is(err, tokenstore.ErrFenced):
		return r.cfg.Now().Add(100 * time.Millisecond), nil // re-read: leadership, owner or record changed
	case err != nil:
		r.log.Warn("begin fetch", "cred", c.Name, "err", err)
		return r.cfg.Now().Add(t.retry()), nil
	}
	if !r.hold(ctx, c, callAt) {
		return time.Time{}, nil // stopping: no call; the intent stays, it stands for the unfinished one too
	}
	if next, lost, err := r.unheld(w, c); lost {
		return next, err
	}
	// The call's deadline is fixed from before the intent was written, so
	// a successor that saw the intent can wait the window out on its clock.
	base := context.WithoutCancel(ctx)
	if r.cfg.Unsafe.NoDrain {
		base = ctx
	}
	fctx, cancel := context.WithDeadline(base, callAt.Add(r.cfg.FetchTimeout))
	defer cancel()
	r.log.Info("fetching", "cred", c.Name, "reason", reason, "seq", intent.Seq, "forced", force)
	m, err := r.call(fctx, w, c, in, force)
	tok := m.tok
	r.cfg.Metrics.fetch(c.Name, err)
	if tok.Attempts > 1 && !r.cfg.Unsafe.SkipIntent {
		// Only with Unsafe retries: the budget counts every WeChat call.
		cctx, cancel := context.WithTimeout(base, r.cfg.FetchTimeout)
		if cerr := r.cfg.Store.CountExtra(cctx, w.g, c.Name, snap.Day, tok.Attempts-1); cerr != nil {
			r.log.Warn("count retries against the budget", "cred", c.Name, "err", cerr)
		}
		cancel()
	}
	if err != nil {
		return r.failed(base, w, c, t, snap, intentRev, err)
	}
	return r.publishMinted(base, w, c, t, snap, intentRev, callAt, m)
}

// publishMinted publishes a token WeChat minted. A publish error that is
// not a fence refusal is retried with the token in hand while the lease
// holds: a minted token is never thrown away while it could be published.
func (r *Refresher) publishMinted(ctx context.Context, w worker, c Cred, t *term, snap tokenstore.Snapshot, intentRev int64, start time.Time, m result) (time.Time, error) {
	tok := m.tok
	rec := tokenstore.Record{
		Cred: c.Name, Value: tok.Value, Seq: snap.Seq() + 1, Node: r.cfg.Node,
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
	pause := 100 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
		err := r.publish(pctx, w, snap, intentRev, rec, m.refresh)
		cancel()
		if err == nil {
			break
		}
		if errors.Is(err, tokenstore.ErrFenced) {
			if w.leader == nil {
				return time.Time{}, errNotOwner
			}
			return time.Time{}, fmt.Errorf("publish %s: %w", c.Name, election.ErrNotLeader)
		}
		if !w.g.Held() || !rec.Usable(r.cfg.Now(), r.cfg.WindowMargin) {
			r.log.Error("publish failed and the lease no longer holds: the minted token is lost; the intent stays for the next leader", "cred", c.Name, "err", err)
			return r.cfg.Now().Add(t.retry()), nil
		}
		r.log.Warn("publish failed, retrying with the token in hand", "cred", c.Name, "err", err, "retry_in", pause)
		time.Sleep(pause)
		pause = min(2*pause, 2*time.Second)
	}
	t.failures, t.intentRev = 0, 0
	r.afterPublish(ctx, w, c, m)
	if c.Kind == KindComponent {
		go r.wakeAwaiting(ctx, c.Name, rec.Seq)
	}
	r.cfg.Metrics.published(c.Name, rec)
	r.log.Info("published", "cred", c.Name, "seq", rec.Seq, "expires_at", rec.ExpiresAt, "refresh_at", rec.RefreshAt)
	r.putState(ctx, w.g, c, tokenstore.State{NextRefresh: rec.RefreshAt})
	return rec.RefreshAt, nil
}

// begin writes the fetch's intent; an authorization code's exchange claims
// the code in the same transaction.
func (r *Refresher) begin(ctx context.Context, w worker, c Cred, snap tokenstore.Snapshot, in tokenstore.Intent, code *tokenstore.StoredCode) (int64, error) {
	if r.cfg.Unsafe.SkipIntent {
		return 0, nil
	}
	if code != nil && r.cfg.Unsafe.NoCodeClaim {
		// Unsafe: the code stays; a record newer than it says it was
		// exchanged (a dead leader's exchange published none).
		if snap.Record != nil && snap.Record.FetchedAt.After(code.CreateTime) {
			_ = r.cfg.Store.DropCode(ctx, w.g, *code)
			return 0, tokenstore.ErrFenced // read again, without the code
		}
		return r.cfg.Store.BeginFetch(ctx, w.g, snap, in, c.Budget)
	}
	if code != nil {
		return r.cfg.Store.BeginExchange(ctx, w.g, snap, in, *code)
	}
	return r.cfg.Store.BeginFetch(ctx, w.g, snap, in, c.Budget)
}

func (r *Refresher) publish(ctx context.Context, w worker, snap tokenstore.Snapshot, intentRev int64, rec tokenstore.Record, refresh *tokenstore.RefreshToken) error {
	switch {
	case r.cfg.Unsafe.SkipIntent:
		return r.cfg.Store.PublishUnfenced(ctx, rec)
	case refresh != nil:
		return r.cfg.Store.PublishAuthorizer(ctx, w.g, snap, intentRev, rec, *refresh)
	}
	return r.cfg.Store.Publish(ctx, w.g, snap, intentRev, rec)
}

// plan is what a step decided to fetch, and why.
type plan struct {
	reason string
	force  bool
	code   *tokenstore.StoredCode // an authorizer's code to exchange
}

// input is what a call needs besides the credential: the access token a
// ticket or authorizer call is made with, a platform's ticket, an
// authorizer's code or refresh token.
type input struct {
	access  string
	ticket  string
	code    *tokenstore.StoredCode
	refresh tokenstore.RefreshToken
}

// result is what a call returned: the token, and for an authorizer the
// refresh token to publish with it and the scopes an exchange granted.
type result struct {
	tok     fetcher.Token
	refresh *tokenstore.RefreshToken
	info    *tokenstore.AuthorizerInfo
}

// prepare gathers a call's input. A zero wait means go on; otherwise the
// credential cannot be fetched yet (its token, ticket or refresh token is
// missing) and wait is when to look again.
func (r *Refresher) prepare(ctx context.Context, w worker, c Cred, snap tokenstore.Snapshot, p plan) (in input, wait time.Time) {
	if c.Token != "" {
		tok, ok := r.cfg.Cache.Get(c.Token)
		if !ok || !tok.Usable(r.cfg.Now(), r.cfg.WindowMargin) {
			return in, r.cfg.Now().Add(time.Second) // the token comes first
		}
		in.access = tok.Value
	}
	switch c.Kind {
	case KindComponent:
		return r.prepareComponent(ctx, c, in)
	case KindAuthorizer:
		in.code = p.code
		return r.prepareAuthorizer(ctx, w, c, in)
	}
	return in, time.Time{}
}

// call makes the WeChat call for c.
func (r *Refresher) call(ctx context.Context, w worker, c Cred, in input, force bool) (m result, err error) {
	switch c.Kind {
	case KindClassic:
		m.tok, err = r.cfg.Fetcher.Classic(ctx, c.AppID, c.Secret)
	case KindStable:
		m.tok, err = r.cfg.Fetcher.Stable(ctx, c.AppID, c.Secret, force)
	case KindWeCom:
		m.tok, err = r.cfg.Fetcher.WeCom(ctx, c.AppID, c.Secret)
	case KindComponent:
		m.tok, err = r.cfg.Platform.ComponentToken(ctx, c.AppID, c.Secret, in.ticket)
	case KindAuthorizer:
		return r.callAuthorizer(ctx, w, c, in)
	default:
		m.tok, err = r.cfg.Fetcher.Ticket(ctx, in.access, fetcher.TicketType(c.Kind))
	}
	return m, err
}
