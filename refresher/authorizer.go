package refresher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/platformrecover"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// reasonCode is the reason of an authorization code's exchange.
const reasonCode = "authorization code"

// recoverEvery, in fetch timeouts, is how long an authorizer without a
// usable refresh token waits before it looks in api_get_authorizer_list
// again: 10 minutes at the default fetch timeout of 30 s.
const recoverEvery = 20

// ticketWait is how long a component token without a usable ticket waits
// before it looks again (a new ticket wakes it sooner): a minute at the
// default fetch timeout of 30 s.
func (r *Refresher) ticketWait() time.Duration { return 2 * r.cfg.FetchTimeout }

// recoverWait is recoverEvery as a duration.
func (r *Refresher) recoverWait() time.Duration { return recoverEvery * r.cfg.FetchTimeout }

// authorizerView reads what the platform's event URL stored of an
// authorizer and decides before the usual schedule: an unauthorized
// authorizer is revoked (done), a pending authorization code is returned
// to be exchanged. Expired codes, and all but the newest, are dropped.
func (r *Refresher) authorizerView(ctx context.Context, w worker, c Cred, snap tokenstore.Snapshot, now time.Time) (code *tokenstore.StoredCode, next time.Time, done bool) {
	st, known, err := r.cfg.Store.Authorizer(ctx, c.Platform, c.AppID)
	if err != nil {
		r.log.Warn("read authorizer state", "cred", c.Name, "err", err)
		return nil, now.Add(time.Second), true
	}
	revoked := snap.Record != nil && snap.Record.Revoked
	codes, unreadable, err := r.cfg.Store.AuthorizerCodes(ctx, c.Platform, c.AppID)
	if err != nil {
		r.log.Warn("read authorization codes", "cred", c.Name, "err", err)
		return nil, now.Add(time.Second), true
	}
	if unreadable > 0 {
		r.log.Warn("authorization codes that do not open are left alone", "cred", c.Name, "count", unreadable)
	}
	if known && st.State == tokenstore.AuthorizerUnauthorized {
		for _, sc := range codes { // codes of before the unauthorization are useless
			if !sc.CreateTime.After(st.At) {
				r.dropCode(ctx, w, c, sc)
			}
		}
		if revoked {
			return nil, now.Add(24 * time.Hour), true // a new authorization wakes it
		}
		if err := r.cfg.Store.Revoke(ctx, w.g, snap, r.cfg.Node, now); err != nil {
			r.log.Warn("revoke authorizer", "cred", c.Name, "err", err)
			return nil, now.Add(100 * time.Millisecond), true
		}
		r.log.Info("authorizer unauthorized the platform: its token is revoked and no longer refreshed", "cred", c.Name)
		r.putState(ctx, w.g, c, tokenstore.State{Blocked: "unauthorized"})
		return nil, now.Add(24 * time.Hour), true
	}
	for i := range codes {
		sc := &codes[i]
		if i < len(codes)-1 || !now.Before(sc.ExpiresAt) {
			// A newer authorization replaces this one; an expired code
			// cannot be exchanged.
			r.dropCode(ctx, w, c, *sc)
			continue
		}
		return sc, time.Time{}, false
	}
	if revoked && (!known || !st.At.After(snap.Record.FetchedAt)) {
		return nil, now.Add(24 * time.Hour), true // revoked, and no authorization since
	}
	return nil, time.Time{}, false
}

func (r *Refresher) dropCode(ctx context.Context, w worker, c Cred, sc tokenstore.StoredCode) {
	if err := r.cfg.Store.DropCode(ctx, w.g, sc); err != nil {
		r.log.Warn("drop authorization code", "cred", c.Name, "err", err)
	}
}

// prepareAuthorizer finds the refresh token a refresh needs (an exchange
// needs only its code): the stored one, or, if it is missing, rejected by
// WeChat or does not open, the one api_get_authorizer_list gives, stored
// (fenced) before it is used.
func (r *Refresher) prepareAuthorizer(ctx context.Context, w worker, c Cred, in input) (input, time.Time) {
	now := r.cfg.Now()
	if in.code != nil {
		return in, time.Time{}
	}
	rt, ok, err := r.cfg.Store.RefreshToken(ctx, c.Name)
	if err != nil && !errors.Is(err, tokenstore.ErrRecordUnreadable) {
		r.log.Warn("read refresh token", "cred", c.Name, "err", err)
		return in, now.Add(time.Second)
	}
	if ok && !rt.Rejected {
		in.refresh = rt
		return in, time.Time{}
	}
	found, err := r.findRefresh(ctx, c, in.access)
	if err == nil && found == "" {
		// WeChat lists no refresh token: an exchange that got no answer
		// was never processed, and its claimed code may go once more.
		if sc, claimed, cerr := r.cfg.Store.ClaimedCode(ctx, c.Name); cerr == nil && claimed && now.Before(sc.ExpiresAt) {
			r.log.Warn("WeChat lists no refresh token for the account: presenting the code of an exchange that got no answer again", "cred", c.Name)
			in.code = &sc
			return in, time.Time{}
		}
	}
	if err != nil || found == "" || (ok && found == rt.Value) {
		msg := "no valid refresh token, and api_get_authorizer_list has none either: the account must authorize the platform again"
		if err != nil {
			msg = "no valid refresh token, and api_get_authorizer_list failed: " + err.Error()
		}
		r.log.Error("authorizer cannot be refreshed", "cred", c.Name, "why", msg)
		r.putState(ctx, w.g, c, tokenstore.State{LastError: msg, NextRefresh: now.Add(r.recoverWait())})
		return in, now.Add(r.recoverWait())
	}
	nrt := tokenstore.RefreshToken{Value: found, Source: tokenstore.RefreshFromRecover, UpdatedAt: now}
	if err := r.cfg.Store.PutRefreshToken(ctx, w.g, c.Name, nrt, rt.Rev); err != nil {
		r.log.Warn("store recovered refresh token", "cred", c.Name, "err", err)
		return in, now.Add(100 * time.Millisecond) // read again
	}
	r.cfg.Metrics.recovered(c.Name)
	r.log.Warn("refresh token recovered from api_get_authorizer_list", "cred", c.Name, "had", describe(ok, rt))
	in.refresh = nrt
	return in, time.Time{}
}

