package api

import (
	"context"
	"math"
	"net/http"
	"time"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// usable returns the record of cred if it may be handed out now, and for
// how many seconds. When it may not but a fetch is due or in flight, it
// waits (at most ReadWait) for the new record rather than answer
// no_credential: a planned swap, a WeCom token that is replaced only at its
// expiry, a recovery after a leader died mid-fetch.
func (a *API) usable(cred string) (tokenstore.Record, int64, error) {
	rec, ok := a.cfg.Cache.Get(cred)
	keep, serve := a.serve(rec, ok, a.cfg.Now())
	if !serve && ok && a.cfg.ReadWait > 0 && a.cfg.Cache.Synced() && a.due(cred, rec) {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ReadWait)
		if next, err := a.cfg.Cache.Wait(ctx, cred, rec.Seq); err == nil {
			rec = next
			keep, serve = a.serve(rec, true, a.cfg.Now())
		}
		cancel()
	}
	if !serve {
		a.m.misses.Inc()
		msg := "no credential yet for " + cred
		if ok {
			msg = "the credential for " + cred + " expired and no newer one has arrived"
		}
		return rec, 0, &Error{Status: http.StatusServiceUnavailable, Code: "no_credential", Message: msg}
	}
	a.m.reads.Inc()
	return rec, keep, nil
}

// due reports whether a new record for cred is on its way: a fetch is in
// flight, or the planned refresh time has passed.
func (a *API) due(cred string, rec tokenstore.Record) bool {
	if _, ok := a.cfg.Cache.Intent(cred); ok {
		return true
	}
	return !rec.RefreshAt.IsZero() && !a.cfg.Now().Before(rec.RefreshAt)
}

// serve decides whether rec may be handed out at now, and for how many
// seconds the caller may keep it: only while it is alive, less the
// margin, as tokenstore.AliveUntil judges it (a replica that follows etcd
// sees every fetch in flight, and only one of those may doom the token
// early; one cut off stops at its keep-until).
func (a *API) serve(rec tokenstore.Record, ok bool, now time.Time) (int64, bool) {
	if !ok || !rec.Usable(now, a.cfg.Margin) {
		return 0, false
	}
	in, known := a.intent(rec.Cred)
	until := tokenstore.AliveUntil(rec, in, known, a.cfg.Cache.Synced(), a.cfg.Overlap)
	if !now.Add(rec.Margin(a.cfg.Margin)).Before(until) {
		return 0, false
	}
	return a.keepFor(rec, in, known, now), true
}

// servable reports whether rec (ok: there is one) may be handed out at now.
func (a *API) servable(rec tokenstore.Record, ok bool, now time.Time) bool {
	_, serve := a.serve(rec, ok, now)
	return serve
}

// keepFor is how many seconds a caller may keep rec: never past its expiry,
// nor past the planned refresh plus WeChat's overlap, nor past the earliest
// death a fetch in flight may cause, less the margin; and never longer than
// the overlap less the margin, so that a fetch that starts after this read
// cannot kill the token while the caller still holds it.
// in is the fetch in flight for rec's credential, if known.
func (a *API) keepFor(rec tokenstore.Record, in tokenstore.Intent, known bool, now time.Time) int64 {
	margin := rec.Margin(a.cfg.Margin)
	until := tokenstore.AliveUntil(rec, in, known, false, a.cfg.Overlap)
	if cap := now.Add(a.cfg.Overlap); cap.Before(until) {
		until = cap
	}
	secs := math.Floor(until.Add(-margin).Sub(now).Seconds())
	return max(int64(secs), 0)
}

// intent is the fetch in flight for cred that reads must reckon with, if
// one is known.
func (a *API) intent(cred string) (tokenstore.Intent, bool) {
	if a.cfg.IgnoreIntents {
		return tokenstore.Intent{}, false
	}
	return a.cfg.Cache.Intent(cred)
}
