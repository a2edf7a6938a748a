package fetcher

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Open Platform (third-party platform, 第三方平台) calls. Request and answer
// fields follow the official pages under
// developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/ThirdParty/token/
// (component_access_token.html, pre_auth_code.html, authorization_info.html,
// api_authorizer_token.html, component_verify_ticket_service.html) and
// .../ThirdParty/Account_Authorization/api_get_authorizer_list.html.

// MaxAuthorizerPage is the largest count api_get_authorizer_list accepts
// ("拉取数量，最大为 500").
const MaxAuthorizerPage = 500

// PreAuthCode is a pre_auth_code for the authorization page. String hides
// the code.
type PreAuthCode struct {
	Code      string
	ExpiresIn time.Duration // 1800 s per the page (its example says 600)
	Attempts  int
}

func (p PreAuthCode) String() string {
	return fmt.Sprintf("fetcher.PreAuthCode{ExpiresIn:%s Attempts:%d}", p.ExpiresIn, p.Attempts)
}

// GoString is String.
func (p PreAuthCode) GoString() string { return p.String() }

// Authorization is what api_query_auth returns for an authorization code.
// WeChat sends the tokens only when the account has granted API scopes, so
// AccessToken and RefreshToken may be empty. String hides both tokens.
type Authorization struct {
	AuthorizerAppID string
	AccessToken     string
	ExpiresIn       time.Duration
	RefreshToken    string
	FuncInfo        []int // funcscope_category ids granted
	Attempts        int
}

func (a Authorization) String() string {
	return fmt.Sprintf("fetcher.Authorization{AuthorizerAppID:%s ExpiresIn:%s FuncInfo:%v Attempts:%d}",
		a.AuthorizerAppID, a.ExpiresIn, a.FuncInfo, a.Attempts)
}

// GoString is String.
func (a Authorization) GoString() string { return a.String() }

// AuthorizerToken is the answer of api_authorizer_token. WeChat may rotate
// the refresh token: RefreshToken is what it returned (the one sent if the
// answer had none), and it must be stored with AccessToken. String hides
// both tokens.
type AuthorizerToken struct {
	AccessToken  string
	ExpiresIn    time.Duration
	RefreshToken string
	Rotated      bool // RefreshToken differs from the one sent
	Attempts     int
}

func (a AuthorizerToken) String() string {
	return fmt.Sprintf("fetcher.AuthorizerToken{ExpiresIn:%s Rotated:%t Attempts:%d}", a.ExpiresIn, a.Rotated, a.Attempts)
}

// GoString is String.
func (a AuthorizerToken) GoString() string { return a.String() }

// AuthorizerEntry is one line of api_get_authorizer_list. RefreshToken is
// empty for an account whose authorization code was never exchanged.
// String hides the refresh token.
type AuthorizerEntry struct {
	AppID        string
	RefreshToken string
	AuthTime     time.Time
}

func (e AuthorizerEntry) String() string {
	return fmt.Sprintf("fetcher.AuthorizerEntry{AppID:%s AuthTime:%d HasRefreshToken:%t}", e.AppID, e.AuthTime.Unix(), e.RefreshToken != "")
}

// GoString is String.
func (e AuthorizerEntry) GoString() string { return e.String() }

// AuthorizerPage is one page of api_get_authorizer_list.
type AuthorizerPage struct {
	Total       int // total_count: every authorized account
	Authorizers []AuthorizerEntry
	Attempts    int
}

// newPlatformCall builds a POST of body (JSON) to {BaseURL}/cgi-bin/component/{op},
// with the component access token, if any, in the query. secrets are the
// values to redact (the token is added).
func (c *Client) newPlatformCall(op, what, appID, token string, body any, secrets ...string) (*call, error) {
	b, err := json.Marshal(body)
	if err != nil { // cannot happen with string and int fields
		return nil, fmt.Errorf("%s: encode request: %w", what, err)
	}
	endpoint := c.base + "/cgi-bin/component/" + op
	k := &call{
		op: op, what: what, appID: appID, method: http.MethodPost,
		url: endpoint, safeURL: endpoint, body: b,
		red: newRedactor(append(secrets, token)...),
	}
	if token != "" {
		k.url += "?" + url.Values{"component_access_token": {token}}.Encode()
		k.safeURL += "?component_access_token=" + redactedParam
	}
	return k, nil
}

// ComponentToken fetches a component_access_token with the latest
// component_verify_ticket: POST /cgi-bin/component/api_component_token.
// 61005 (ticket expired) and 61006 (ticket invalid) are Permanent errors
// that IsTicketError recognises; 61004 (IP not registered) is
// host-specific. It blocks like Classic.
func (c *Client) ComponentToken(ctx context.Context, componentAppID, secret, ticket string) (Token, error) {
	k, err := c.newPlatformCall(opComponentToken, "fetch component token", componentAppID, "", struct {
		AppID  string `json:"component_appid"`
		Secret string `json:"component_appsecret"`
		Ticket string `json:"component_verify_ticket"`
	}{componentAppID, secret, ticket}, secret, ticket)
	if err != nil {
		return Token{}, err
	}
	return c.token(ctx, k)
}

// StartPushTicket asks WeChat to resume component_verify_ticket pushes:
// POST /cgi-bin/component/api_start_push_ticket. It blocks like Classic.
func (c *Client) StartPushTicket(ctx context.Context, componentAppID, secret string) error {
	k, err := c.newPlatformCall(opStartPushTicket, "start ticket push", componentAppID, "", struct {
		AppID  string `json:"component_appid"`
		Secret string `json:"component_secret"`
	}{componentAppID, secret}, secret)
	if err != nil {
		return err
	}
	_, _, err = run(ctx, c, k, func(status int, body []byte) (struct{}, error) {
		_, err := decode(k.op, status, body, k.red)
		return struct{}{}, err
	})
	return err
}

// CreatePreAuthCode asks for a pre_auth_code with a component token:
// POST /cgi-bin/component/api_create_preauthcode. A dead component token
// gives an *APIError of Class TokenDead. It blocks like Classic.
func (c *Client) CreatePreAuthCode(ctx context.Context, componentToken, componentAppID string) (PreAuthCode, error) {
	k, err := c.newPlatformCall(opPreAuthCode, "create pre-auth code", componentAppID, componentToken, struct {
		AppID string `json:"component_appid"`
	}{componentAppID})
	if err != nil {
		return PreAuthCode{}, err
	}
	p, attempts, err := run(ctx, c, k, func(status int, body []byte) (PreAuthCode, error) {
		return parsePreAuthCode(k.op, status, body, k.red)
	})
	p.Attempts = attempts
	if err != nil {
		return PreAuthCode{Attempts: attempts}, err
	}
	return p, nil
}

// QueryAuth exchanges a single-use authorization code for the authorizer's
// tokens: POST /cgi-bin/component/api_query_auth. WeChat consumes the code:
// like every call here, an Ambiguous failure is never retried, and the
// caller must not resend the code blindly. It blocks like Classic.
func (c *Client) QueryAuth(ctx context.Context, componentToken, componentAppID, code string) (Authorization, error) {
	k, err := c.newPlatformCall(opQueryAuth, "query auth", componentAppID, componentToken, struct {
		AppID string `json:"component_appid"`
		Code  string `json:"authorization_code"`
	}{componentAppID, code}, code)
	if err != nil {
		return Authorization{}, err
	}
	a, attempts, err := run(ctx, c, k, func(status int, body []byte) (Authorization, error) {
		return parseAuthorization(k.op, status, body, k.red)
	})
	if err != nil {
		return Authorization{Attempts: attempts}, err
	}
	a.Attempts = attempts
	return a, nil
}

// AuthorizerToken refreshes an authorizer's access token with its refresh
// token: POST /cgi-bin/component/api_authorizer_token. Each success may
// invalidate the authorizer's previous access token (after WeChat's
// overlap) and may rotate the refresh token. 61023 (refresh token invalid)
// is a Permanent error that IsRefreshTokenInvalid recognises: recover the
// refresh token with AuthorizerList. It blocks like Classic.
func (c *Client) AuthorizerToken(ctx context.Context, componentToken, componentAppID, authorizerAppID, refreshToken string) (AuthorizerToken, error) {
	k, err := c.newPlatformCall(opAuthorizerToken, "fetch authorizer token", authorizerAppID, componentToken, struct {
		AppID           string `json:"component_appid"`
		AuthorizerAppID string `json:"authorizer_appid"`
		RefreshToken    string `json:"authorizer_refresh_token"`
	}{componentAppID, authorizerAppID, refreshToken}, refreshToken)
	if err != nil {
		return AuthorizerToken{}, err
	}
	a, attempts, err := run(ctx, c, k, func(status int, body []byte) (AuthorizerToken, error) {
		return parseAuthorizerToken(k.op, status, body, k.red, refreshToken)
	})
	if err != nil {
		return AuthorizerToken{Attempts: attempts}, err
	}
	a.Attempts = attempts
	return a, nil
}

// AuthorizerList reads one page of authorized accounts with their refresh
// tokens: POST /cgi-bin/component/api_get_authorizer_list. count must be
// 1..MaxAuthorizerPage and offset not negative. It blocks like Classic.
func (c *Client) AuthorizerList(ctx context.Context, componentToken, componentAppID string, offset, count int) (AuthorizerPage, error) {
	const what = "list authorizers"
	if offset < 0 || count < 1 || count > MaxAuthorizerPage {
		return AuthorizerPage{}, fmt.Errorf("%s: offset %d, count %d: want offset >= 0 and count 1..%d", what, offset, count, MaxAuthorizerPage)
	}
	k, err := c.newPlatformCall(opAuthorizerList, what, componentAppID, componentToken, struct {
		AppID  string `json:"component_appid"`
		Offset int    `json:"offset"`
		Count  int    `json:"count"`
	}{componentAppID, offset, count})
	if err != nil {
		return AuthorizerPage{}, err
	}
	k.maxBody = maxListBodySize
	p, attempts, err := run(ctx, c, k, func(status int, body []byte) (AuthorizerPage, error) {
		return parseAuthorizerPage(k.op, status, body, k.red, count)
	})
	if err != nil {
		return AuthorizerPage{Attempts: attempts}, err
	}
	p.Attempts = attempts
	return p, nil
}
