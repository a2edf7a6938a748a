package platformapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/wxtoken/wxtoken/api"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// AuthorizerTokenResponse is the answer of an authorizer's token routes:
// an app's token answer (app: the platform, kind: "authorizer") and the
// authorizer's appid.
type AuthorizerTokenResponse struct {
	api.TokenResponse
	AuthorizerAppID string `json:"authorizer_appid"`
}

// Errors of an authorizer that cannot be served.
var (
	errUnknownAuthorizer = &api.Error{Status: http.StatusNotFound, Code: "unknown_authorizer",
		Message: "no account of that appid has authorized this platform"}
	errUnauthorized = &api.Error{Status: http.StatusNotFound, Code: "unauthorized_authorizer",
		Message: "the account has cancelled its authorization of this platform"}
)

// componentApp is how a platform's component token is answered.
func componentApp(p Platform) api.App {
	return api.App{Name: p.Name, Kind: KindComponent, AppID: p.ComponentAppID}
}

// authorizerApp is how an authorizer's token is answered.
func authorizerApp(p Platform) api.App { return api.App{Name: p.Name, Kind: KindAuthorizer} }

// request takes the platform of a token route and, when report is set
// (the invalidate routes), the token reported; false once it answered an
// error.
func (h *Handler) request(w http.ResponseWriter, r *http.Request, report bool) (p Platform, token string, ok bool) {
	if p, ok = h.platform(w, r); !ok || !report {
		return p, "", ok
	}
	req, err := api.ParseInvalidate(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		api.WriteError(w, err)
		return p, "", false
	}
	return p, req.AccessToken, true
}

// componentToken answers the component token: a read, or with report a
// compare-and-refresh of the token reported.
func (h *Handler) componentToken(report bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, token, ok := h.request(w, r, report)
		if !ok {
			return
		}
		cred := tokenstore.ComponentCred(p.Name)
		var resp api.TokenResponse
		var err error
		if token == "" {
			resp, err = h.tokens.CredToken(componentApp(p), cred)
		} else {
			resp, err = h.tokens.InvalidateCred(r.Context(), componentApp(p), cred, token)
		}
		if err != nil {
			api.WriteError(w, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, resp)
	}
}

// authorizerToken answers an authorizer's token, as componentToken does.
func (h *Handler) authorizerToken(report bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if p, token, ok := h.request(w, r, report); ok {
			h.serveAuthorizer(w, r, p, token)
		}
	}
}

// serveAuthorizer answers an authorizer's token: a read (report "") or a
// compare-and-refresh of the token report. A revoked record answers
// unauthorized_authorizer; when no token can be served, etcd says why.
func (h *Handler) serveAuthorizer(w http.ResponseWriter, r *http.Request, p Platform, report string) {
	appID := r.PathValue("appid")
	if !tokenstore.ValidAuthorizer(appID) {
		api.WriteError(w, errUnknownAuthorizer)
		return
	}
	cred := tokenstore.AuthorizerCred(p.Name, appID)
	if rec, ok := h.records.Get(cred); ok && rec.Revoked {
		api.WriteError(w, errUnauthorized)
		return
	}
	var resp api.TokenResponse
	var err error
	if report == "" {
		resp, err = h.tokens.CredToken(authorizerApp(p), cred)
	} else {
		resp, err = h.tokens.InvalidateCred(r.Context(), authorizerApp(p), cred, report)
	}
	if err != nil {
		api.WriteError(w, h.why(r.Context(), p, appID, cred, err))
		return
	}
	api.WriteJSON(w, http.StatusOK, AuthorizerTokenResponse{TokenResponse: resp, AuthorizerAppID: appID})
}

// why turns no_credential for an authorizer into what etcd knows: the
// authorizer is gone (unauthorized_authorizer: its record is revoked, or
// its newest event is unauthorized) or was never seen (unknown_authorizer:
// no record and no state). An authorized one without a token yet, or an
// etcd that does not answer, keeps err.
func (h *Handler) why(ctx context.Context, p Platform, appID, cred string, err error) error {
	if e, ok := errors.AsType[*api.Error](err); !ok || e.Code != "no_credential" {
		return err
	}
	rec, hasRecord := h.records.Get(cred)
	if hasRecord && rec.Revoked {
		return errUnauthorized
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	st, hasState, serr := h.store.Authorizer(ctx, p.Name, appID)
	switch {
	case serr != nil:
		h.log.Warn("read authorizer state", "platform", p.Name, "authorizer", appID, "err", serr)
		return err
	case hasState && st.State == tokenstore.AuthorizerUnauthorized:
		return errUnauthorized
	case !hasState && !hasRecord:
		return errUnknownAuthorizer
	}
	return err
}
