package refresher

import (
	"context"
	"log/slog"

	"github.com/wxtoken/wxtoken/fetcher"
)

// Credential kinds.
const (
	KindClassic = "classic"
	KindStable  = "stable"
	KindWeCom   = "wecom"
	KindJSAPI   = "jsapi"
	KindWXCard  = "wx_card"
)

// Cred is one credential the leader keeps fresh. Its LogValue omits the
// secret.
type Cred struct {
	Name   string // tokenstore.CredName(app, "token" | ticket type)
	App    string
	Kind   string // one of the Kind constants
	AppID  string // appid, or corpid for WeCom
	Secret string // never logged, never stored
	Budget int    // fetches per China-time day; 0 = unlimited
	// Token names the credential whose access token a ticket is fetched
	// with; empty for tokens.
	Token string
	// Platform names the third-party platform of a component or
	// authorizer credential; Component is its component appid.
	Platform, Component string
}

// LogValue implements slog.LogValuer without the secret.
func (c Cred) LogValue() slog.Value {
	return slog.GroupValue(slog.String("cred", c.Name), slog.String("kind", c.Kind), slog.String("appid", c.AppID))
}

// String implements fmt.Stringer without the secret.
func (c Cred) String() string { return c.Name + " (" + c.Kind + ")" }

// Fetcher calls WeChat; *fetcher.Client implements it.
type Fetcher interface {
	Classic(ctx context.Context, appID, secret string) (fetcher.Token, error)
	Stable(ctx context.Context, appID, secret string, force bool) (fetcher.Token, error)
	WeCom(ctx context.Context, corpID, secret string) (fetcher.Token, error)
	Ticket(ctx context.Context, accessToken string, typ fetcher.TicketType) (fetcher.Token, error)
}

var _ Fetcher = (*fetcher.Client)(nil)
