// Package platformapi serves the read side of a WeChat Open Platform
// third-party platform (第三方平台) on every replica, beside the apps'
// routes:
//
//	GET  /v1/platforms/{name}/token                                    the component token
//	POST /v1/platforms/{name}/token/invalidate                         compare-and-refresh of it
//	GET  /v1/platforms/{name}/authorizers                              the authorizers (?limit, ?after)
//	GET  /v1/platforms/{name}/authorizers/{appid}/token                an authorizer's token
//	POST /v1/platforms/{name}/authorizers/{appid}/token/invalidate     compare-and-refresh of it
//	POST /v1/platforms/{name}/preauth                                  a pre-auth code and the authorization page
//
// Tokens are served from the replica's cache through the API's own code
// path for a credential (api.API.CredToken, InvalidateCred), with the same
// answer, headers and errors as an app's token. The authorizer list and
// the cause of a missing authorizer token are read from etcd. The
// pre-auth code is asked of WeChat with the component token in the cache:
// api_create_preauthcode mints no access token, so any replica may call it.
//
// Errors are the API's JSON {"code","message"}: 404 unknown_platform,
// unknown_authorizer, unauthorized_authorizer; 400 bad_request; 503
// no_credential, etcd_unavailable; 502 wechat_error; and those of the
// token routes. No token, pre-auth code or secret is logged or put in an
// error.
package platformapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/wxtoken/wxtoken/api"
	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// Patterns of the routes, for the API's mux.
const (
	PatternToken            = "GET /v1/platforms/{name}/token"
	PatternInvalidate       = "POST /v1/platforms/{name}/token/invalidate"
	PatternAuthorizers      = "GET /v1/platforms/{name}/authorizers"
	PatternAuthorizerToken  = "GET /v1/platforms/{name}/authorizers/{appid}/token"
	PatternAuthorizerReport = "POST /v1/platforms/{name}/authorizers/{appid}/token/invalidate"
	PatternPreAuth          = "POST /v1/platforms/{name}/preauth"
)

// Kinds of the token answers (the "kind" field).
const (
	KindComponent  = "component"
	KindAuthorizer = "authorizer"
)

// DefaultTimeout bounds the etcd reads and the WeChat call of one request.
const DefaultTimeout = 10 * time.Second

// maxBody bounds a request body (the API's own bound).
const maxBody = 4 << 10

// Tokens serves credentials as the API serves an app's token; *api.API
// implements it. Both are safe for concurrent use.
type Tokens interface {
	CredToken(app api.App, cred string) (api.TokenResponse, error)
	InvalidateCred(ctx context.Context, app api.App, cred, token string) (api.TokenResponse, error)
}

// Records are the replica's cached records; *tokenstore.Cache implements
// it. Get never blocks.
type Records interface {
	Get(cred string) (tokenstore.Record, bool)
}

// Store reads what etcd says of authorizers; *tokenstore.Store implements
// it.
type Store interface {
	Authorizer(ctx context.Context, platform, appID string) (tokenstore.AuthorizerState, bool, error)
	Authorizers(ctx context.Context, platform, after string, limit int) ([]tokenstore.Authorizer, string, error)
}

// PreAuther asks WeChat for a pre-auth code; *fetcher.Client implements
// it.
type PreAuther interface {
	CreatePreAuthCode(ctx context.Context, componentToken, componentAppID string) (fetcher.PreAuthCode, error)
}

// Platform is a configured platform.
type Platform struct {
	Name           string // in URLs
	ComponentAppID string
}

// Config configures a Handler. Every field but Logger is required.
type Config struct {
	Platforms []Platform
	Tokens    Tokens
	Records   Records
	Store     Store
	PreAuth   PreAuther
	// Timeout bounds the etcd reads and the WeChat call of one request;
	// default DefaultTimeout.
	Timeout time.Duration
	Logger  *slog.Logger
}

// Handler serves the platforms' routes (Routes). It is safe for
// concurrent use.
type Handler struct {
	platforms map[string]Platform
	tokens    Tokens
	records   Records
	store     Store
	preAuth   PreAuther
	timeout   time.Duration
	log       *slog.Logger
}

// New validates cfg and returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Tokens == nil || cfg.Records == nil || cfg.Store == nil || cfg.PreAuth == nil {
		return nil, errors.New("platformapi: Tokens, Records, Store and PreAuth are required")
	}
	h := &Handler{platforms: make(map[string]Platform, len(cfg.Platforms)), tokens: cfg.Tokens, records: cfg.Records,
		store: cfg.Store, preAuth: cfg.PreAuth, timeout: cfg.Timeout, log: cfg.Logger}
	for _, p := range cfg.Platforms {
		if p.Name == "" || p.ComponentAppID == "" {
			return nil, errors.New("platformapi: a platform without a name or a component appid")
		}
		if _, dup := h.platforms[p.Name]; dup {
			return nil, fmt.Errorf("platformapi: platform %q twice", p.Name)
		}
		h.platforms[p.Name] = p
	}
	if h.timeout <= 0 {
		h.timeout = DefaultTimeout
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("component", "platform-api")
	return h, nil
}

// Routes are the Handler's routes, to mount on the API (api.API.Mount),
// labelled as the API labels its own: token reads "token",
// invalidations "invalidate", the rest "platform".
func (h *Handler) Routes() []api.Route {
	return []api.Route{
		{Pattern: PatternToken, Handler: h.componentToken(false), Label: "token"},
		{Pattern: PatternInvalidate, Handler: h.componentToken(true), Label: "invalidate"},
		{Pattern: PatternAuthorizers, Handler: http.HandlerFunc(h.authorizers), Label: "platform"},
		{Pattern: PatternAuthorizerToken, Handler: h.authorizerToken(false), Label: "token"},
		{Pattern: PatternAuthorizerReport, Handler: h.authorizerToken(true), Label: "invalidate"},
		{Pattern: PatternPreAuth, Handler: http.HandlerFunc(h.preauth), Label: "platform"},
	}
}

// platform returns the platform the request names, or answers 404
// unknown_platform.
func (h *Handler) platform(w http.ResponseWriter, r *http.Request) (Platform, bool) {
	p, ok := h.platforms[r.PathValue("name")]
	if !ok {
		// The name is the caller's: not quoted back.
		api.WriteError(w, errUnknownPlatform)
	}
	return p, ok
}

var errUnknownPlatform = &api.Error{Status: http.StatusNotFound, Code: "unknown_platform", Message: "no platform of that name is configured"}

// badRequest is a 400 bad_request.
func badRequest(msg string) error {
	return &api.Error{Status: http.StatusBadRequest, Code: "bad_request", Message: msg}
}
