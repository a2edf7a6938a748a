// Package access decides who may call a replica's API and what they may
// do. A Guard wraps the API's http.Handler: it knows each caller by a
// bearer token (Authorization: Bearer, compared by SHA-256 in constant
// time) or by the common name of a verified client certificate, maps the
// caller to apps (by name, or all; a platform is an app here) and actions
// (read, invalidate, proxy, jssdk, ticket, status, preauth), and refuses
// what a browser could be tricked into sending: a foreign Host (DNS
// rebinding), a foreign Origin, and POST bodies that are not JSON
// (cross-site forms). A Limiter bounds the
// refreshes that reports of dead tokens trigger, per caller and per
// credential.
//
// It knows apps only as names and routes only as paths; it does not import
// the API.
package access

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
)

// Client is a caller the Guard knows.
type Client struct {
	Name string
	// TokenSHA256 is the SHA-256 of the client's bearer token; nil for a
	// client known by CertCN.
	TokenSHA256 []byte
	// CertCN is the common name of the client's certificate, verified by
	// the listener's TLS (client CA); "" for a token client.
	CertCN string
	// Apps are the app names the client may act on; "*" is every app.
	Apps []string
	// Allow is what the client may do.
	Allow Action
}

// Config configures a Guard.
type Config struct {
	Clients []Client
	// Anonymous serves callers that present no credentials as if they were
	// allowed every action on every app. A caller that presents a wrong
	// token is refused all the same.
	Anonymous bool
	// Hosts are names the API answers to in the Host header of a plain
	// HTTP request (port ignored, case-insensitive), beside loopback names
	// and IP addresses, which are always accepted. Requests over TLS or a
	// unix socket are not checked: a rebound name fails the certificate
	// check, and no browser reaches a socket.
	Hosts []string
	// Stats counts refusals; nil counts nothing.
	Stats  *Stats
	Logger *slog.Logger
}

// Guard is an http.Handler that lets a request through to the wrapped
// handler only if its caller may make it. It is safe for concurrent use
// and does not allocate on a granted request without escapes in its path.
//
// Its refusals are JSON {"code","message"}: 401 unauthorized (with
// WWW-Authenticate: Bearer realm="wxtoken"), 403 forbidden, 421 bad_host,
// 403 cross_origin, 415 unsupported_media_type.
type Guard struct {
	next      http.Handler
	clients   []client
	anonymous bool
	hosts     []string
	stats     *Stats
	log       *slog.Logger
}

// client is a Client as the Guard matches it.
type client struct {
	name     string
	hasToken bool
	sum      [sha256.Size]byte
	certCN   string
	allApps  bool
	apps     []string
	allow    Action
}

// anonymousClient is who a caller without credentials is, where allowed.
var anonymousClient = client{name: "", allApps: true, allow: All}

// New returns a Guard in front of next.
func New(next http.Handler, cfg Config) (*Guard, error) {
	if next == nil {
		return nil, errors.New("access: no handler to guard")
	}
	g := &Guard{next: next, anonymous: cfg.Anonymous, stats: cfg.Stats, log: cfg.Logger}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	g.log = g.log.With("component", "access")
	for _, h := range cfg.Hosts {
		g.hosts = append(g.hosts, strings.TrimSuffix(strings.ToLower(h), "."))
	}
	for _, c := range cfg.Clients {
		cl := client{name: c.Name, certCN: c.CertCN, allApps: slices.Contains(c.Apps, "*"), apps: c.Apps, allow: c.Allow}
		switch {
		case c.TokenSHA256 != nil && c.CertCN != "":
			return nil, fmt.Errorf("access: client %s: a token or a certificate CN, not both", c.Name)
		case c.TokenSHA256 != nil:
			if len(c.TokenSHA256) != sha256.Size {
				return nil, fmt.Errorf("access: client %s: token SHA-256 of %d bytes, want %d", c.Name, len(c.TokenSHA256), sha256.Size)
			}
			cl.hasToken = true
			copy(cl.sum[:], c.TokenSHA256)
		case c.CertCN == "":
			return nil, fmt.Errorf("access: client %s: no token and no certificate CN", c.Name)
		}
		g.clients = append(g.clients, cl)
	}
	return g, nil
}

