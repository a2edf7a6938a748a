package fetcher

import (
	"context"
	"fmt"
	"time"
)

// platformMethods are the Open Platform methods, adapted to the method
// table so that they go through every classification, retry and
// malformed-answer case.
var platformMethods = []method{
	{
		name: "component token", op: opComponentToken, path: "/cgi-bin/component/api_component_token", tokenEndpoint: true,
		call: func(ctx context.Context, c *Client) (Token, error) {
			return c.ComponentToken(ctx, "wxCOMPONENT", "SECRET", "TICKET")
		},
		body: func(v, exp string) string {
			return fmt.Sprintf(`{"component_access_token":%q,"expires_in":%s}`, v, exp)
		},
	},
	{
		name: "pre-auth code", op: opPreAuthCode, path: "/cgi-bin/component/api_create_preauthcode",
		call: func(ctx context.Context, c *Client) (Token, error) {
			p, err := c.CreatePreAuthCode(ctx, "ACCESS", "wxCOMPONENT")
			return Token{Value: p.Code, ExpiresIn: p.ExpiresIn, Attempts: p.Attempts}, err
		},
		body: func(v, exp string) string { return fmt.Sprintf(`{"pre_auth_code":%q,"expires_in":%s}`, v, exp) },
	},
	{
		name: "query auth", op: opQueryAuth, path: "/cgi-bin/component/api_query_auth",
		call: func(ctx context.Context, c *Client) (Token, error) {
			a, err := c.QueryAuth(ctx, "ACCESS", "wxCOMPONENT", "CODE")
			if err == nil && a.AuthorizerAppID != a.AccessToken {
				return Token{}, fmt.Errorf("authorizer appid %q", a.AuthorizerAppID)
			}
			return Token{Value: a.AccessToken, ExpiresIn: a.ExpiresIn, Attempts: a.Attempts}, err
		},
		// The value is both the appid and the token, so that an empty
		// or spaced value is malformed either way.
		body: func(v, exp string) string {
			return fmt.Sprintf(`{"authorization_info":{"authorizer_appid":%q,"authorizer_access_token":%q,"expires_in":%s,"authorizer_refresh_token":"R","func_info":[{"funcscope_category":{"id":1}}]}}`, v, v, exp)
		},
	},
	{
		name: "authorizer token", op: opAuthorizerToken, path: "/cgi-bin/component/api_authorizer_token",
		call: func(ctx context.Context, c *Client) (Token, error) {
			a, err := c.AuthorizerToken(ctx, "ACCESS", "wxCOMPONENT", "wxAUTHORIZER", "REFRESH")
			return Token{Value: a.AccessToken, ExpiresIn: a.ExpiresIn, Attempts: a.Attempts}, err
		},
		body: func(v, exp string) string {
			return fmt.Sprintf(`{"authorizer_access_token":%q,"expires_in":%s,"authorizer_refresh_token":"REFRESH2"}`, v, exp)
		},
	},
	{
		name: "authorizer list", op: opAuthorizerList, path: "/cgi-bin/component/api_get_authorizer_list", noTTL: true,
		okVal: "wxA1", maxBody: maxListBodySize,
		call: func(ctx context.Context, c *Client) (Token, error) {
			p, err := c.AuthorizerList(ctx, "ACCESS", "wxCOMPONENT", 0, 2)
			if err != nil || len(p.Authorizers) == 0 {
				return Token{Attempts: p.Attempts}, err
			}
			return Token{Value: p.Authorizers[0].AppID, ExpiresIn: time.Second, Attempts: p.Attempts}, nil
		},
		// Like getcallbackip: only the exact success shape is a page.
		body: func(v, exp string) string {
			if v == "TOKEN" && exp == "7200" {
				return `{"total_count":2,"list":[{"authorizer_appid":"wxA1","refresh_token":"R1","auth_time":1558000607},{"authorizer_appid":"wxA2","refresh_token":"R2","auth_time":1558000608}]}`
			}
			return tokenBody(v, exp)
		},
	},
}
