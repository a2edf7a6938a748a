package wechattest

import (
	"fmt"
	"net/http"
	"time"
)

// platformJSON is a Platform on the admin API, durations as Go strings.
type platformJSON struct {
	AppID               string `json:"appid"`
	Secret              string `json:"secret"`
	Token               string `json:"token"`
	EncodingAESKey      string `json:"encoding_aes_key"`
	PushURL             string `json:"push_url"`
	TicketEvery         string `json:"ticket_every"`
	TicketTTL           string `json:"ticket_ttl"`
	PreAuthTTL          string `json:"pre_auth_ttl"`
	CodeTTL             string `json:"code_ttl"`
	RotateRefresh       int    `json:"rotate_refresh"`
	KeepPreviousRefresh bool   `json:"keep_previous_refresh"`
}

func (pj platformJSON) platform() (Platform, error) {
	p := Platform{
		AppID: pj.AppID, Secret: pj.Secret, Token: pj.Token, EncodingAESKey: pj.EncodingAESKey, PushURL: pj.PushURL,
		RotateRefresh: pj.RotateRefresh, KeepPreviousRefresh: pj.KeepPreviousRefresh,
	}
	for _, d := range []struct {
		name string
		in   string
		out  *time.Duration
	}{{"ticket_every", pj.TicketEvery, &p.TicketEvery}, {"ticket_ttl", pj.TicketTTL, &p.TicketTTL},
		{"pre_auth_ttl", pj.PreAuthTTL, &p.PreAuthTTL}, {"code_ttl", pj.CodeTTL, &p.CodeTTL}} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil {
			return Platform{}, fmt.Errorf("%s: %w", d.name, err)
		}
		*d.out = v
	}
	return p, nil
}

