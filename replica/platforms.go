package replica

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxtoken/wxtoken/api"
	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/platformapi"
	"github.com/wxtoken/wxtoken/platformevents"
	"github.com/wxtoken/wxtoken/tokenstore"
	"github.com/wxtoken/wxtoken/wxcrypt"
)

// platformRoutes builds the event URL of the configured platforms
// (POST /v1/platforms/{name}/events), or nothing without platforms. Every
// replica, candidate or not, stores the pushes it receives.
func platformRoutes(cfg *config.Config, store *tokenstore.Store, reg prometheus.Registerer, log *slog.Logger, now func() time.Time) ([]api.Route, error) {
	if len(cfg.Platforms) == 0 {
		return nil, nil
	}
	if !cfg.Encryption.On() {
		return nil, fmt.Errorf("platforms: need encryption.key_files: tickets, codes and refresh tokens are never stored in etcd in the clear")
	}
	ps := make([]platformevents.Platform, 0, len(cfg.Platforms))
	for _, p := range cfg.Platforms {
		c, err := wxcrypt.New(wxcrypt.Config{Token: p.Token.Reveal(), AppID: p.ComponentAppID,
			Key: p.EncodingAESKey.Reveal(), PreviousKey: p.PreviousEncodingAESKey.Reveal()})
		if err != nil { // wxcrypt's errors never hold a key or the token
			return nil, fmt.Errorf("platforms: %s: %w", p.Name, err)
		}
		ps = append(ps, platformevents.Platform{Name: p.Name, Crypter: c})
	}
	h, err := platformevents.New(platformevents.Config{Platforms: ps, Store: store, Node: cfg.Node, Registerer: reg, Logger: log, Now: now})
	if err != nil {
		return nil, err
	}
	return []api.Route{{Pattern: platformevents.Pattern, Handler: h, Label: "platform_events"}}, nil
}

// platformAPIRoutes builds the configured platforms' routes beside the
// event URL (package platformapi: the component token, the authorizers and
// their tokens, pre-auth codes) on self, the API they are mounted on, or
// nothing without platforms. Every replica serves them from its cache and
// etcd; a pre-auth code is asked of WeChat by whichever replica is called,
// with the component token in its cache.
func platformAPIRoutes(cfg *config.Config, self *api.API, log *slog.Logger) ([]api.Route, error) {
	if len(cfg.Platforms) == 0 {
		return nil, nil
	}
	// api_create_preauthcode mints no token: a transient failure may be
	// retried, within the request's time.
	fc, err := fetcher.New(fetcher.Config{BaseURL: cfg.WeChat.BaseURL, Logger: log, MaxAttempts: 3})
	if err != nil {
		return nil, fmt.Errorf("wechat: %w", err)
	}
	ps := make([]platformapi.Platform, 0, len(cfg.Platforms))
	for _, p := range cfg.Platforms {
		ps = append(ps, platformapi.Platform{Name: p.Name, ComponentAppID: p.ComponentAppID})
	}
	h, err := platformapi.New(platformapi.Config{Platforms: ps, Tokens: self, Records: self.Cache(), Store: self.Store(), PreAuth: fc, Logger: log})
	if err != nil {
		return nil, err
	}
	return h.Routes(), nil
}
