package wechattest

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/wxtoken/wxtoken/wxcrypt"
)

// DefaultFuncInfo are the permission-set ids Authorize grants by default.
var DefaultFuncInfo = []int{1, 2, 3}

// AuthorizeOptions are the details of a test authorization.
type AuthorizeOptions struct {
	// FuncInfo are the funcscope_category ids granted; nil grants
	// DefaultFuncInfo.
	FuncInfo []int
	// PreAuthCode, if set, must be a live pre-auth code of the platform;
	// it is echoed in the event.
	PreAuthCode string
}

// Authorization is what Authorize did.
type Authorization struct {
	Code      string    `json:"authorization_code"`
	ExpiresAt time.Time `json:"expires_at"` // simulator clock
	InfoType  string    `json:"info_type"`  // authorized or updateauthorized
	Push      Push      `json:"push"`
}

// Authorize plays an account owner authorizing the platform on WeChat's
// page: it creates the authorizer (or updates it: "updateauthorized"),
// issues a single-use authorization code and pushes the event to the
// platform's URL. The code is valid whether or not the push succeeded (a
// push error is returned with the Authorization, as the code also reaches
// the platform through the page's redirect).
func (s *Sim) Authorize(ctx context.Context, componentAppID, authorizerAppID string, o AuthorizeOptions) (Authorization, error) {
	if authorizerAppID == "" {
		return Authorization{}, fmt.Errorf("authorize: no authorizer appid")
	}
	s.mu.Lock()
	pl := s.platforms[componentAppID]
	if pl == nil {
		s.mu.Unlock()
		return Authorization{}, fmt.Errorf("authorize: no platform %q", componentAppID)
	}
	now := s.now()
	if o.PreAuthCode != "" {
		if exp, ok := pl.preAuth[o.PreAuthCode]; !ok || !now.Before(exp) {
			s.mu.Unlock()
			return Authorization{}, fmt.Errorf("authorize: pre-auth code unknown or expired")
		}
	}
	a := pl.auths[authorizerAppID]
	info := wxcrypt.InfoUpdateAuthorized
	if a == nil {
		a = &authorizer{appID: authorizerAppID}
		pl.auths[authorizerAppID] = a
		pl.order = append(pl.order, authorizerAppID)
	}
	if !a.authorized {
		info = wxcrypt.InfoAuthorized
		a.authorized, a.authTime = true, now
	}
	a.funcInfo = slices.Clone(o.FuncInfo)
	if a.funcInfo == nil {
		a.funcInfo = slices.Clone(DefaultFuncInfo)
	}
	code := s.randomValueLocked("queryauthcode@@@")
	exp := now.Add(pl.cfg.CodeTTL)
	pl.codes[code] = &authCode{authorizer: authorizerAppID, expires: exp}
	ev := eventXML{
		AppID: componentAppID, CreateTime: now.Unix(), InfoType: info, AuthorizerAppid: authorizerAppID,
		AuthorizationCode: code, AuthorizationCodeExpiredTime: exp.Unix(), PreAuthCode: o.PreAuthCode,
	}
	s.mu.Unlock()
	p, err := s.push(ctx, componentAppID, ev)
	return Authorization{Code: code, ExpiresAt: exp, InfoType: info, Push: p}, err
}

// Unauthorize plays the owner withdrawing the authorization: the
// authorizer's refresh and access tokens and unused codes die at once, it
// leaves api_get_authorizer_list, and "unauthorized" is pushed.
func (s *Sim) Unauthorize(ctx context.Context, componentAppID, authorizerAppID string) (Push, error) {
	s.mu.Lock()
	pl := s.platforms[componentAppID]
	var a *authorizer
	if pl != nil {
		a = pl.auths[authorizerAppID]
	}
	if a == nil || !a.authorized {
		s.mu.Unlock()
		return Push{}, fmt.Errorf("unauthorize: %q is not authorized to %q", authorizerAppID, componentAppID)
	}
	now := s.now()
	a.authorized, a.refresh, a.prev = false, "", ""
	for _, c := range pl.codes {
		if c.authorizer == authorizerAppID {
			c.used = true
		}
	}
	if sr := s.series[authorizerSeries(componentAppID, authorizerAppID)]; sr != nil {
		for _, k := range []*token{sr.prev, sr.cur} {
			if k != nil {
				k.kill(now)
			}
		}
	}
	ev := eventXML{AppID: componentAppID, CreateTime: now.Unix(), InfoType: wxcrypt.InfoUnauthorized, AuthorizerAppid: authorizerAppID}
	s.mu.Unlock()
	return s.push(ctx, componentAppID, ev)
}

// authorizerSeries is the line of an authorizer's access tokens.
func authorizerSeries(componentAppID, authorizerAppID string) seriesKey {
	return seriesKey{KindAuthorizer, componentAppID + "\x00" + authorizerAppID}
}

// mintAuthorizerLocked issues an authorizer access token; the previous one
// lives Overlap more, as a classic token does.
func (s *Sim) mintAuthorizerLocked(componentAppID, authorizerAppID string, now time.Time) *token {
	key := authorizerSeries(componentAppID, authorizerAppID)
	k := s.rotateLocked(s.seriesLocked(key), key, KindAuthorizer, authorizerAppID, now)
	s.newest[seriesKey{KindAuthorizer, authorizerAppID}] = k.value
	return k
}

