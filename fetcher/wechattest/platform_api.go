package wechattest

import (
	"encoding/json"
	"net/http"
	"time"
)

// platformRequest is the union of the JSON bodies of the component APIs.
type platformRequest struct {
	ComponentAppID     string `json:"component_appid"`
	ComponentAppSecret string `json:"component_appsecret"` // api_component_token
	ComponentSecret    string `json:"component_secret"`    // api_start_push_ticket
	Ticket             string `json:"component_verify_ticket"`
	AuthorizationCode  string `json:"authorization_code"`
	AuthorizerAppID    string `json:"authorizer_appid"`
	RefreshToken       string `json:"authorizer_refresh_token"`
	Offset             *int   `json:"offset"`
	Count              *int   `json:"count"`
}

// platformHandler answers one component API call under s.mu; tok is the
// component_access_token of the query.
type platformHandler func(c call, req platformRequest, tok string, now time.Time) reply

func (s *Sim) routePlatform(mux *http.ServeMux) {
	for path, h := range map[string]struct {
		kind string
		fn   platformHandler
	}{
		"api_component_token":     {KindComponent, s.componentTokenLocked},
		"api_start_push_ticket":   {KindStartPush, s.startPushLocked},
		"api_create_preauthcode":  {KindPreAuth, s.preAuthLocked},
		"api_query_auth":          {KindQueryAuth, s.queryAuthLocked},
		"api_authorizer_token":    {KindAuthorizer, s.authorizerTokenLocked},
		"api_get_authorizer_list": {KindAuthorizerList, s.authorizerListLocked},
	} {
		mux.HandleFunc("POST /cgi-bin/component/"+path, func(w http.ResponseWriter, r *http.Request) {
			s.servePlatform(w, r, h.kind, h.fn)
		})
	}
	s.routePlatformAdmin(mux)
}

// servePlatform decodes a component API call, counts it in flight, applies
// the injected fault, answers it with fn and records it in the ledger.
func (s *Sim) servePlatform(w http.ResponseWriter, r *http.Request, kind string, fn platformHandler) {
	var req platformRequest
	badJSON := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req) != nil
	q := r.URL.Query()
	tok := q.Get("component_access_token")
	if tok == "" {
		tok = q.Get("access_token") // the newer pages' name
	}
	c := call{kind: kind, appID: req.ComponentAppID, component: req.ComponentAppID, caller: callerIP(r), start: s.now()}
	id := req.ComponentAppID
	switch kind {
	case KindAuthorizer:
		c.appID, id = req.AuthorizerAppID, req.AuthorizerAppID
	case KindQueryAuth:
		c.code, id = req.AuthorizationCode, req.AuthorizationCode
		s.mu.Lock()
		c.appID = ""
		if pl := s.platforms[req.ComponentAppID]; pl != nil {
			if code := pl.codes[req.AuthorizationCode]; code != nil {
				c.appID = code.authorizer
			}
		}
		s.mu.Unlock()
	}
	defer s.enter(kind, id)()
	if s.injectFault(w, r, c) {
		return
	}
	s.mu.Lock()
	now := s.now()
	var rp reply
	if badJSON {
		rp = s.mpErrLocked(47001, "data format error", now)
	} else {
		rp = fn(c, req, tok, now)
	}
	s.recordLocked(c, rp)
	s.mu.Unlock()
	writeReply(w, rp)
}

// platformLocked finds the platform of a call and checks the caller's IP
// against the whitelist and refusals (61004 on the Open Platform).
func (s *Sim) platformLocked(c call, now time.Time) (*platform, reply, bool) {
	if c.component == "" {
		return nil, s.mpErrLocked(41002, "appid missing", now), false
	}
	pl := s.platforms[c.component]
	switch {
	case pl == nil:
		return nil, s.mpErrLocked(61011, "invalid component", now), false
	case !s.allowedLocked(c.caller) || s.refusedLocked(c.component, c.caller, now):
		return nil, s.mpErrLocked(61004, "access clientip is not registered, requestIP: "+c.caller, now), false
	}
	return pl, reply{}, true
}

// componentTokenCheckLocked checks the component_access_token of a call
// that needs one.
func (s *Sim) componentTokenCheckLocked(c call, tok string, now time.Time) (*platform, reply, bool) {
	pl, rp, ok := s.platformLocked(c, now)
	if !ok {
		return nil, rp, false
	}
	if tok == "" {
		return nil, s.mpErrLocked(41001, "access_token missing", now), false
	}
	k := s.tokens[tok]
	if k == nil || k.kind != KindComponent || k.appID != c.component {
		return nil, s.mpErrLocked(40001, msgNotLatest, now), false
	}
	switch k.state(now) {
	case 42001:
		return nil, s.mpErrLocked(42001, msgExpired, now), false
	case 40001:
		return nil, s.mpErrLocked(40001, msgNotLatest, now), false
	}
	return pl, reply{}, true
}

// componentTokenLocked answers api_component_token.
func (s *Sim) componentTokenLocked(c call, req platformRequest, _ string, now time.Time) reply {
	pl, rp, ok := s.platformLocked(c, now)
	switch {
	case !ok:
		return rp
	case req.ComponentAppSecret == "":
		return s.mpErrLocked(41004, "appsecret missing", now)
	case req.ComponentAppSecret != pl.cfg.Secret:
		return s.mpErrLocked(40125, "invalid appsecret", now)
	}
	created, known := pl.tickets[req.Ticket]
	switch {
	case !known:
		return s.mpErrLocked(61006, "component ticket is invalid", now)
	case !now.Before(created.Add(pl.cfg.TicketTTL)):
		return s.mpErrLocked(61005, "component ticket is expired", now)
	case !s.takeQuotaLocked(KindComponent, c.component, s.cfg.DailyQuota, now):
		return s.mpErrLocked(45009, "reach max api daily quota limit", now)
	}
	key := seriesKey{KindComponent, c.component}
	k := s.rotateLocked(s.seriesLocked(key), key, KindComponent, c.component, now)
	return reply{
		body:   map[string]any{"component_access_token": k.value, "expires_in": expiresIn(s.cfg.TokenTTL)},
		token:  k.value,
		issued: true,
	}
}

// startPushLocked answers api_start_push_ticket: it restarts stopped
// pushes ("ok") or finds them running ("in a normal state").
func (s *Sim) startPushLocked(c call, req platformRequest, _ string, now time.Time) reply {
	pl, rp, ok := s.platformLocked(c, now)
	switch {
	case !ok:
		return rp
	case req.ComponentSecret == "":
		return s.mpErrLocked(41004, "appsecret missing", now)
	case req.ComponentSecret != pl.cfg.Secret:
		return s.mpErrLocked(40125, "invalid appsecret", now)
	}
	msg := "in a normal state"
	if pl.fault.Stopped {
		pl.fault.Stopped, pl.nextPush, msg = false, time.Time{}, "ok"
		s.wakePushes()
	}
	return reply{body: apiError{0, msg}}
}

// preAuthLocked answers api_create_preauthcode.
func (s *Sim) preAuthLocked(c call, _ platformRequest, tok string, now time.Time) reply {
	pl, rp, ok := s.componentTokenCheckLocked(c, tok, now)
	if !ok {
		return rp
	}
	code := s.randomValueLocked("preauthcode@@@")
	pl.preAuth[code] = now.Add(pl.cfg.PreAuthTTL)
	return reply{body: map[string]any{"pre_auth_code": code, "expires_in": expiresIn(pl.cfg.PreAuthTTL)}}
}
