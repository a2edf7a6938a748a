// Package api is a replica's HTTP API: token and ticket reads from the
// cache, compare-and-refresh invalidation, health, readiness, metrics and
// status. It reads only the cache; its only writes are invalidation reports.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// Defaults for Config.
const (
	DefaultMargin         = 30 * time.Second
	DefaultOverlap        = 5 * time.Minute
	DefaultInvalidateWait = 10 * time.Second
	maxBody               = 4 << 10
)

// App is an app as the API exposes it.
type App struct {
	Name    string
	Kind    string   // classic | stable | wecom
	AppID   string   // shown in status and signatures, never the secret
	Tickets []string // enabled ticket types
	Budget  int      // fetches per China-time day, shown in status
	// ExposeTicket serves the raw tickets on GET /v1/apps/{app}/ticket/{type};
	// otherwise that route answers 404 unknown_ticket and the tickets serve
	// only the JS-SDK signature, inside the replica.
	ExposeTicket bool
}

// Route is an extra handler on the API's mux, with a Go 1.22 mux pattern
// such as "GET /v1/apps/{app}/jssdk/signature". Label is the route label
// of its requests in wxtoken_http_request_duration_seconds: "token",
// "invalidate", "jssdk", "proxy", "ui", "platform_events" or "platform";
// anything else counts as "other".
type Route struct {
	Pattern string
	Handler http.Handler
	Label   string
}

// Config configures an API.
type Config struct {
	Cache *tokenstore.Cache
	Store *tokenstore.Store
	Apps  []App
	Node  string
	// Margin: a credential is never handed out with less than this left.
	Margin time.Duration
	// Overlap: how long WeChat keeps an old classic token alive after the
	// next fetch; bounds how long a caller may keep a token.
	Overlap time.Duration
	// InvalidateWait bounds how long an invalidation waits for the new token.
	InvalidateWait time.Duration
	// ReadWait bounds how long a read waits, when the cached credential may
	// no longer be handed out and a fetch is due or in flight, for the new
	// record instead of answering no_credential (0: no wait).
	ReadWait time.Duration
	// IgnoreIntents makes reads ignore fetches in flight when bounding how
	// long a token may be kept. Only the fault suite sets it.
	IgnoreIntents bool
	// ReportLimit, if set, is asked before a report that would make the
	// leader refresh cred is written (once per record on this replica, not
	// per caller); false refuses it with 429 rate_limited and Retry-After.
	// ctx is the request's (the caller is in it). See access.Limiter.
	ReportLimit func(ctx context.Context, cred string) (retryAfter time.Duration, ok bool)
	// Leader names the current leader, for status.
	Leader func(ctx context.Context) (string, error)
	// Registerer receives the API's collectors, and Gatherer is what GET
	// /metrics serves: the replica's registry. Both default to a new
	// registry of the API's own.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	Logger     *slog.Logger
	Now        func() time.Time
}

// API serves the HTTP API. It is an http.Handler, safe for concurrent use.
type API struct {
	cfg  Config
	apps map[string]App
	mux  *http.ServeMux
	log  *slog.Logger

	m        *metrics
	routes   map[string]route      // by mux pattern; read-only once serving
	reported sync.Map              // reportKey -> *reportCall
	tokens   map[string]*tokenSlot // by app; read-only after New
}