// queryAuthLocked answers api_query_auth: the code is exchanged once.
func (s *Sim) queryAuthLocked(c call, req platformRequest, tok string, now time.Time) reply {
	pl, rp, ok := s.componentTokenCheckLocked(c, tok, now)
	if !ok {
		return rp
	}
	code := pl.codes[req.AuthorizationCode]
	var a *authorizer
	if code != nil {
		a = pl.auths[code.authorizer]
	}
	switch {
	case req.AuthorizationCode == "" || code == nil || a == nil:
		return s.mpErrLocked(61009, "code is invalid", now)
	case code.used || !now.Before(code.expires):
		return s.mpErrLocked(61010, "code is expired", now)
	case !a.authorized:
		return s.mpErrLocked(61009, "code is invalid", now)
	}
	code.used = true
	a.refresh, a.prev, a.refreshes = s.randomValueLocked("refreshtoken@@@"), "", 0
	k := s.mintAuthorizerLocked(c.component, a.appID, now)
	funcs := make([]map[string]any, 0, len(a.funcInfo))
	for _, id := range a.funcInfo {
		funcs = append(funcs, map[string]any{"funcscope_category": map[string]int{"id": id}})
	}
	return reply{
		body: map[string]any{"authorization_info": map[string]any{
			"authorizer_appid": a.appID, "authorizer_access_token": k.value, "expires_in": expiresIn(s.cfg.TokenTTL),
			"authorizer_refresh_token": a.refresh, "func_info": funcs,
		}},
		token: k.value, issued: true, refresh: a.refresh,
	}
}

// authorizerTokenLocked answers api_authorizer_token.
func (s *Sim) authorizerTokenLocked(c call, req platformRequest, tok string, now time.Time) reply {
	pl, rp, ok := s.componentTokenCheckLocked(c, tok, now)
	if !ok {
		return rp
	}
	a := pl.auths[req.AuthorizerAppID]
	rt := req.RefreshToken
	switch {
	case a == nil || !a.authorized:
		return s.mpErrLocked(61003, "component is not authorized by this account", now)
	case rt == "" || (rt != a.refresh && (!pl.cfg.KeepPreviousRefresh || rt != a.prev)):
		return s.mpErrLocked(61023, "refresh_token is invalid", now)
	case !s.takeQuotaLocked(KindAuthorizer, a.appID, s.cfg.DailyQuota, now):
		return s.mpErrLocked(45009, "reach max api daily quota limit", now)
	}
	a.refreshes++
	if n := pl.cfg.RotateRefresh; n > 0 && a.refreshes%n == 0 {
		a.prev, a.refresh = a.refresh, s.randomValueLocked("refreshtoken@@@")
	}
	k := s.mintAuthorizerLocked(c.component, a.appID, now)
	return reply{
		body: map[string]any{
			"authorizer_access_token": k.value, "expires_in": expiresIn(s.cfg.TokenTTL),
			"authorizer_refresh_token": a.refresh,
		},
		token: k.value, issued: true, refresh: a.refresh,
	}
}

// authorizerListLocked answers api_get_authorizer_list.
func (s *Sim) authorizerListLocked(c call, req platformRequest, tok string, now time.Time) reply {
	pl, rp, ok := s.componentTokenCheckLocked(c, tok, now)
	if !ok {
		return rp
	}
	switch {
	case req.Offset == nil || req.Count == nil || *req.Offset < 0 || *req.Count <= 0:
		return s.mpErrLocked(40097, "invalid args", now)
	case *req.Count > 500:
		return s.mpErrLocked(40170, "args count exceed count limit", now)
	}
	var all []*authorizer
	for _, id := range pl.order {
		if a := pl.auths[id]; a.authorized {
			all = append(all, a)
		}
	}
	list := []map[string]any{}
	for i := *req.Offset; i < len(all) && len(list) < *req.Count; i++ {
		a := all[i]
		list = append(list, map[string]any{"authorizer_appid": a.appID, "refresh_token": a.refresh, "auth_time": a.authTime.Unix()})
	}
	return reply{body: map[string]any{"total_count": len(all), "list": list}}
}

// SeedAuthorizer makes authorizerAppID an account authorized to the
// platform whose code was already exchanged, without a push or a code,
// and returns its refresh token: for benchmarks with thousands of
// accounts and for tests of the recovery path (api_get_authorizer_list).
// An account already authorized keeps its refresh token.
func (s *Sim) SeedAuthorizer(componentAppID, authorizerAppID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pl := s.platforms[componentAppID]
	if pl == nil || authorizerAppID == "" {
		return "", fmt.Errorf("seed: no platform %q or no authorizer appid", componentAppID)
	}
	a := pl.auths[authorizerAppID]
	if a == nil {
		a = &authorizer{appID: authorizerAppID}
		pl.auths[authorizerAppID] = a
		pl.order = append(pl.order, authorizerAppID)
	}
	if !a.authorized || a.refresh == "" {
		a.authorized, a.authTime, a.funcInfo = true, s.now(), slices.Clone(DefaultFuncInfo)
		a.refresh, a.prev, a.refreshes = s.randomValueLocked("refreshtoken@@@"), "", 0
	}
	return a.refresh, nil
}
