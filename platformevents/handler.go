// Package platformevents serves a WeChat Open Platform third-party
// platform's authorization-event URL, POST /v1/platforms/{name}/events:
// WeChat pushes component_verify_ticket every 10 minutes there, and the
// authorized, updateauthorized and unauthorized events. Every replica
// serves it; each push is verified (msg_signature), decrypted (the
// current EncodingAESKey, then the previous one) and stored in etcd at
// once: the newest ticket by compare-and-swap, an authorization code only
// if absent, an authorizer's state if newer.
//
// It takes no client credentials: the signature is the authentication.
// It answers WeChat "success" for every push it verified, even one it did
// not store (an old or repeated ticket), since WeChat retries otherwise;
// a push that does not verify gets 400 and a JSON error. Tickets and
// codes never appear in its logs, metrics or answers.
package platformevents

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxtoken/wxtoken/access"
	"github.com/wxtoken/wxtoken/tokenstore"
	"github.com/wxtoken/wxtoken/wxcrypt"
)

// Pattern is where a Handler is mounted on a replica's API.
const Pattern = "POST /v1/platforms/{name}/events"

// Limits and windows of a push.
const (
	// MaxBody bounds a pushed body; WeChat's are under 1 KiB.
	MaxBody = 64 << 10
	// TicketTTL is how long a component_verify_ticket is valid: an older
	// one is not stored.
	TicketTTL = 12 * time.Hour
	// MaxSkew is how far in the future an event may be dated.
	MaxSkew = tokenstore.TicketSkew
	// DefaultCodeTTL is the validity assumed for an authorization code
	// pushed without AuthorizationCodeExpiredTime.
	DefaultCodeTTL = time.Hour
)

// Store is where verified events go; *tokenstore.Store implements it.
type Store interface {
	PutTicket(ctx context.Context, platform string, t wxcrypt.Ticket, now time.Time) (bool, time.Time, error)
	PutCode(ctx context.Context, platform string, c tokenstore.AuthCode) (bool, error)
	PutAuthorizerState(ctx context.Context, platform string, st tokenstore.AuthorizerState) (bool, error)
}

// Platform is a platform whose pushes the Handler accepts.
type Platform struct {
	Name    string           // in the URL
	Crypter *wxcrypt.Crypter // its token, component appid and keys
}

// Config configures a Handler.
type Config struct {
	Platforms  []Platform
	Store      Store
	Node       string // recorded with each code and state
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time
}

// Handler is the events URL of every configured platform.
type Handler struct {
	platforms map[string]*wxcrypt.Crypter
	store     Store
	node      string
	log       *slog.Logger
	now       func() time.Time
	events    *prometheus.CounterVec
}

// Results of a push, the values of the result label.
const (
	resultStored          = "stored"           // stored in etcd
	resultDuplicate       = "duplicate"        // a code already stored
	resultStale           = "stale"            // verified, not stored: older than what is stored, or expired
	resultIgnored         = "ignored"          // verified, an InfoType this version does not handle
	resultBadSignature    = "bad_signature"    // msg_signature does not match
	resultUndecryptable   = "undecryptable"    // does not decrypt under any key
	resultWrongAppID      = "wrong_appid"      // addressed to another component appid
	resultBadMessage      = "bad_message"      // not a push: no aes, bad XML, fields missing
	resultUnknownPlatform = "unknown_platform" // no such platform (counted with platform="")
	resultError           = "error"            // etcd failed: 503, WeChat retries
)

// New returns the Handler of cfg's platforms.
func New(cfg Config) (*Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("platformevents: no store")
	}
	h := &Handler{platforms: map[string]*wxcrypt.Crypter{}, store: cfg.Store, node: cfg.Node, log: cfg.Logger, now: cfg.Now}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("component", "platform-events")
	if h.now == nil {
		h.now = time.Now
	}
	for _, p := range cfg.Platforms {
		if p.Name == "" || p.Crypter == nil {
			return nil, errors.New("platformevents: a platform without a name or a crypter")
		}
		h.platforms[p.Name] = p.Crypter
	}
	h.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wxtoken_platform_events_total",
		Help: "Pushes to the platforms' event URLs, by platform, InfoType (ticket, authorized, updateauthorized, unauthorized, other; unknown before decryption) and result.",
	}, []string{"platform", "type", "result"})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(h.events); err != nil {
			return nil, err
		}
	}
	for name := range h.platforms {
		for _, typ := range []string{"ticket", wxcrypt.InfoAuthorized, wxcrypt.InfoUnauthorized} {
			h.events.WithLabelValues(name, typ, resultStored) // present from the start, at 0
		}
		h.events.WithLabelValues(name, "unknown", resultBadSignature)
	}
	return h, nil
}

// Collector is the Handler's counter, for a registry of the caller's.
func (h *Handler) Collector() prometheus.Collector { return h.events }

