// Package wechatproxy is a replica's proxy to the WeChat API: a call to
// /wechat/{app}/PATH?QUERY goes to the app's WeChat base URL + PATH?QUERY
// with the app's access token put in, and is sent once more with a new token
// when WeChat answers that the token is dead. Apps in any language then call
// their local replica and never handle tokens.
package wechatproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/api"
	"github.com/wxtoken/wxtoken/client"
)

// Pattern is where a Proxy is mounted on a replica's API.
const Pattern = "/wechat/{app}/{path...}"

// Defaults for Config.
const (
	DefaultMaxBody    = 1 << 20
	DefaultBodyBudget = 16 << 20
	DefaultTimeout    = 60 * time.Second
	// deadlineGrace is added to Timeout for the connection's read and
	// write deadlines, so that the proxy's own timeout answer gets out.
	deadlineGrace = 5 * time.Second
)

// Tokens is where the proxy takes tokens; *api.API implements it, reading
// the replica's cache and invalidating through compare-and-refresh. It must
// be safe for concurrent use.
type Tokens interface {
	Token(app string) (api.TokenResponse, error)
	Invalidate(ctx context.Context, app, token string) (api.TokenResponse, error)
}

// Config configures a Proxy.
type Config struct {
	Tokens Tokens
	// Upstreams maps each app name to the base URL of the WeChat API its
	// calls go to: wechat.base_url, or wechat.wecom_base_url for WeCom apps.
	Upstreams map[string]string
	// Transport sends the calls to WeChat. Default: one with bounded dial,
	// TLS and response-header timeouts that honours HTTPS_PROXY.
	Transport http.RoundTripper
	// MaxBody bounds a request body, which is held in memory so that it can
	// be sent twice; a larger one is answered 413. Default DefaultMaxBody.
	MaxBody int64
	// BodyBudget bounds the bytes of bodies held at once across all calls;
	// a call whose body does not fit (its Content-Length, or MaxBody when
	// the length is unknown) is answered 503 proxy_busy with Retry-After.
	// Default DefaultBodyBudget.
	BodyBudget int64
	// Timeout bounds one proxied call, both tries, the invalidation between
	// them and the answer's body. Default DefaultTimeout.
	Timeout time.Duration
	Logger  *slog.Logger
}

// Proxy is the http.Handler of the WeChat proxy, safe for concurrent use.
// It takes GET and POST only, refuses paths that could climb out of the
// base URL's path, strips any access_token the caller sends, never forwards
// the caller's credentials (Authorization, Cookie) or hop-by-hop headers,
// holds the request body (up to MaxBody, within BodyBudget across calls)
// and streams the answer. It sets the connection's read and write
// deadlines from Timeout. Its own errors are the API's JSON errors: 404
// unknown_app, 405 method_not_allowed, 400 bad_path, 413 body_too_large,
// 503 proxy_busy or no_credential, 429 rate_limited, 502
// upstream_unreachable, 504 upstream_timeout. WeChat's answers, errors
// included, pass through as they are.
type Proxy struct {
	tokens    Tokens
	upstreams map[string]*url.URL
	transport http.RoundTripper
	maxBody   int64
	bodies    budget
	timeout   time.Duration
	log       *slog.Logger
}

// New validates cfg and returns a Proxy.
func New(cfg Config) (*Proxy, error) {
	if cfg.Tokens == nil {
		return nil, errors.New("wechatproxy: Tokens is required")
	}
	p := &Proxy{
		tokens:    cfg.Tokens,
		upstreams: make(map[string]*url.URL, len(cfg.Upstreams)),
		transport: cfg.Transport,
		maxBody:   cfg.MaxBody,
		timeout:   cfg.Timeout,
		log:       cfg.Logger,
	}
	parsed := map[string]*url.URL{} // apps share a few upstreams: parse each once
	for app, base := range cfg.Upstreams {
		u, ok := parsed[base]
		if !ok {
			var err error
			u, err = url.Parse(strings.TrimRight(base, "/"))
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("wechatproxy: app %s: bad upstream %q", app, base)
			}
			parsed[base] = u
		}
		p.upstreams[app] = u
	}
	if p.transport == nil {
		p.transport = defaultTransport()
	}
	if p.maxBody <= 0 {
		p.maxBody = DefaultMaxBody
	}
	p.bodies.limit = cfg.BodyBudget
	if p.bodies.limit <= 0 {
		p.bodies.limit = DefaultBodyBudget
	}
	p.bodies.limit = max(p.bodies.limit, p.maxBody)
	if p.timeout <= 0 {
		p.timeout = DefaultTimeout
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = p.log.With("component", "wechatproxy")
	return p, nil
}

func defaultTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   64,
		ForceAttemptHTTP2:     true,
	}
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	base, ok := p.upstreams[app]
	if !ok {
		api.WriteError(w, &api.Error{Status: http.StatusNotFound, Code: "unknown_app", Message: fmt.Sprintf("unknown app %q", app)})
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		api.WriteError(w, &api.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "the proxy takes GET and POST only"})
		return
	}
	rest, ok := below(r.URL.EscapedPath())
	to, err := target(base, rest, client.SetToken(r.URL.RawQuery, ""))
	if !ok || err != nil {
		err = errBadPath
		api.WriteError(w, &api.Error{Status: http.StatusBadRequest, Code: "bad_path", Message: err.Error()})
		return
	}
	// The server's write timeout is shorter than a proxied call may take.
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(p.timeout + deadlineGrace)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
	if r.ContentLength > p.maxBody {
		p.tooLarge(w)
		return
	}
	body, held, ok := p.readBody(w, r)
	defer p.bodies.give(held)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.timeout)
	defer cancel()
	out, err := p.outgoing(ctx, r, to, body)
	if err != nil {
		api.WriteError(w, &api.Error{Status: http.StatusBadRequest, Code: "bad_request", Message: err.Error()})
		return
	}
	t := &client.Transport{App: app, Source: source{p.tokens}, Base: p.transport}
	resp, err := t.RoundTrip(out)
	if err != nil {
		p.failed(w, r, app, base, err)
		return
	}
	defer resp.Body.Close()
	h := w.Header()
	copyHeader(h, resp.Header)
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		p.log.Debug("copy answer", "app", app, "path", out.URL.Path, "err", redact(err.Error()))
	}
}

// outgoing builds the request to WeChat: the same method, the target
// (path under the app's base, the caller's query without access_token: the
// Transport puts the app's in), end-to-end headers but the caller's
// credentials, and the body.
func (p *Proxy) outgoing(ctx context.Context, r *http.Request, target *url.URL, body []byte) (*http.Request, error) {
	var rd io.Reader
	if len(body) > 0 {
		rd = bytes.NewReader(body) // sets GetBody: the body may be sent twice
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, target.String(), rd)
	if err != nil {
		return nil, err
	}
	copyHeader(out.Header, r.Header)
	dropCredentials(out.Header)
	// The Transport must see the answer uncompressed to read its errcode;
	// Go's transport asks for gzip itself and decodes it.
	out.Header.Del("Accept-Encoding")
	return out, nil
}

func (p *Proxy) tooLarge(w http.ResponseWriter) {
	api.WriteError(w, &api.Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
		Message: fmt.Sprintf("the request body is larger than %d bytes, the most the proxy holds to be able to retry", p.maxBody)})
}

// failed answers a call that got no answer from WeChat.
func (p *Proxy) failed(w http.ResponseWriter, r *http.Request, app string, base *url.URL, err error) {
	var ae *api.Error
	switch {
	case errors.As(err, &ae):
		api.WriteError(w, ae)
	case r.Context().Err() != nil:
		// The caller went away: nobody to answer.
	case errors.Is(err, context.DeadlineExceeded):
		api.WriteError(w, &api.Error{Status: http.StatusGatewayTimeout, Code: "upstream_timeout",
			Message: fmt.Sprintf("WeChat at %s did not answer within %v", base.Host, p.timeout)})
	default:
		msg := redact(err.Error())
		p.log.Warn("WeChat unreachable", "app", app, "upstream", base.Host, "err", msg)
		api.WriteError(w, &api.Error{Status: http.StatusBadGateway, Code: "upstream_unreachable",
			Message: fmt.Sprintf("cannot reach WeChat at %s: %s", base.Host, msg)})
	}
}

var tokenRE = regexp.MustCompile(`access_token=[^&\s"]*`)

// redact removes access tokens from an error text.
func redact(s string) string { return tokenRE.ReplaceAllString(s, "access_token=REDACTED") }

// hopByHop are the headers of one connection (RFC 9110, section 7.6.1),
// never forwarded.
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// copyHeader adds src's end-to-end headers to dst.
func copyHeader(dst, src http.Header) {
	drop := map[string]bool{}
	for _, h := range hopByHop {
		drop[h] = true
	}
	for _, v := range src.Values("Connection") {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				drop[http.CanonicalHeaderKey(f)] = true
			}
		}
	}
	for k, vs := range src {
		if drop[http.CanonicalHeaderKey(k)] {
			continue
		}
		dst[k] = append(dst[k], vs...)
	}
}

// source adapts Tokens to the client's TokenSource.
type source struct{ t Tokens }

func (s source) Token(_ context.Context, app string) (client.Token, error) {
	r, err := s.t.Token(app)
	return clientToken(r), err
}

func (s source) Invalidate(ctx context.Context, app, token string) (client.Token, error) {
	r, err := s.t.Invalidate(ctx, app, token)
	return clientToken(r), err
}

func clientToken(r api.TokenResponse) client.Token {
	return client.Token{App: r.App, Kind: r.Kind, AccessToken: r.AccessToken, ExpiresAt: r.ExpiresAt, ExpiresIn: r.ExpiresIn, Seq: r.Seq}
}
