package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// TokenSource gives a Transport its tokens. *Client implements it; so does
// the replica's own proxy, over its cache. Implementations must be safe for
// concurrent use and honour ctx.
type TokenSource interface {
	// Token returns app's current token.
	Token(ctx context.Context, app string) (Token, error)
	// Invalidate reports that token failed and returns the one to use
	// instead (compare-and-refresh).
	Invalidate(ctx context.Context, app, token string) (Token, error)
}

var _ TokenSource = (*Client)(nil)

// IsDeadToken reports whether a WeChat errcode says the access token used is
// dead: 40001 (invalid or not latest), 40014 (invalid) or 42001 (expired).
func IsDeadToken(errcode int) bool {
	return errcode == 40001 || errcode == 40014 || errcode == 42001
}

// peekLimit bounds how much of an answer the Transport reads to look for an
// errcode. WeChat's error answers are a few hundred bytes.
const peekLimit = 16 << 10

// Transport is an http.RoundTripper for calls to the WeChat API on behalf of
// one app. It sets the access_token query parameter (replacing any the
// request carries), and when the answer is a JSON body whose errcode says
// the token is dead it reports the token to Source (compare-and-refresh) and
// sends the request once more with the new token.
//
// A request body is sent again only if it can be replayed: none, or one
// with GetBody (http.NewRequest sets it for bytes, strings and bytes.Reader
// bodies). Otherwise the first answer is returned, after the report. The
// answer's body stays readable: the Transport reads at most 16 KiB of a
// JSON or text answer to look at it and hands those bytes back in front of
// the rest. Do not set Accept-Encoding yourself: a compressed answer cannot
// be inspected (Go's transport asks for gzip and decodes it on its own).
//
// A Transport is safe for concurrent use. Errors from Source are returned
// wrapped, so errors.As finds a *Error.
type Transport struct {
	App    string
	Source TokenSource
	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
}

// Transport returns a Transport for app that takes tokens from c and sends
// requests with base (nil: http.DefaultTransport). Use it as the Transport
// of the http.Client that calls WeChat:
//
//	wechat := &http.Client{Transport: c.Transport("shop", nil), Timeout: 30 * time.Second}
func (c *Client) Transport(app string, base http.RoundTripper) *Transport {
	return &Transport{App: app, Source: c, Base: base}
}

func (t *Transport) base() http.RoundTripper {
	if t.Base == nil {
		return http.DefaultTransport
	}
	return t.Base
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	tok, err := t.Source.Token(ctx, t.App)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("wxtoken: %w", err)
	}
	resp, err := t.base().RoundTrip(withToken(req, tok.AccessToken))
	if err != nil {
		return nil, err
	}
	if dead, err := deadToken(resp); err != nil || !dead {
		return resp, err
	}
	next, err := t.Source.Invalidate(ctx, t.App, tok.AccessToken)
	if err != nil || next.AccessToken == tok.AccessToken {
		return resp, nil // no better token: the first answer stands
	}
	retry := withToken(req, next.AccessToken)
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return resp, nil // the body is gone: cannot send it again
		}
		body, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		retry.Body = body
	}
	resp.Body.Close()
	return t.base().RoundTrip(retry)
}

// withToken returns a copy of req whose query carries access_token=tok and
// no other access_token; the rest of the query keeps its order and encoding.
func withToken(req *http.Request, tok string) *http.Request {
	r := req.Clone(req.Context())
	r.URL.RawQuery = SetToken(req.URL.RawQuery, tok)
	return r
}

// SetToken returns the raw query with every access_token parameter removed
// and access_token=tok appended (none if tok is empty).
func SetToken(rawQuery, tok string) string {
	var b strings.Builder
	for part := range strings.SplitSeq(rawQuery, "&") {
		if part == "" {
			continue
		}
		key, _, _ := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(key); err == nil && k == "access_token" {
			continue
		}
		b.WriteString(part)
		b.WriteByte('&')
	}
	if tok == "" {
		return strings.TrimSuffix(b.String(), "&")
	}
	b.WriteString("access_token=")
	b.WriteString(url.QueryEscape(tok))
	return b.String()
}

// deadToken looks at a small JSON or text answer for a dead-token errcode.
// It leaves resp.Body readable from the start.
func deadToken(resp *http.Response) (bool, error) {
	if resp.Body == nil || resp.Body == http.NoBody || resp.ContentLength > peekLimit || !textual(resp.Header.Get("Content-Type")) {
		return false, nil
	}
	orig := resp.Body
	data, err := io.ReadAll(io.LimitReader(orig, peekLimit+1))
	if err != nil {
		orig.Close()
		return false, fmt.Errorf("read WeChat answer: %w", err)
	}
	if len(data) > peekLimit {
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(data), orig), orig}
		return false, nil
	}
	orig.Close() // read to the end: the connection may be reused at once
	resp.Body = io.NopCloser(bytes.NewReader(data))
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return false, nil
	}
	var ans struct {
		Errcode int `json:"errcode"`
	}
	if json.Unmarshal(trimmed, &ans) != nil {
		return false, nil
	}
	return IsDeadToken(ans.Errcode), nil
}

// textual reports whether an answer of this content type may be a WeChat
// error: WeChat sends them as application/json or text/plain, sometimes
// with no type at all. Media (images, voice, video) is left alone.
func textual(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return strings.HasPrefix(mt, "text/") || mt == "application/json" || strings.HasSuffix(mt, "+json")
}

type readCloser struct {
	io.Reader
	io.Closer
}