// New validates cfg and returns an API.
func New(cfg Config) (*API, error) {
	if cfg.Cache == nil || cfg.Store == nil {
		return nil, errors.New("api: Cache and Store are required")
	}
	if cfg.Margin == 0 {
		cfg.Margin = DefaultMargin
	}
	if cfg.Overlap == 0 {
		cfg.Overlap = DefaultOverlap
	}
	if cfg.InvalidateWait == 0 {
		cfg.InvalidateWait = DefaultInvalidateWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Registerer == nil && cfg.Gatherer == nil {
		reg := prometheus.NewRegistry()
		cfg.Registerer, cfg.Gatherer = reg, reg
	}
	if cfg.Registerer == nil || cfg.Gatherer == nil {
		return nil, errors.New("api: Registerer and Gatherer go together")
	}
	a := &API{cfg: cfg, apps: make(map[string]App, len(cfg.Apps)), mux: http.NewServeMux(), log: cfg.Logger.With("component", "api"),
		routes: map[string]route{}, tokens: make(map[string]*tokenSlot, len(cfg.Apps))}
	for _, app := range cfg.Apps {
		a.apps[app.Name] = app
		a.tokens[app.Name] = &tokenSlot{cred: tokenstore.CredName(app.Name, "token")}
	}
	var err error
	if a.m, err = a.newMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	a.handle("GET /v1/apps/{app}/token", routeToken, a.getToken)
	a.handle("POST /v1/apps/{app}/token/invalidate", routeInvalidate, a.invalidate)
	a.handle("GET /v1/apps/{app}/ticket/{type}", routeTicket, a.getTicket)
	a.handle("GET /healthz", routeHealthz, a.healthz)
	a.handle("GET /readyz", routeReadyz, a.readyz)
	a.handle("GET /metrics", routeMetrics, metricsHandler(cfg.Gatherer).ServeHTTP)
	a.handle("GET /v1/status", routeStatus, a.status)
	a.routeUI()
	a.handle("/", routeOther, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return a, nil
}

// Mount adds handlers beside the built-in ones (the WeChat proxy, JS-SDK
// signatures). Call it before the API serves; it is not safe for use
// concurrently with ServeHTTP.
func (a *API) Mount(routes ...Route) {
	for _, rt := range routes {
		a.routes[rt.Pattern] = routeNamed(rt.Label)
		a.mux.Handle(rt.Pattern, rt.Handler)
	}
}

// ServeHTTP implements http.Handler. Token reads skip the mux. Every
// request is timed in wxtoken_http_request_duration_seconds.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if app, ok := tokenApp(r); ok {
		a.m.observe(routeToken, a.serveToken(w, app), start)
		return
	}
	a.serveMux(w, r, start)
}

// TokenResponse is the answer of the token endpoints.
type TokenResponse struct {
	App         string    `json:"app"`
	Kind        string    `json:"kind"`
	AccessToken string    `json:"access_token"`
	ExpiresAt   time.Time `json:"expires_at"`
	ExpiresIn   int64     `json:"expires_in"` // seconds the caller may keep it
	Seq         uint64    `json:"seq"`
}

// TicketResponse is the answer of the ticket endpoint.
type TicketResponse struct {
	App       string    `json:"app"`
	Type      string    `json:"type"`
	Ticket    string    `json:"ticket"`
	ExpiresAt time.Time `json:"expires_at"`
	ExpiresIn int64     `json:"expires_in"`
	Seq       uint64    `json:"seq"`
}

// Error is the body of every error answer, and the error that the token
// methods (Token, Ticket, Invalidate) return; Status is the HTTP status it
// is served with.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfter, if positive, is sent as Retry-After (whole seconds,
	// rounded up); a 503 without it says 1.
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// WriteError writes err as a JSON error answer: a *Error with its status
// (and Retry-After on 503), anything else as a 500.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: err.Error()}
	}
	switch {
	case e.RetryAfter > 0:
		w.Header().Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	case e.Status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	}
	writeError(w, e.Status, e.Code, e.Message)
}

// App returns the app named name and whether there is one.
func (a *API) App(name string) (App, bool) {
	app, ok := a.apps[name]
	return app, ok
}

func (a *API) app(name string) (App, error) {
	app, ok := a.apps[name]
	if !ok {
		return app, &Error{Status: http.StatusNotFound, Code: "unknown_app", Message: fmt.Sprintf("unknown app %q", name)}
	}
	return app, nil
}