// ServeHTTP handles one push.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	c, ok := h.platforms[name]
	if !ok {
		// The name is the caller's: never a label value.
		h.events.WithLabelValues("", "unknown", resultUnknownPlatform).Inc()
		writeError(w, http.StatusNotFound, "unknown_platform", "no platform of that name is configured")
		return
	}
	q := r.URL.Query()
	if q.Get("encrypt_type") != "aes" {
		h.refuse(w, name, resultBadMessage, "bad_request", "want encrypt_type=aes (safe mode) with msg_signature, timestamp and nonce")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		h.events.WithLabelValues(name, "unknown", resultBadMessage).Inc()
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "a push is at most 64 KiB")
		return
	}
	opened, err := c.Open(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), body)
	switch {
	case err == nil:
	case errors.Is(err, wxcrypt.ErrSignature):
		h.refuse(w, name, resultBadSignature, "bad_signature", "msg_signature does not sign this push with the platform's token")
		return
	case errors.Is(err, wxcrypt.ErrAppID):
		h.refuse(w, name, resultWrongAppID, "wrong_appid", "the push is addressed to another component appid")
		return
	case errors.Is(err, wxcrypt.ErrCiphertext):
		h.refuse(w, name, resultUndecryptable, "undecryptable", "the push does not decrypt with encoding_aes_key or previous_encoding_aes_key")
		return
	default: // wxcrypt.ErrMalformed
		h.refuse(w, name, resultBadMessage, "bad_request", "not a push: "+err.Error())
		return
	}
	if opened.PreviousKey {
		h.log.Warn("push decrypted with previous_encoding_aes_key: WeChat has not switched to the new key yet", "platform", name)
	}
	ev, err := wxcrypt.ParseEvent(opened.Msg)
	switch {
	case errors.Is(err, wxcrypt.ErrUnknownEvent):
		h.events.WithLabelValues(name, "other", resultIgnored).Inc()
		h.log.Debug("push of an event this version ignores", "platform", name, "event", ev)
		writeSuccess(w)
		return
	case err != nil:
		h.refuse(w, name, resultBadMessage, "bad_request", "the decrypted event: "+err.Error())
		return
	case ev.AppID != c.AppID():
		h.refuse(w, name, resultWrongAppID, "wrong_appid", "the event is addressed to another component appid")
		return
	}
	typ, result, err := h.store1(r.Context(), name, ev)
	h.events.WithLabelValues(name, typ, result).Inc()
	if err != nil {
		// The store's errors name keys and etcd's trouble, never a value.
		h.log.Error("storing a push failed: WeChat will retry it", "platform", name, "event", ev, "err", err)
		writeError(w, http.StatusServiceUnavailable, "etcd_unavailable", "the push could not be stored; retry")
		return
	}
	h.log.Info("push", "platform", name, "event", ev, "result", result)
	writeSuccess(w)
}

// store1 stores a verified event and returns its type and result labels.
func (h *Handler) store1(ctx context.Context, name string, ev wxcrypt.Event) (typ, result string, err error) {
	now := h.now()
	switch ev.InfoType {
	case wxcrypt.InfoVerifyTicket:
		typ = "ticket"
		t, _ := wxcrypt.TicketOf(ev)
		// A captured push keeps its signature: an expired ticket is not
		// stored, and one dated ahead would hold off the next ones.
		if wxcrypt.CheckAge(t.CreateTime, now, TicketTTL, MaxSkew) != nil {
			return typ, resultStale, nil
		}
		stored, _, err := h.store.PutTicket(ctx, name, t, now)
		if err != nil {
			return typ, resultError, err
		}
		return typ, pick(stored, resultStored, resultStale), nil
	case wxcrypt.InfoAuthorized, wxcrypt.InfoUpdateAuthorized:
		typ = ev.InfoType
		if !tokenstore.ValidAuthorizer(ev.AuthorizerAppID) {
			return typ, resultBadMessage, nil
		}
		exp := ev.AuthorizationCodeExpiredTime
		if exp.IsZero() {
			exp = ev.CreateTime.Add(DefaultCodeTTL)
		}
		if !now.Before(exp) || ev.CreateTime.Sub(now) > MaxSkew {
			return typ, resultStale, nil // a replay of a code that cannot be exchanged
		}
		created, err := h.store.PutCode(ctx, name, tokenstore.AuthCode{Authorizer: ev.AuthorizerAppID, Code: ev.AuthorizationCode,
			ExpiresAt: exp, InfoType: ev.InfoType, CreateTime: ev.CreateTime, Node: h.node})
		if err != nil {
			return typ, resultError, err
		}
		if _, err := h.store.PutAuthorizerState(ctx, name, tokenstore.AuthorizerState{AppID: ev.AuthorizerAppID,
			State: tokenstore.AuthorizerAuthorized, At: ev.CreateTime, Node: h.node}); err != nil {
			return typ, resultError, err
		}
		return typ, pick(created, resultStored, resultDuplicate), nil
	case wxcrypt.InfoUnauthorized:
		typ = ev.InfoType
		if !tokenstore.ValidAuthorizer(ev.AuthorizerAppID) {
			return typ, resultBadMessage, nil
		}
		if ev.CreateTime.Sub(now) > MaxSkew {
			return typ, resultStale, nil
		}
		stored, err := h.store.PutAuthorizerState(ctx, name, tokenstore.AuthorizerState{AppID: ev.AuthorizerAppID,
			State: tokenstore.AuthorizerUnauthorized, At: ev.CreateTime, Node: h.node})
		if err != nil {
			return typ, resultError, err
		}
		return typ, pick(stored, resultStored, resultStale), nil
	}
	return "other", resultIgnored, nil
}

func pick(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

// refuse counts and answers a push that did not verify.
func (h *Handler) refuse(w http.ResponseWriter, name, result, code, msg string) {
	h.events.WithLabelValues(name, "unknown", result).Inc()
	h.log.Warn("push refused", "platform", name, "result", result)
	writeError(w, http.StatusBadRequest, code, msg)
}

// writeSuccess is the answer WeChat expects: the plain text "success".
func writeSuccess(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, "success")
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	access.WriteError(w, status, code, msg)
}
