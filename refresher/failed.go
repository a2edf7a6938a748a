package refresher

import (
	"context"
	"errors"
	"time"

	"github.com/wxtoken/wxtoken/election"
	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// failed handles a failed WeChat call by its outcome and class. ctx is not
// cancelled by a stop: what is written here describes a call that ended.
func (r *Refresher) failed(ctx context.Context, w worker, c Cred, t *term, snap tokenstore.Snapshot, intentRev int64, err error) (time.Time, error) {
	now := r.cfg.Now()
	class := fetcher.ClassOf(err)
	st := tokenstore.State{LastError: err.Error(), ErrorClass: class.String()}
	switch outcomeOf(err) {
	case ambiguous:
		// The call may still land at WeChat and mint: the intent stays,
		// and its window is waited out from now, when it was given up.
		t.intentRev, t.intentSeen = intentRev, now
		r.cfg.Metrics.ambiguousCall(c.Name)
		next := now.Add(r.window())
		r.log.Warn("WeChat call ended without a complete answer: it may have minted a token; waiting its window out before the next try",
			"cred", c.Name, "err", err, "retry_at", next)
		st.NextRefresh = next
		r.putState(ctx, w.g, c, st)
		return next, nil
	case answered:
		if !r.cfg.Unsafe.SkipIntent {
			// Nothing was minted: the intent goes.
			actx, cancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
			if aerr := r.cfg.Store.AbortFetch(actx, w.g, snap, intentRev); aerr != nil {
				r.log.Warn("abort fetch", "cred", c.Name, "err", aerr)
			}
			cancel()
		}
	}
	var next time.Time
	var apiErr *fetcher.APIError
	switch {
	case class == fetcher.Quota:
		next = nextChinaMidnight(now)
		st.Blocked, st.BlockedTill = "quota", next
		r.log.Error("WeChat daily quota reached (45009): not fetching until the next China-time day", "cred", c.Name, "until", next)
	case errors.As(err, &apiErr) && apiErr.HostSpecific():
		return r.refused(ctx, w, c, apiErr, st)
	case fetcher.IsTicketError(err):
		// The ticket in force is refused: a newer push wakes the
		// component token; ask WeChat for one meanwhile.
		r.kickPushes(ctx, c)
		next = now.Add(r.ticketWait())
		r.log.Error("WeChat refuses the component_verify_ticket: waiting for a newer push", "cred", c.Name, "err", err)
	case fetcher.IsAuthCodeError(err):
		// The code is gone (claimed when its exchange began): refresh
		// with the refresh token, or recover one, at once.
		next = now.Add(time.Second)
		r.log.Error("WeChat refuses the authorization code: recovering the authorizer's refresh token instead", "cred", c.Name, "err", err)
	case fetcher.IsRefreshTokenInvalid(err):
		next = now.Add(r.recoverWait())
		r.log.Error("WeChat rejects the authorizer's refresh token and api_get_authorizer_list has no other: the account must authorize again (or run wxtoken platform recover)", "cred", c.Name)
	case class == fetcher.Permanent:
		t.stopped = err.Error()
		next = now.Add(24 * time.Hour)
		st.Blocked = "permanent"
		r.log.Error("permanent WeChat error: fetching stops until the configuration is fixed", "cred", c.Name, "err", err)
	case class == fetcher.TokenDead:
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
	r.putState(ctx, w.g, c, st)
	return next, nil
}

// refused records that WeChat refuses c from this node. It is a fact about
// this credential on this host alone: the refusal is kept in etcd for
// Holdoff, the leader hands the credential to a candidate that WeChat has
// not refused (see place), and every other credential goes on.
func (r *Refresher) refused(ctx context.Context, w worker, c Cred, apiErr *fetcher.APIError, st tokenstore.State) (time.Time, error) {
	now := r.cfg.Now()
	r.cfg.Metrics.hostRefusal(c.Name, apiErr.Code)
	if r.cfg.Unsafe.NoIsolation && w.leader != nil {
		r.log.Error("WeChat refuses this host: stepping down", "cred", c.Name, "errcode", apiErr.Code, "holdoff", r.cfg.Holdoff)
		st.Blocked = "refused"
		r.putState(ctx, w.g, c, st)
		return time.Time{}, election.Holdoff(r.cfg.Holdoff, apiErr)
	}
	ref := tokenstore.Refusal{Cred: c.Name, Node: r.cfg.Node, Code: apiErr.Code, At: now, Until: now.Add(r.cfg.Holdoff)}
	rctx, cancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
	err := r.cfg.Store.Refuse(rctx, ref)
	cancel()
	r.cfg.Metrics.refused(c.Name, r.cfg.Node, true)
	r.log.Error("WeChat refuses this credential from this host (add the host's egress IP to the app's whitelist): another candidate fetches it meanwhile",
		"cred", c.Name, "appid", c.AppID, "errcode", apiErr.Code, "holdoff", r.cfg.Holdoff)
	if err != nil {
		r.log.Warn("record refusal", "cred", c.Name, "err", err)
		return now.Add(time.Second), nil
	}
	if w.leader == nil {
		return time.Time{}, errNotOwner // the leader places it elsewhere
	}
	return now, nil // place() hands it over at once
}
