package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Codes of the errors of a WeChat Open Platform's routes, beside those of
// an app's (CodeNoCredential, CodeRateLimited, ...).
const (
	CodeUnknownPlatform        = "unknown_platform"        // no platform of that name on the replica
	CodeUnknownAuthorizer      = "unknown_authorizer"      // no account of that appid has authorized the platform
	CodeUnauthorizedAuthorizer = "unauthorized_authorizer" // the account cancelled its authorization
	CodeWeChatError            = "wechat_error"            // WeChat refused or did not answer a pre-auth code
)

// States of an Authorizer.
const (
	AuthorizerAuthorized   = "authorized"
	AuthorizerUnauthorized = "unauthorized"
)

// MaxAuthorizers is the most authorizers one page holds, and the page size
// when Authorizers is given no limit.
const MaxAuthorizers = 10000

// ComponentToken returns platform's component access token, cached as
// Token caches an app's: while fresh it makes no request and does not
// allocate, and one request per platform is in flight at a time.
func (c *Client) ComponentToken(ctx context.Context, platform string) (Token, error) {
	if e := c.hit(c.slots.Load().component(platform)); e != nil {
		return e.tok, nil
	}
	if platform == "" {
		return Token{}, errors.New("component token: empty platform name")
	}
	return c.shared(ctx, key{kind: kindComponent, platform: platform}, "")
}

// InvalidateComponent reports that token, platform's component token,
// failed at WeChat and returns the token to use instead: compare-and-refresh
// as Invalidate does for an app.
func (c *Client) InvalidateComponent(ctx context.Context, platform, token string) (Token, error) {
	switch {
	case platform == "":
		return Token{}, errors.New("invalidate component token: empty platform name")
	case token == "":
		return Token{}, errors.New("invalidate component token: empty token")
	}
	return c.shared(ctx, key{kind: kindComponent, platform: platform}, token)
}

// AuthorizerToken returns the access token of the account appid that has
// authorized platform (Token.App is the platform, Token.AuthorizerAppID
// the account), cached as Token caches an app's. An account that cancelled
// its authorization gives a 404 *Error with Code CodeUnauthorizedAuthorizer
// once the cached token is stale; InvalidateAuthorizer asks at once, and
// on that answer the cached token is dropped.
func (c *Client) AuthorizerToken(ctx context.Context, platform, appid string) (Token, error) {
	if e := c.hit(c.slots.Load().authorizer(platform, appid)); e != nil {
		return e.tok, nil
	}
	if platform == "" || appid == "" {
		return Token{}, errors.New("authorizer token: empty platform name or appid")
	}
	return c.shared(ctx, key{kind: kindAuthorizer, platform: platform, name: appid}, "")
}

// InvalidateAuthorizer reports that token, the access token of the
// account appid of platform, failed at WeChat and returns the token to use
// instead: compare-and-refresh as Invalidate does for an app.
func (c *Client) InvalidateAuthorizer(ctx context.Context, platform, appid, token string) (Token, error) {
	switch {
	case platform == "" || appid == "":
		return Token{}, errors.New("invalidate authorizer token: empty platform name or appid")
	case token == "":
		return Token{}, errors.New("invalidate authorizer token: empty token")
	}
	return c.shared(ctx, key{kind: kindAuthorizer, platform: platform, name: appid}, token)
}

// AuthorizerList is one page of a platform's authorizers, in appid order.
type AuthorizerList struct {
	Platform    string       `json:"platform"`
	Authorizers []Authorizer `json:"authorizers"`
	// NextAfter, when set, is the after of the next page; "" on the last.
	NextAfter string `json:"next_after,omitempty"`
}

// Authorizer is an account that has authorized a platform, as the
// replica's etcd knows it.
type Authorizer struct {
	AppID string `json:"appid"`
	// State is that of the newest event: AuthorizerAuthorized or
	// AuthorizerUnauthorized.
	State   string    `json:"state"`
	StateAt time.Time `json:"state_at"` // the newest event's time
	// AuthorizedAt is when the leader exchanged the authorization (before
	// that, when the authorized event was made); zero once unauthorized.
	AuthorizedAt time.Time `json:"authorized_at,omitzero"`
	// Scopes are the funcscope_category ids granted; empty until the
	// leader has exchanged the authorization code.
	Scopes []int `json:"scopes"`
}

// Authorizers returns one page of platform's authorizers: those whose
// appid sorts after after ("" from the first), at most limit of them (0:
// MaxAuthorizers, also the most). Pass the page's NextAfter as after for
// the next page. It is never cached.
func (c *Client) Authorizers(ctx context.Context, platform, after string, limit int) (AuthorizerList, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/v1/platforms/" + url.PathEscape(platform) + "/authorizers"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var l AuthorizerList
	if err := c.call(ctx, http.MethodGet, path, nil, &l); err != nil {
		return AuthorizerList{}, fmt.Errorf("list authorizers of platform %s: %w", platform, err)
	}
	return l, nil
}

// Preauth is a pre-auth code and the link to WeChat's authorization page
// for it, where an account's administrator authorizes the platform. The
// code is single use and lives ExpiresIn seconds.
type Preauth struct {
	PreAuthCode string `json:"pre_auth_code"`
	ExpiresIn   int64  `json:"expires_in"`
	AuthURL     string `json:"auth_url"`
}

// String describes p without its code.
func (p Preauth) String() string { return fmt.Sprintf("client.Preauth{ExpiresIn:%d}", p.ExpiresIn) }

// GoString is String.
func (p Preauth) GoString() string { return p.String() }

// Preauth asks the replica for a pre-auth code of platform, for an
// authorization that WeChat then redirects to redirectURI (an absolute
// https or http URL without a fragment). It is never cached: each answer
// has a new code.
func (c *Client) Preauth(ctx context.Context, platform, redirectURI string) (Preauth, error) {
	body := struct {
		RedirectURI string `json:"redirect_uri"`
	}{redirectURI}
	var p Preauth
	if err := c.call(ctx, http.MethodPost, "/v1/platforms/"+url.PathEscape(platform)+"/preauth", body, &p); err != nil {
		return Preauth{}, fmt.Errorf("preauth of platform %s: %w", platform, err)
	}
	return p, nil
}
