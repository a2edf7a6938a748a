package replica

import (
	"log/slog"
	"time"

	"github.com/wxtoken/wxtoken/api"
	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/jssdk"
	"github.com/wxtoken/wxtoken/tokenfile"
	"github.com/wxtoken/wxtoken/tokenstore"
	"github.com/wxtoken/wxtoken/wechatproxy"
)

// appRoutes builds the handlers that the API mounts beside its own: the
// WeChat proxy and JS-SDK signatures of apps, and the platforms' token,
// authorizer and pre-auth routes (platforms.go; their event URL is
// mounted apart). They read tokens through self, the API they are mounted
// on.
func appRoutes(cfg *config.Config, self *api.API, log *slog.Logger, now func() time.Time) ([]api.Route, error) {
	upstreams := make(map[string]string, len(cfg.Apps))
	domains := make(map[string][]string, len(cfg.Apps))
	for _, a := range cfg.Apps {
		domains[a.Name] = a.JSSDKDomains
		upstreams[a.Name] = cfg.WeChat.BaseURL
		if a.Kind == config.KindWeCom {
			upstreams[a.Name] = cfg.WeChat.WeComBaseURL
		}
	}
	proxy, err := wechatproxy.New(wechatproxy.Config{Tokens: self, Upstreams: upstreams, Logger: log})
	if err != nil {
		return nil, err
	}
	sig, err := jssdk.New(jssdk.Config{Tickets: self, Domains: domains, Now: now})
	if err != nil {
		return nil, err
	}
	plat, err := platformAPIRoutes(cfg, self, log)
	if err != nil {
		return nil, err
	}
	return append([]api.Route{{Pattern: wechatproxy.Pattern, Handler: proxy, Label: "proxy"}, {Pattern: jssdk.Pattern, Handler: sig, Label: "jssdk"}}, plat...), nil
}

// tokenSink returns the sink for the apps with a token_file, or nil.
func tokenSink(cfg *config.Config, cache *tokenstore.Cache, log *slog.Logger, now func() time.Time) (*tokenfile.Sink, error) {
	var files []tokenfile.File
	for _, a := range cfg.Apps {
		if a.TokenFile != "" {
			files = append(files, tokenfile.File{Cred: tokenstore.CredName(a.Name, "token"), Path: a.TokenFile, Mode: a.TokenFileMode})
		}
	}
	if len(files) == 0 {
		return nil, nil
	}
	return tokenfile.New(tokenfile.Config{Source: cache, Files: files, Margin: cfg.Refresh.Margin, Overlap: cfg.Refresh.Overlap, Logger: log, Now: now})
}

// cacheApps is what the cache follows: a candidate every credential (it
// may lead, and a leader serves every app of the cluster's), a serve-only
// replica only the apps and platforms of its own config (a platform's
// credentials are "<name>/component" and "<name>/authorizer/<appid>"), one
// watch each.
func cacheApps(cfg *config.Config) []string {
	if cfg.Election.Candidate {
		return nil
	}
	apps := make([]string, 0, len(cfg.Apps)+len(cfg.Platforms))
	for _, a := range cfg.Apps {
		apps = append(apps, a.Name)
	}
	for _, p := range cfg.Platforms { // its component and authorizer tokens
		apps = append(apps, p.Name)
	}
	return apps
}
