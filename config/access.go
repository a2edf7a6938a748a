package config

import (
	"os"
	"time"
)

// Actions a client may be allowed ("clients[].allow"). Each names the
// routes it opens:
//
//	read        GET /v1/apps/{app}/token
//	invalidate  POST /v1/apps/{app}/token/invalidate
//	proxy       /wechat/{app}/...
//	jssdk       GET /v1/apps/{app}/jssdk/signature
//	ticket      GET /v1/apps/{app}/ticket/{type} (apps with expose_ticket)
//	status      GET /v1/status, GET /metrics, /ui/
//	preauth     POST /v1/platforms/{name}/preauth
//
// A platform is an app for clients: a client with apps [saas] and read
// may GET /v1/platforms/saas/token, /authorizers and
// /authorizers/{appid}/token; with invalidate, POST their
// .../token/invalidate.
const (
	ActionRead       = "read"
	ActionInvalidate = "invalidate"
	ActionProxy      = "proxy"
	ActionJSSDK      = "jssdk"
	ActionTicket     = "ticket"
	ActionStatus     = "status"
	ActionPreAuth    = "preauth"
)

// Actions lists every action a client may be allowed, in the order above.
var Actions = []string{ActionRead, ActionInvalidate, ActionProxy, ActionJSSDK, ActionTicket, ActionStatus, ActionPreAuth}

// AllApps in a client's apps stands for every app.
const AllApps = "*"

// Defaults of the access keys, filled in by Parse.
const (
	DefaultSocketMode    os.FileMode = 0o660
	DefaultTokenFileMode os.FileMode = 0o640
	DefaultReadTimeout               = 30 * time.Second
	DefaultWriteTimeout              = 30 * time.Second
	DefaultMaxConns                  = 1024
	// DefaultReportsClient and DefaultReportsCred are the reports of a
	// current token (each may make the leader refresh) allowed per minute
	// per client and per credential. A client alone cannot use up a
	// credential's reports, so others' reports of a token that really died
	// still get through.
	DefaultReportsClient = 3
	DefaultReportsCred   = 6
	MinClientToken       = 16 // bytes: a shorter token_file is refused
	maxUnixPath          = 104
)

// Access says who may reach the API and over what. Its keys are at the top
// level of the file; it is embedded in Config.
type Access struct {
	// ListenUnix ("listen_unix") is an optional unix socket the API also
	// listens on, created with SocketMode ("socket_mode", octal string,
	// default "0660"; 0 means the default) and, if SocketGroup ("socket_group", a name or a
	// numeric gid) is set, given to that group. A relative path is taken
	// relative to the config file. The socket is removed on stop.
	ListenUnix  string
	SocketMode  os.FileMode
	SocketGroup string
	// TLS ("tls") puts TLS on Listen.
	TLS TLS
	// MetricsListen ("metrics_listen") is an optional host:port that serves
	// /metrics alone, to the same clients as the API.
	MetricsListen string
	// Clients ("clients") are who may call the API and what they may do.
	Clients []Client
	// AllowAnonymous ("allow_anonymous") lets callers without credentials
	// do everything. Without it, anonymous callers are served only when no
	// clients are set and every listener is loopback or a unix socket; a
	// non-loopback listener without clients is refused at start.
	AllowAnonymous bool
	// AllowedHosts ("allowed_hosts") are extra names the API answers to in
	// the Host header of plain-HTTP requests, beside loopback names, IP
	// addresses, the host name and the hosts of listen and advertise (a
	// guard against DNS rebinding).
	AllowedHosts []string
	// HTTP ("http") bounds the API's connections.
	HTTP HTTP
	// ReportLimit ("report_limit") bounds report-triggered refreshes.
	ReportLimit ReportLimit
	// Warnings are problems Parse found that do not stop a start, such as
	// a secret file that group or others may read. The replica logs them.
	Warnings []string
}

// TLS is the API's TLS ("tls"). CertFile and KeyFile are read at start and
// again whenever either file changes (or on SIGHUP); with ClientCAFile set,
// every caller must present a certificate it signed (mTLS). Relative paths
// are taken relative to the config file.
type TLS struct {
	CertFile     string // "cert_file"
	KeyFile      string // "key_file"
	ClientCAFile string // "client_ca_file"
}

// Enabled reports whether TLS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" }

// Client is one caller of the API (an item of "clients"). It is known by
// exactly one of a bearer token (TokenSHA256, from "token_file" or
// "token_sha256") or a client certificate's common name ("cert_cn").
type Client struct {
	Name string // "name": unique, shown in logs
	// TokenSHA256 is the SHA-256 of the client's bearer token: of the
	// token_file's content with surrounding whitespace trimmed, or the
	// decoded "token_sha256" hex. Nil for a cert_cn client.
	TokenSHA256 []byte
	TokenFile   string   // "token_file", if the token came from one
	CertCN      string   // "cert_cn": the verified client certificate's CN
	Apps        []string // "apps": app names, or AllApps
	Allow       []string // "allow": Actions
}

// HTTP bounds the API's connections ("http"). Zero means the default.
type HTTP struct {
	ReadTimeout  time.Duration // "read_timeout": a whole request, body included; default 30s
	WriteTimeout time.Duration // "write_timeout": an answer (the proxy sets its own); default 30s
	MaxConns     int           // "max_conns": connections open at once per listener; default 1024
}

// ReportLimit bounds reports of a dead token that would trigger a refresh
// ("report_limit"), in reports per minute (and as many at once). Zero means
// the default.
type ReportLimit struct {
	PerClient     int // "per_client": per client (anonymous: per remote address); default 10
	PerCredential int // "per_credential": per credential, whoever reports; default 4
}

// AppAccess is what an app shows to callers; it is embedded in App.
type AppAccess struct {
	// JSSDKDomains ("jssdk_domains") are the page hosts the JS-SDK
	// signature is made for: "shop.example.com" is that host alone,
	// "*.example.com" any host below example.com (not example.com itself).
	// Empty: no page is signed.
	JSSDKDomains []string
	// ExposeTicket ("expose_ticket") serves the raw tickets on
	// /v1/apps/{app}/ticket/{type}; otherwise they never leave the replica
	// and that route answers 404 unknown_ticket.
	ExposeTicket bool
	// TokenFileMode ("token_file_mode", octal string) is the permission of
	// TokenFile. Default "0640" (also for 0).
	TokenFileMode os.FileMode
}