// ServeHTTP implements http.Handler.
func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := classify(r)
	if rt.open {
		g.next.ServeHTTP(w, r)
		return
	}
	if !g.hostAllowed(r) {
		g.refuse(w, r, http.StatusMisdirectedRequest, "bad_host", "this replica does not answer to the host name in the request (add it to allowed_hosts)")
		return
	}
	if !sameOrigin(r) {
		g.refuse(w, r, http.StatusForbidden, "cross_origin", "requests from web pages of other origins are refused")
		return
	}
	c, code := g.identify(r)
	if code != "" {
		g.unauthorized(w, r, code)
		return
	}
	if !c.may(rt) {
		g.refuse(w, r, http.StatusForbidden, "forbidden", forbidden(c, rt))
		return
	}
	if r.Method == http.MethodPost && !jsonBody(r) {
		g.refuse(w, r, http.StatusUnsupportedMediaType, "unsupported_media_type", "a POST body must be Content-Type: application/json")
		return
	}
	if rt.action&(Invalidate|Proxy|PreAuth) != 0 {
		// These may trigger refreshes: the Limiter needs the caller.
		r = r.WithContext(withCaller(r.Context(), callerOf(c, r)))
	}
	g.next.ServeHTTP(w, r)
}

// may reports whether c may do what rt asks. A route that no action names
// (the mux answers it 404 or 405) is open to every known caller.
func (c *client) may(rt route) bool {
	if rt.action == 0 {
		return true
	}
	if c.allow&rt.action == 0 {
		return false
	}
	return rt.app == "" || c.allApps || slices.Contains(c.apps, rt.app)
}

func forbidden(c *client, rt route) string {
	who := "anonymous callers"
	if c.name != "" {
		who = "client " + c.name
	}
	if c.allow&rt.action == 0 {
		return fmt.Sprintf("%s may not %s", who, rt.action)
	}
	return fmt.Sprintf("%s may not %s for app %q", who, rt.action, rt.app)
}

// identify returns the caller of r, or the code of why it is refused:
// "missing" (no credentials where they are required), "invalid" (a bearer
// token no client has, or a malformed Authorization header).
func (g *Guard) identify(r *http.Request) (*client, string) {
	if vals := r.Header["Authorization"]; len(vals) > 0 {
		tok, ok := bearer(vals)
		if !ok {
			return nil, "invalid"
		}
		sum := hashToken(tok)
		if i := g.matchToken(&sum); i >= 0 {
			return &g.clients[i], ""
		}
		return nil, "invalid"
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		cn := r.TLS.VerifiedChains[0][0].Subject.CommonName
		for i := range g.clients {
			if c := &g.clients[i]; c.certCN != "" && c.certCN == cn {
				return c, ""
			}
		}
	}
	if g.anonymous {
		return &anonymousClient, ""
	}
	return nil, "missing"
}

func (g *Guard) unauthorized(w http.ResponseWriter, r *http.Request, why string) {
	challenge := `Bearer realm="wxtoken"`
	msg := "credentials required: send Authorization: Bearer <token> or a client certificate"
	if why == "invalid" {
		challenge += `, error="invalid_token"`
		msg = "the bearer token is not one of a configured client"
	}
	w.Header().Set("WWW-Authenticate", challenge)
	g.refuse(w, r, http.StatusUnauthorized, "unauthorized", msg)
}

// refuse writes a JSON error, counts and logs it (never a credential).
func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	g.stats.refused(code)
	g.log.Debug("refused", "code", code, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
	WriteError(w, status, code, msg)
}