// routePlatformAdmin adds the Open Platform admin API:
//
//	POST /_sim/platforms                       {"appid","secret","token","encoding_aes_key","push_url",
//	                                            "ticket_every":"10m","ticket_ttl":"12h","pre_auth_ttl","code_ttl",
//	                                            "rotate_refresh":0,"keep_previous_refresh":false}
//	POST /_sim/platforms/{appid}/push          -> Push (a ticket pushed now)
//	POST /_sim/platforms/{appid}/authorize     {"authorizer_appid","func_info":[1,2],"pre_auth_code"} -> Authorization
//	POST /_sim/platforms/{appid}/unauthorize   {"authorizer_appid"} -> Push
//	POST /_sim/platforms/{appid}/seed          {"authorizer_appids":[...]} or {"prefix":"wxbench","count":10000}
//	                                           -> {"seeded":n} (see SeedAuthorizer; generated appids are
//	                                           prefix + a zero-padded number, 18 characters)
//	PUT  /_sim/platforms/{appid}/push_fault    {"stopped","wrong_key","bad_signature"}
//	PUT  /_sim/platforms/{appid}/key           {"encoding_aes_key"}
//	GET  /_sim/pushes                          -> [Push...]
//	GET  /_sim/inflight?kind=K&id=ID           -> {"max":n} (see MaxInFlight)
//	GET  /_sim/exchanges?code=C                -> {"exchanges":n}
//	GET  /_sim/platforms/{appid}/refresh_token?authorizer=A
//	                                           -> {"refresh_token","authorized"} (see RefreshToken)
//
// A push that fails still answers 200 with the Push and its "err"; the
// authorization code of a failed authorize push is valid.
func (s *Sim) routePlatformAdmin(mux *http.ServeMux) {
	mux.HandleFunc("POST /_sim/platforms", func(w http.ResponseWriter, r *http.Request) {
		var pj platformJSON
		if err := decodeAdmin(w, r, &pj); err != nil {
			adminError(w, err)
			return
		}
		p, err := pj.platform()
		if err == nil {
			err = s.AddPlatform(p)
		}
		if err != nil {
			adminError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_sim/platforms/{appid}/push", func(w http.ResponseWriter, r *http.Request) {
		p, err := s.PushTicket(r.Context(), r.PathValue("appid"))
		if p.Component == "" {
			adminError(w, err)
			return
		}
		writeAdmin(w, p)
	})
	mux.HandleFunc("POST /_sim/platforms/{appid}/authorize", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			AuthorizerAppID string `json:"authorizer_appid"`
			FuncInfo        []int  `json:"func_info"`
			PreAuthCode     string `json:"pre_auth_code"`
		}
		if err := decodeAdmin(w, r, &req); err != nil {
			adminError(w, err)
			return
		}
		a, err := s.Authorize(r.Context(), r.PathValue("appid"), req.AuthorizerAppID, AuthorizeOptions{FuncInfo: req.FuncInfo, PreAuthCode: req.PreAuthCode})
		if a.Code == "" {
			adminError(w, err)
			return
		}
		writeAdmin(w, a)
	})
	mux.HandleFunc("POST /_sim/platforms/{appid}/unauthorize", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			AuthorizerAppID string `json:"authorizer_appid"`
		}
		if err := decodeAdmin(w, r, &req); err != nil {
			adminError(w, err)
			return
		}
		p, err := s.Unauthorize(r.Context(), r.PathValue("appid"), req.AuthorizerAppID)
		if p.Component == "" {
			adminError(w, err)
			return
		}
		writeAdmin(w, p)
	})
	mux.HandleFunc("POST /_sim/platforms/{appid}/seed", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			AppIDs []string `json:"authorizer_appids"`
			Prefix string   `json:"prefix"`
			Count  int      `json:"count"`
		}
		if err := decodeAdmin(w, r, &req); err != nil {
			adminError(w, err)
			return
		}
		if req.Count < 0 || req.Count > 1_000_000 || len(req.Prefix) > 17 {
			adminError(w, fmt.Errorf("seed: count 0..1000000 and a prefix of at most 17 characters"))
			return
		}
		ids := req.AppIDs
		for i := range req.Count {
			ids = append(ids, fmt.Sprintf("%s%0*d", req.Prefix, 18-len(req.Prefix), i))
		}
		for _, id := range ids {
			if _, err := s.SeedAuthorizer(r.PathValue("appid"), id); err != nil {
				adminError(w, err)
				return
			}
		}
		writeAdmin(w, map[string]int{"seeded": len(ids)})
	})
	mux.HandleFunc("PUT /_sim/platforms/{appid}/push_fault", func(w http.ResponseWriter, r *http.Request) {
		var f PushFault
		if err := decodeAdmin(w, r, &f); err != nil {
			adminError(w, err)
			return
		}
		if err := s.SetPushFault(r.PathValue("appid"), f); err != nil {
			adminError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("PUT /_sim/platforms/{appid}/key", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Key string `json:"encoding_aes_key"`
		}
		if err := decodeAdmin(w, r, &req); err != nil {
			adminError(w, err)
			return
		}
		if err := s.SetPlatformKey(r.PathValue("appid"), req.Key); err != nil {
			adminError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_sim/pushes", func(w http.ResponseWriter, r *http.Request) {
		writeAdmin(w, append([]Push{}, s.Pushes()...))
	})
	mux.HandleFunc("GET /_sim/inflight", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		writeAdmin(w, map[string]int{"max": s.MaxInFlight(q.Get("kind"), q.Get("id"))})
	})
	mux.HandleFunc("GET /_sim/exchanges", func(w http.ResponseWriter, r *http.Request) {
		writeAdmin(w, map[string]int{"exchanges": s.Exchanges(r.URL.Query().Get("code"))})
	})
	mux.HandleFunc("GET /_sim/platforms/{appid}/refresh_token", func(w http.ResponseWriter, r *http.Request) {
		comp, authz := r.PathValue("appid"), r.URL.Query().Get("authorizer")
		writeAdmin(w, map[string]any{"refresh_token": s.RefreshToken(comp, authz), "authorized": s.Authorized(comp, authz)})
	})
}
