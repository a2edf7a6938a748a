package jssdk

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/wxtoken/wxtoken/api"
)

// Pattern is where a Handler is mounted on a replica's API.
const Pattern = "GET /v1/apps/{app}/jssdk/signature"

// Tickets is where a Handler reads apps and their jsapi tickets; *api.API
// implements it. It must be safe for concurrent use.
type Tickets interface {
	App(name string) (api.App, bool)
	Ticket(app, typ string) (api.TicketResponse, error)
}

// Signature is the answer of the signature endpoint, ready for wx.config.
type Signature struct {
	AppID     string `json:"appId"`
	Timestamp int64  `json:"timestamp"`
	NonceStr  string `json:"nonceStr"`
	Signature string `json:"signature"`
	URL       string `json:"url"` // the page URL signed
}

// Config configures a Handler.
type Config struct {
	Tickets Tickets
	// Domains maps each app to the page hosts it signs for (see
	// HostAllowed); an app without any signs nothing.
	Domains map[string][]string
	// Now gives the timestamp; default time.Now.
	Now func() time.Time
}

// Handler serves GET /v1/apps/{app}/jssdk/signature?url=PAGE_URL with a
// Signature made from a fresh nonce and the app's cached jsapi ticket. It is
// safe for concurrent use. Errors are the API's JSON errors: 400 bad_url
// (see CheckURL; the URL must be percent-encoded, so the query holds url
// and nothing else), 403 forbidden_url (the page's host is not among the
// app's domains), 404 unknown_app or unknown_ticket, 503 no_credential.
type Handler struct {
	tickets Tickets
	domains map[string][]string
	now     func() time.Time
}

// New validates cfg and returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Tickets == nil {
		return nil, errors.New("jssdk: Tickets is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Handler{tickets: cfg.Tickets, domains: cfg.Domains, now: cfg.Now}, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("app")
	app, ok := h.tickets.App(name)
	if !ok {
		api.WriteError(w, &api.Error{Status: http.StatusNotFound, Code: "unknown_app", Message: fmt.Sprintf("unknown app %q", name)})
		return
	}
	q := r.URL.Query()
	if len(q) > 1 || len(q["url"]) > 1 {
		api.WriteError(w, badURL(errors.New("the query must hold url alone: percent-encode the page URL (encodeURIComponent)")))
		return
	}
	page := q.Get("url")
	if err := CheckURL(page); err != nil {
		api.WriteError(w, badURL(err))
		return
	}
	t, err := h.tickets.Ticket(app.Name, "jsapi")
	if err != nil {
		api.WriteError(w, err)
		return
	}
	if host := PageHost(page); !HostAllowed(host, h.domains[app.Name]) {
		api.WriteError(w, &api.Error{Status: http.StatusForbidden, Code: "forbidden_url",
			Message: fmt.Sprintf("app %q signs pages on its jssdk_domains only, not on %q", app.Name, host)})
		return
	}
	sig := Signature{AppID: app.AppID, Timestamp: h.now().Unix(), NonceStr: rand.Text(), URL: page}
	sig.Signature = Sign(t.Ticket, sig.NonceStr, sig.Timestamp, page)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(sig)
}

func badURL(err error) *api.Error {
	return &api.Error{Status: http.StatusBadRequest, Code: "bad_url", Message: err.Error()}
}
