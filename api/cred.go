package api

import (
	"context"
	"net/http"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// Credentials beside the apps' own tokens (an Open Platform's component
// token and its authorizers' tokens, see package platformapi) are served
// through CredToken and InvalidateCred, by the same rules, with the same
// answer and the same errors as an app's token.

// CredToken is Token for the credential named cred, answered as app's: its
// Name and Kind fill the answer's app and kind, and it need not be a
// configured app. It never blocks longer than ReadWait and is safe for
// concurrent use. Errors are *Error: no_credential.
func (a *API) CredToken(app App, cred string) (TokenResponse, error) {
	rec, keep, err := a.usable(cred)
	if err != nil {
		return TokenResponse{}, err
	}
	return tokenResponse(app, rec, keep), nil
}

// InvalidateCred is Invalidate (compare-and-refresh) for the credential
// named cred, answered as app's (see CredToken). It is safe for
// concurrent use and bounded by InvalidateWait and ctx. Errors are *Error:
// bad_request, no_credential, rate_limited, etcd_unavailable,
// refresh_pending.
func (a *API) InvalidateCred(ctx context.Context, app App, cred, token string) (TokenResponse, error) {
	if token == "" {
		return TokenResponse{}, &Error{Status: http.StatusBadRequest, Code: "bad_request", Message: "no access_token to invalidate"}
	}
	cur, ok := a.cfg.Cache.Get(cred)
	if !ok {
		return TokenResponse{}, &Error{Status: http.StatusServiceUnavailable, Code: "no_credential", Message: "no credential yet for " + cred}
	}
	if cur.Value == token {
		a.m.reports.Inc()
		ctx, cancel := context.WithTimeout(ctx, a.cfg.InvalidateWait)
		defer cancel()
		if err := a.report(ctx, cred, cur.Seq); err != nil {
			return TokenResponse{}, err
		}
	}
	return a.CredToken(app, cred)
}

// Cache is the cache the API serves from.
func (a *API) Cache() *tokenstore.Cache { return a.cfg.Cache }

// Store is the store the API writes its reports to.
func (a *API) Store() *tokenstore.Store { return a.cfg.Store }

// WriteJSON writes v with status as every answer of the API is written:
// Content-Type application/json, Cache-Control no-store.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }
