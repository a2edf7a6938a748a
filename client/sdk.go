package client

import (
	"context"
	"fmt"
)

// ContextTokenHandle is how WeChat SDKs for Go ask for an app's access
// token: the shape of silenceper/wechat's credential.AccessTokenHandle and
// credential.AccessTokenContextHandle, which an AppToken satisfies.
type ContextTokenHandle interface {
	GetAccessToken() (string, error)
	GetAccessTokenContext(ctx context.Context) (string, error)
}

var _ ContextTokenHandle = (*AppToken)(nil)

// AppToken is one app's access token from a TokenSource (a *Client), in the
// shapes that WeChat SDKs for Go ask for, so that an app on such an SDK
// takes its token from wxtoken and never fetches one itself:
//
//   - silenceper/wechat v2: GetAccessToken and GetAccessTokenContext
//     (SetAccessTokenHandle, SetAccessTokenContextHandle);
//   - ArtisanCloud/PowerWeChat v3: PowerWeChatToken, for its AccessToken's
//     GetCustomToken hook.
//
// Reads come from the Client's cache (kept for the replica's expires_in).
// An AppToken is safe for concurrent use; its fields must not change once
// it is in use.
type AppToken struct {
	Source TokenSource
	App    string
	// OnError, if set, is called with the errors that an SDK's interface
	// cannot carry (PowerWeChatToken's); it must be safe for concurrent use.
	OnError func(error)
}

// AppToken returns an AppToken for app that takes its tokens from c.
func (c *Client) AppToken(app string) *AppToken {
	return &AppToken{Source: c, App: app}
}

// GetAccessToken returns the app's current token. It has no context of its
// own: a request to the replica is bounded by the Client's HTTP timeout
// (DefaultTimeout).
func (t *AppToken) GetAccessToken() (string, error) {
	return t.GetAccessTokenContext(context.Background())
}

// GetAccessTokenContext returns the app's current token; a request to the
// replica, if one is needed, ends with ctx.
func (t *AppToken) GetAccessTokenContext(ctx context.Context) (string, error) {
	tok, err := t.Source.Token(ctx, t.App)
	if err != nil {
		return "", fmt.Errorf("wxtoken: %w", err)
	}
	return tok.AccessToken, nil
}

// Invalidate reports that dead failed at WeChat (40001, 40014 or 42001)
// and returns the token to use instead. It is compare-and-refresh (see
// Client.Invalidate): any number of reports of one token cause at most one
// refresh. Use it where an SDK hands a dead-token error back to the app.
func (t *AppToken) Invalidate(ctx context.Context, dead string) (string, error) {
	tok, err := t.Source.Invalidate(ctx, t.App, dead)
	if err != nil {
		return "", fmt.Errorf("wxtoken: %w", err)
	}
	return tok.AccessToken, nil
}

// PowerWeChatToken has the signature of PowerWeChat v3's
// kernel.AccessToken.GetCustomToken hook, whose answer PowerWeChat reads as
// {"access_token": string, "expires_in": float64}:
//
//	app.AccessToken.GetCustomToken = func(key string, refresh bool) object.HashMap {
//		return tok.PowerWeChatToken(key, refresh)
//	}
//
// With refresh false it answers the current token. PowerWeChat asks with
// refresh true after WeChat answered 40001, 40014 or 42001 (and then asks
// again with false and retries the call once): the token the Client holds
// is then reported dead and the answer is the one to use instead.
// PowerWeChat's hook has neither a context nor an error: a request to the
// replica is bounded by the Client's HTTP timeout, and on an error the
// answer holds no access_token, which PowerWeChat turns into its own error
// ("no token found in cache"); the error itself goes to OnError.
func (t *AppToken) PowerWeChatToken(_ string, refresh bool) map[string]any {
	ctx := context.Background()
	tok, err := t.Source.Token(ctx, t.App)
	if err == nil && refresh {
		tok, err = t.Source.Invalidate(ctx, t.App, tok.AccessToken)
	}
	if err != nil {
		if t.OnError != nil {
			t.OnError(fmt.Errorf("wxtoken: %w", err))
		}
		// expires_in is read as a float64 even when the token is missing.
		return map[string]any{"expires_in": float64(0)}
	}
	return map[string]any{"access_token": tok.AccessToken, "expires_in": float64(tok.ExpiresIn)}
}
