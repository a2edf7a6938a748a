// Package config loads and validates the YAML configuration of
// `wxtoken serve`. Decoding is strict (an unknown key is an error), defaults
// are filled in, and every problem is reported as one line that names the
// field, such as
//
//	config: apps[1].kind: unknown kind "classik" (want classic, stable or wecom)
//
// Secrets (app secrets, the etcd password) are held in Secret, which never
// prints its value, and never appear in an error.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Kinds of app credential, the values of App.Kind.
const (
	KindClassic = "classic" // cgi-bin/token: each fetch invalidates the previous token after an overlap
	KindStable  = "stable"  // cgi-bin/stable_token: idempotent in normal mode
	KindWeCom   = "wecom"   // WeCom cgi-bin/gettoken with corpid and corpsecret
)

// Ticket types an app may enable, the values of App.Tickets.
const (
	TicketJSAPI  = "jsapi"   // JS-SDK ticket
	TicketWxCard = "wx_card" // card (卡券) API ticket
)

// Defaults filled in by Parse for keys that are absent.
const (
	DefaultListen       = "127.0.0.1:8417"
	DefaultDataDir      = "./wxtoken-data"
	DefaultLogLevel     = "info"
	DefaultEtcdPrefix   = "/wxtoken"
	DefaultDialTimeout  = 5 * time.Second
	DefaultTTL          = 10 * time.Second
	DefaultHoldoff      = 10 * time.Minute
	DefaultBefore       = 8 * time.Minute
	DefaultJitter       = time.Minute
	DefaultFetchTimeout = 30 * time.Second
	DefaultConcurrency  = 8
	DefaultMargin       = 30 * time.Second
	DefaultOverlap      = 5 * time.Minute
	// DefaultReadWait bounds how long a read waits for a due fetch in flight
	// instead of answering no_credential.
	DefaultReadWait = 2 * time.Second
	// DefaultInvalidateWait bounds how long an invalidation waits for the
	// new token.
	DefaultInvalidateWait = 10 * time.Second
	// DefaultReportInterval is the least time between two refreshes of one
	// credential caused by reports that WeChat's check could not confirm.
	DefaultReportInterval = time.Minute
	DefaultBaseURL        = "https://api.weixin.qq.com"
	DefaultWeComBaseURL   = "https://qyapi.weixin.qq.com"
	DefaultDailyBudget    = 1000
)

// Limits checked by Validate.
const (
	MinTTL = 2 * time.Second
	MaxTTL = 5 * time.Minute
	// MaxClassicBudget is WeChat's daily limit on cgi-bin/token calls.
	MaxClassicBudget = 2000
)

// Config is the whole configuration of one replica. It is a plain value:
// read it from any number of goroutines, but do not change it while others
// read it.
type Config struct {
	Node   string // "node": this replica's name; default the host name
	Listen string // "listen": host:port of the HTTP API; default DefaultListen
	// Advertise is the URL others reach this replica's API by, as shown in
	// status ("advertise"); default: http://listen, with the host name in
	// place of an unspecified address (0.0.0.0, ::).
	Advertise string
	DataDir   string // "data_dir": embedded etcd lives here; default DefaultDataDir
	LogLevel  string // "log_level": debug, info, warn or error; default info
	Etcd      Etcd
	// Encryption ("encryption") seals the records in etcd.
	Encryption Encryption
	Election   Election
	Refresh    Refresh
	WeChat     WeChat // "wechat"
	Apps       []App
	// Platforms ("platforms") are WeChat Open Platform third-party
	// platforms: platform.go.
	Platforms []Platform
	Access    // listen_unix, tls, clients, ...: access.go
}

// Etcd says where the cluster state lives ("etcd").
type Etcd struct {
	// Endpoints ("endpoints") are http(s) URLs of etcd members. Empty means an
	// embedded single-node etcd in DataDir.
	Endpoints []string
	// Prefix ("prefix") is put before every key; it starts with "/" and does
	// not end with one. Default DefaultEtcdPrefix.
	Prefix string
	// Username ("username") and Password ("password" with ${ENV} expansion, or
	// "password_file") authenticate to etcd; set both or neither.
	Username string
	Password Secret
	// DialTimeout ("dial_timeout") bounds connecting to etcd. Default 5s.
	DialTimeout time.Duration
	// TLS ("tls") is the client side of TLS to https:// endpoints.
	TLS EtcdTLS
}