func describe(ok bool, rt tokenstore.RefreshToken) string {
	switch {
	case !ok && rt.Rev != 0:
		return "unreadable"
	case !ok:
		return "none"
	}
	return "rejected"
}

// callAuthorizer exchanges the code in, or refreshes with its refresh
// token. A refresh token that WeChat rejects (61023) is looked up in
// api_get_authorizer_list and, if the list has another, tried once more
// under the same intent; if not, it is marked rejected.
func (r *Refresher) callAuthorizer(ctx context.Context, w worker, c Cred, in input) (result, error) {
	now := r.cfg.Now()
	if in.code != nil {
		a, err := r.cfg.Platform.QueryAuth(ctx, in.access, c.Component, in.code.Code)
		if err != nil {
			return result{tok: fetcher.Token{Attempts: a.Attempts}}, err
		}
		switch {
		case a.AuthorizerAppID != c.AppID:
			return result{tok: fetcher.Token{Attempts: a.Attempts}}, fmt.Errorf("api_query_auth answered for authorizer %s, not %s", a.AuthorizerAppID, c.AppID)
		case a.AccessToken == "" || a.RefreshToken == "":
			return result{tok: fetcher.Token{Attempts: a.Attempts}}, errors.New("api_query_auth: the authorization grants no API scope, so no token")
		}
		return result{
			tok:     fetcher.Token{Value: a.AccessToken, ExpiresIn: a.ExpiresIn, Attempts: a.Attempts},
			refresh: &tokenstore.RefreshToken{Value: a.RefreshToken, Source: tokenstore.RefreshFromQueryAuth, UpdatedAt: now},
			info:    &tokenstore.AuthorizerInfo{AppID: c.AppID, FuncInfo: a.FuncInfo, AuthorizedAt: in.code.CreateTime, UpdatedAt: now},
		}, nil
	}
	sent := in.refresh.Value
	at, err := r.cfg.Platform.AuthorizerToken(ctx, in.access, c.Component, c.AppID, sent)
	if fetcher.IsRefreshTokenInvalid(err) {
		attempts := at.Attempts
		found, ferr := r.findRefresh(ctx, c, in.access)
		if ferr == nil && found != "" && found != sent {
			r.cfg.Metrics.recovered(c.Name)
			r.log.Warn("refresh token rejected (61023): trying the one api_get_authorizer_list gives", "cred", c.Name)
			sent = found
			at, err = r.cfg.Platform.AuthorizerToken(ctx, in.access, c.Component, c.AppID, sent)
			at.Attempts += attempts
		} else {
			r.rejectRefresh(ctx, w, c, in.refresh.Value)
		}
	}
	if err != nil {
		return result{tok: fetcher.Token{Attempts: at.Attempts}}, err
	}
	return result{
		tok:     fetcher.Token{Value: at.AccessToken, ExpiresIn: at.ExpiresIn, Attempts: at.Attempts},
		refresh: &tokenstore.RefreshToken{Value: at.RefreshToken, Source: tokenstore.RefreshFromRefresh, UpdatedAt: now},
	}, nil
}

// rejectRefresh marks value, if it is still c's stored refresh token, as
// rejected by WeChat.
func (r *Refresher) rejectRefresh(ctx context.Context, w worker, c Cred, value string) {
	cur, ok, err := r.cfg.Store.RefreshToken(ctx, c.Name)
	if err != nil || !ok || cur.Value != value {
		return
	}
	cur.Rejected, cur.UpdatedAt = true, r.cfg.Now()
	if err := r.cfg.Store.PutRefreshToken(ctx, w.g, c.Name, cur, cur.Rev); err != nil {
		r.log.Warn("mark refresh token rejected", "cred", c.Name, "err", err)
	}
}

// findRefresh pages api_get_authorizer_list for c's refresh token ("" if
// the list has none for it).
func (r *Refresher) findRefresh(ctx context.Context, c Cred, componentToken string) (string, error) {
	en, _, err := platformrecover.Find(ctx, r.cfg.Platform, componentToken, c.Component, c.AppID)
	return en.RefreshToken, err
}

// prepareComponent reads the platform's ticket in force. Without one, it
// asks WeChat to push again and waits: a new ticket wakes the credential.
func (r *Refresher) prepareComponent(ctx context.Context, c Cred, in input) (input, time.Time) {
	now := r.cfg.Now()
	t, ok, err := r.cfg.Store.Ticket(ctx, c.Platform)
	if err != nil {
		r.log.Warn("read component_verify_ticket", "cred", c.Name, "err", err)
		return in, now.Add(5 * time.Second)
	}
	if !ok {
		r.kickPushes(ctx, c)
		return in, now.Add(r.ticketWait())
	}
	in.ticket = t.Value
	return in, time.Time{}
}

// afterPublish stores what an exchange said of the authorizer.
func (r *Refresher) afterPublish(ctx context.Context, w worker, c Cred, m result) {
	if m.info == nil {
		return
	}
	ictx, cancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
	defer cancel()
	if err := r.cfg.Store.PutAuthorizerInfo(ictx, w.g, c.Platform, *m.info); err != nil {
		r.log.Warn("store authorizer info", "cred", c.Name, "err", err)
	}
}