// Token returns the current access token of app from the cache. It never
// blocks and is safe for concurrent use. Errors are *Error: unknown_app, or
// no_credential when no usable token is cached.
func (a *API) Token(app string) (TokenResponse, error) {
	ap, err := a.app(app)
	if err != nil {
		return TokenResponse{}, err
	}
	return a.CredToken(ap, a.tokenCred(ap.Name))
}

func (a *API) getToken(w http.ResponseWriter, r *http.Request) {
	resp, err := a.Token(r.PathValue("app"))
	if err != nil {
		WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func tokenResponse(app App, rec tokenstore.Record, keep int64) TokenResponse {
	return TokenResponse{App: app.Name, Kind: app.Kind, AccessToken: rec.Value, ExpiresAt: rec.ExpiresAt, ExpiresIn: keep, Seq: rec.Seq}
}

// Ticket returns app's current ticket of type typ from the cache. It never
// blocks and is safe for concurrent use. Errors are *Error: unknown_app,
// unknown_ticket, or no_credential.
func (a *API) Ticket(app, typ string) (TicketResponse, error) {
	ap, err := a.app(app)
	if err != nil {
		return TicketResponse{}, err
	}
	enabled := false
	for _, t := range ap.Tickets {
		enabled = enabled || t == typ
	}
	if !enabled {
		return TicketResponse{}, &Error{Status: http.StatusNotFound, Code: "unknown_ticket", Message: fmt.Sprintf("app %q has no %q ticket enabled", ap.Name, typ)}
	}
	rec, keep, err := a.usable(tokenstore.CredName(ap.Name, typ))
	if err != nil {
		return TicketResponse{}, err
	}
	return TicketResponse{App: ap.Name, Type: typ, Ticket: rec.Value, ExpiresAt: rec.ExpiresAt, ExpiresIn: keep, Seq: rec.Seq}, nil
}

func (a *API) getTicket(w http.ResponseWriter, r *http.Request) {
	if app, ok := a.apps[r.PathValue("app")]; ok && !app.ExposeTicket {
		WriteError(w, &Error{Status: http.StatusNotFound, Code: "unknown_ticket",
			Message: fmt.Sprintf("app %q does not expose its tickets (expose_ticket: true); the JS-SDK signature uses them inside the replica", app.Name)})
		return
	}
	resp, err := a.Ticket(r.PathValue("app"), r.PathValue("type"))
	if err != nil {
		WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// InvalidateRequest is the body of an invalidation.
type InvalidateRequest struct {
	AccessToken string `json:"access_token"`
}

// Invalidate is compare-and-refresh: a report that token, app's current
// token, failed asks the leader for one refresh and waits (bounded by
// InvalidateWait and ctx) for the new token; a report on any other token
// answers with the current one at once. It is safe for concurrent use: any
// number of reports of one token cause one refresh. Errors are *Error:
// unknown_app, bad_request, no_credential, etcd_unavailable, refresh_pending.
func (a *API) Invalidate(ctx context.Context, app, token string) (TokenResponse, error) {
	ap, err := a.app(app)
	if err != nil {
		return TokenResponse{}, err
	}
	return a.InvalidateCred(ctx, ap, tokenstore.CredName(ap.Name, "token"), token)
}

func (a *API) invalidate(w http.ResponseWriter, r *http.Request) {
	if _, err := a.app(r.PathValue("app")); err != nil {
		WriteError(w, err)
		return
	}
	req, err := ParseInvalidate(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		WriteError(w, err)
		return
	}
	resp, err := a.Invalidate(r.Context(), r.PathValue("app"), req.AccessToken)
	if err != nil {
		WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (a *API) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *API) readyz(w http.ResponseWriter, _ *http.Request) {
	if !a.cfg.Cache.Synced() {
		writeError(w, http.StatusServiceUnavailable, "not_ready", "not following etcd: serving cached credentials until they expire")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, Error{Code: code, Message: msg})
}