// Election controls who may lead ("election").
type Election struct {
	// TTL ("ttl") is the leader lease's time to live, a whole number of
	// seconds between MinTTL and MaxTTL. Default 10s.
	TTL time.Duration
	// Candidate ("candidate") is false for a replica that only watches and
	// serves and never calls WeChat. Default true.
	Candidate bool
	// Holdoff ("holdoff") is how long a leader that WeChat refused for its host
	// (40164, 895xx) stays out of the race. Default 10m.
	Holdoff time.Duration
}

// Refresh controls the leader's refresh loop ("refresh").
type Refresh struct {
	Before       time.Duration // "before": refresh this long before expiry; default 8m
	Jitter       time.Duration // "jitter": random extra earliness per credential, < Before; default 1m
	FetchTimeout time.Duration // "fetch_timeout": bound on one fetch including retries; default 30s
	Concurrency  int           // "concurrency": fetches in flight across credentials; default 8
	Margin       time.Duration // "margin": never serve a credential with less than this left; default 30s
	Overlap      time.Duration // "overlap": how long WeChat keeps the old token after a fetch (classic), or the stable rotation window; default 5m
	// ReadWait ("read_wait") bounds how long a read waits for a due fetch in
	// flight rather than answer no_credential; default 2s.
	ReadWait time.Duration
	// InvalidateWait ("invalidate_wait") bounds how long an invalidation
	// waits for the new token; default 10s.
	InvalidateWait time.Duration
	// ReportInterval ("report_interval") is the least time between two
	// refreshes of one credential caused by reports that WeChat's check
	// could not confirm; default 1m.
	ReportInterval time.Duration
}

// WeChat holds the API base URLs ("wechat"); change them for an egress proxy
// or the simulator. They never end with "/".
type WeChat struct {
	BaseURL      string // "base_url": mp and mini-program calls; default DefaultBaseURL
	WeComBaseURL string // "wecom_base_url": WeCom calls; default DefaultWeComBaseURL
	// InsecureHTTP ("insecure_http") allows an http:// base URL to a host
	// that is not loopback (a simulator on a private network); otherwise
	// one is refused, since the app secrets would cross the network in the
	// clear.
	InsecureHTTP bool
}

// App is one credential to keep fresh (an item of "apps").
type App struct {
	Name        string   // "name": [a-z0-9][a-z0-9_-]{0,62}, unique; used in URLs
	Kind        string   // "kind": KindClassic, KindStable or KindWeCom
	AppID       string   // "appid": the appid, or the corpid for wecom
	Secret      Secret   // "secret" (with ${ENV} expansion) or "secret_file"
	DailyBudget int      // "daily_budget": max fetches per China-time day; default 1000
	Tickets     []string // "tickets": TicketJSAPI and/or TicketWxCard; classic and stable only
	// TokenFile ("token_file"), if set, is a file that every replica keeps
	// holding the app's current token (the bare value, mode 0640, replaced
	// atomically). A relative path is taken relative to the config file.
	TokenFile string
	AppAccess // jssdk_domains, expose_ticket, token_file_mode: access.go
}

// App returns the app named name and whether there is one.
func (c *Config) App(name string) (App, bool) {
	for _, a := range c.Apps {
		if a.Name == name {
			return a, true
		}
	}
	return App{}, false
}

// SlogLevel returns LogLevel as a slog.Level (info if LogLevel is not one
// of the four valid names).
func (c *Config) SlogLevel() slog.Level {
	switch c.LogLevel {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// Load reads the YAML file at path and parses it with Parse, taking ${VAR}
// from the process environment and resolving a relative secret_file or
// password_file against the file's directory.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, filepath.Dir(path), os.LookupEnv)
}

// Parse decodes one YAML document, fills in defaults, reads secret files
// (a relative path is taken relative to dir; "" means the working directory),
// expands ${VAR} in secret and password with lookupEnv (nil means no
// variable is set), and validates the result. An empty document is a valid
// configuration with every default and no apps.
//
// The error, if any, joins one error per problem; each reads
// "config: <field>: <problem>" and never contains a secret value.
func Parse(data []byte, dir string, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	var raw rawConfig
	if err := decode(data, &raw); err != nil {
		return nil, err
	}
	if err := readAppsFile(&raw, dir); err != nil {
		return nil, err
	}
	b := builder{dir: dir, lookupEnv: lookupEnv}
	c := b.build(&raw)
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}
