package config

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// accessExample is the "trust boundary" configuration, with every
// access key set.
const accessExample = `
listen: 0.0.0.0:8417
listen_unix: run/api.sock
socket_mode: "0660"
socket_group: app
tls:
  cert_file: /etc/wxtoken/tls.crt
  key_file: /etc/wxtoken/tls.key
  client_ca_file: /etc/wxtoken/ca.crt
metrics_listen: 127.0.0.1:9417
clients:
  - name: shop-web
    token_file: shop-web.token
    apps: [shop]
    allow: [read, invalidate, proxy, jssdk, ticket, status]
  - name: ops
    token_sha256: ` + opsSHA + `
    apps: ["*"]
    allow: [status]
  - name: billing
    cert_cn: billing.internal
    apps: [shop]
    allow: [read]
allow_anonymous: false
allowed_hosts: [wxtoken.internal]
http: {read_timeout: 10s, write_timeout: 20s, max_conns: 64}
report_limit: {per_client: 3, per_credential: 2}
wechat:
  base_url: http://wechat-sim:8500
  insecure_http: true
apps:
  - name: shop
    kind: classic
    appid: wx1
    secret: s
    tickets: [jsapi]
    jssdk_domains: [shop.example.com, "*.Example.org."]
    expose_ticket: true
    token_file: shop.token
    token_file_mode: 0600
`

const opsSHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func TestParseAccess(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "shop-web.token", "  shop-web-token-0123456789\n")
	c, err := Parse([]byte(accessExample), dir, nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	shopSum := sha256.Sum256([]byte("shop-web-token-0123456789"))
	opsSum, _ := hex.DecodeString(opsSHA)
	want := Access{
		ListenUnix:    filepath.Join(dir, "run/api.sock"),
		SocketMode:    0o660,
		SocketGroup:   "app",
		TLS:           TLS{CertFile: "/etc/wxtoken/tls.crt", KeyFile: "/etc/wxtoken/tls.key", ClientCAFile: "/etc/wxtoken/ca.crt"},
		MetricsListen: "127.0.0.1:9417",
		Clients: []Client{
			{Name: "shop-web", TokenSHA256: shopSum[:], TokenFile: filepath.Join(dir, "shop-web.token"), Apps: []string{"shop"},
				Allow: []string{"read", "invalidate", "proxy", "jssdk", "ticket", "status"}},
			{Name: "ops", TokenSHA256: opsSum, Apps: []string{"*"}, Allow: []string{"status"}},
			{Name: "billing", CertCN: "billing.internal", Apps: []string{"shop"}, Allow: []string{"read"}},
		},
		AllowedHosts: []string{"wxtoken.internal"},
		HTTP:         HTTP{ReadTimeout: 10 * time.Second, WriteTimeout: 20 * time.Second, MaxConns: 64},
		ReportLimit:  ReportLimit{PerClient: 3, PerCredential: 2},
	}
	if !reflect.DeepEqual(c.Access, want) {
		t.Errorf("Access:\n got %+v\nwant %+v", c.Access, want)
	}
	wantApp := AppAccess{JSSDKDomains: []string{"shop.example.com", "*.example.org"}, ExposeTicket: true, TokenFileMode: 0o600}
	if !reflect.DeepEqual(c.Apps[0].AppAccess, wantApp) {
		t.Errorf("AppAccess:\n got %+v\nwant %+v", c.Apps[0].AppAccess, wantApp)
	}
	if !c.WeChat.InsecureHTTP {
		t.Error("wechat.insecure_http: got false, want true")
	}
	if c.Anonymous() {
		t.Error("Anonymous: got true with clients set, want false")
	}
}

func TestAnonymous(t *testing.T) {
	tests := []struct {
		yaml string
		want bool
	}{
		{"", true},
		{"listen: '[::1]:8417'", true},
		{"listen: 'localhost:8417'\nlisten_unix: /run/x.sock", true},
		{"listen: 0.0.0.0:8417\nallow_anonymous: true", true},
		{"listen: 127.0.0.1:8417\nmetrics_listen: 0.0.0.0:9417\nallow_anonymous: true", true},
		{"clients: [{name: a, token_sha256: " + opsSHA + ", apps: ['*'], allow: [read]}]", false},
		{"clients: [{name: a, token_sha256: " + opsSHA + ", apps: ['*'], allow: [read]}]\nallow_anonymous: true", true},
	}
	for _, tt := range tests {
		t.Run(tt.yaml, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), "", nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := c.Anonymous(); got != tt.want {
				t.Errorf("Anonymous: got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestParseAccessErrors: each refusal is one line naming the field, and a
// client token never appears in one.
func TestParseAccessErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "short.token", "SECRETVALUE\n")
	writeFile(t, dir, "blank.token", " \n")
	writeFile(t, dir, "good.token", "good-SECRETVALUE-token")
	// A directory cannot be read as a file, even by root (tests may run as
	// root, which mode 0 does not stop).
	unreadable := filepath.Join(dir, "unreadable.token")
	if err := os.Mkdir(unreadable, 0o700); err != nil {
		t.Fatal(err)
	}
	const app = "apps: [{name: shop, kind: classic, appid: wx1, secret: s, tickets: [jsapi]}]\n"
	client := func(fields string) string {
		return app + "clients: [{name: c, " + fields + "}]\n"
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"exposed without clients", "listen: 0.0.0.0:8417",
			`config: listen: 0.0.0.0:8417 is reachable from other hosts and no clients are set: anyone who reaches it would read every token (set clients, or allow_anonymous: true)`},
		{"all interfaces without clients", "listen: ':8417'",
			`config: listen: :8417 is reachable from other hosts and no clients are set: anyone who reaches it would read every token (set clients, or allow_anonymous: true)`},
		{"exposed metrics without clients", "metrics_listen: 10.0.0.1:9417",
			`config: metrics_listen: 10.0.0.1:9417 is reachable from other hosts and no clients are set: anyone who reaches it would read every token (set clients, or allow_anonymous: true)`},
		{"http base_url", "wechat: {base_url: 'http://10.0.0.9:8500'}",
			`config: wechat.base_url: http://10.0.0.9:8500 is plain HTTP to a host that is not loopback: app secrets and tokens would cross the network in the clear (use https://, or set wechat.insecure_http: true)`},
		{"http wecom_base_url", "wechat: {wecom_base_url: 'http://proxy.internal'}",
			`config: wechat.wecom_base_url: http://proxy.internal is plain HTTP to a host that is not loopback: app secrets and tokens would cross the network in the clear (use https://, or set wechat.insecure_http: true)`},
		{"missing token_file", client("token_file: nope, apps: [shop], allow: [read]"),
			`config: clients[0].token_file: open ` + dir + `/nope: no such file or directory`},
		{"unreadable token_file", client("token_file: unreadable.token, apps: [shop], allow: [read]"),
			`config: clients[0].token_file: read ` + unreadable + `: is a directory`},
		{"blank token_file", client("token_file: blank.token, apps: [shop], allow: [read]"),
			`config: clients[0].token_file: file ` + dir + `/blank.token is empty`},
		{"short token", client("token_file: short.token, apps: [shop], allow: [read]"),
			`config: clients[0].token_file: the token in ` + dir + `/short.token is shorter than 16 characters (make one with: openssl rand -hex 32)`},
		{"bad token_sha256", client("token_sha256: SECRETVALUE, apps: [shop], allow: [read]"),
			`config: clients[0].token_sha256: want 64 hex digits (the SHA-256 of the token)`},
		{"token_file and token_sha256", client("token_file: good.token, token_sha256: " + opsSHA + ", apps: [shop], allow: [read]"),
			`config: clients[0].token_sha256: set either token_file or token_sha256, not both`},
		{"no credential", client("apps: [shop], allow: [read]"),
			`config: clients[0]: no credential (set token_file, token_sha256 or cert_cn)`},
		{"token and cert", "tls: {cert_file: c, key_file: k, client_ca_file: ca}\n" + client("token_file: good.token, cert_cn: x, apps: [shop], allow: [read]"),
			`config: clients[0].cert_cn: set either a token (token_file or token_sha256) or cert_cn, not both`},
		{"cert_cn without CA", client("cert_cn: x, apps: [shop], allow: [read]"),
			`config: clients[0].cert_cn: needs tls.client_ca_file: client certificates are asked for and checked only with it`},
		{"unknown app", client("token_file: good.token, apps: [shop, shp], allow: [read]"),
			`config: clients[0].apps[1]: unknown app "shp"`},
		{"star and more", client("token_file: good.token, apps: ['*', shop], allow: [read]"),
			`config: clients[0].apps: "*" stands for every app: list it alone`},
		{"no apps", client("token_file: good.token, allow: [read]"),
			`config: clients[0].apps: missing (app names, or ["*"] for every app)`},
		{"unknown action", client("token_file: good.token, apps: [shop], allow: [read, write]"),
			`config: clients[0].allow[1]: unknown action "write" (want read, invalidate, proxy, jssdk, ticket, status, preauth)`},
		{"no actions", client("token_file: good.token, apps: [shop]"),
			`config: clients[0].allow: missing (want some of read, invalidate, proxy, jssdk, ticket, status, preauth)`},
		{"duplicate client", app + "clients: [{name: c, token_file: good.token, apps: [shop], allow: [read]}, {name: c, token_sha256: " + opsSHA + ", apps: [shop], allow: [read]}]",
			`config: clients[1].name: duplicate "c" (also clients[0])`},
		{"same token twice", app + "clients: [{name: a, token_sha256: " + opsSHA + ", apps: [shop], allow: [read]}, {name: b, token_sha256: " + opsSHA + ", apps: [shop], allow: [read]}]",
			`config: clients[1]: same token as clients[0]`},
		{"key without cert", "tls: {key_file: k}", `config: tls.cert_file: missing (tls.key_file is set)`},
		{"CA without cert", "tls: {client_ca_file: ca}", `config: tls.client_ca_file: needs tls.cert_file and tls.key_file`},
		{"bad socket_mode", "listen_unix: /run/x.sock\nsocket_mode: '0999'", `config: socket_mode: bad mode "0999" (want an octal permission such as "0640")`},
		{"metrics on listen", "metrics_listen: 127.0.0.1:8417", `config: metrics_listen: same address as listen`},
		{"bad metrics_listen", "metrics_listen: nope", `config: metrics_listen: bad address "nope" (want host:port, e.g. 127.0.0.1:9417)`},
		{"bad allowed host", "allowed_hosts: ['http://x']", `config: allowed_hosts[0]: bad host name "http://x" (want a name without scheme or port)`},
		{"negative max_conns", "http: {max_conns: -1}", `config: http.max_conns: is negative (0 or absent: the default)`},
		{"negative timeout", "http: {write_timeout: -1s}", `config: http.write_timeout: is negative (0 or absent: the default)`},
		{"negative report limit", "report_limit: {per_credential: -1}", `config: report_limit.per_credential: is negative (0 or absent: the default)`},
		{"bad jssdk domain", "apps: [{name: shop, kind: classic, appid: wx1, secret: s, tickets: [jsapi], jssdk_domains: ['https://shop.example.com']}]",
			`config: apps[0].jssdk_domains[0]: bad domain "https://shop.example.com" (want a host name such as shop.example.com, or *.example.com)`},
		{"jssdk domains without jsapi", "apps: [{name: shop, kind: classic, appid: wx1, secret: s, jssdk_domains: [shop.example.com]}]",
			`config: apps[0].jssdk_domains: the app has no jsapi ticket to sign with (add tickets: [jsapi])`},
		{"expose_ticket without tickets", "apps: [{name: shop, kind: classic, appid: wx1, secret: s, expose_ticket: true}]",
			`config: apps[0].expose_ticket: the app has no tickets`},
		{"writable token file", "apps: [{name: shop, kind: classic, appid: wx1, secret: s, token_file: /run/t, token_file_mode: '0664'}]",
			`config: apps[0].token_file_mode: 0664 lets group or others write the file (want at most 0644)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), dir, nil)
			if err == nil {
				t.Fatalf("Parse: got nil error, want %q", tt.want)
			}
			msg := err.Error()
			if strings.Contains(msg, leakMarker) {
				t.Errorf("error leaks a token: %q", msg)
			}
			if !contains(strings.Split(msg, "\n"), tt.want) {
				t.Errorf("error:\n got %s\nwant a line %s", msg, tt.want)
			}
		})
	}
}

// TestParseWarnings: secret and token files that group or others may read
// are started with, and warned about.
func TestParseWarnings(t *testing.T) {
	dir := t.TempDir()
	secret := writeFile(t, dir, "secret", "s")
	token := writeFile(t, dir, "client.token", "client-token-0123456789")
	for _, p := range []string{secret, token} {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Parse([]byte(`
apps: [{name: shop, kind: classic, appid: wx1, secret_file: secret, token_file: t, token_file_mode: "0644"}]
clients: [{name: c, token_file: client.token, apps: [shop], allow: [read]}]
`), dir, nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []string{
		"config: apps[0].secret_file: " + secret + " may be read by group or others (mode 0644): chmod 600 it",
		"config: apps[0].token_file_mode: 0644 lets every local user read the token",
		"config: clients[0].token_file: " + token + " may be read by group or others (mode 0644): chmod 600 it",
	}
	if !reflect.DeepEqual(c.Warnings, want) {
		t.Errorf("Warnings:\n got %q\nwant %q", c.Warnings, want)
	}
	for _, p := range []string{secret, token} {
		if err := os.Chmod(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, err = Parse([]byte(`
apps: [{name: shop, kind: classic, appid: wx1, secret_file: secret}]
clients: [{name: c, token_file: client.token, apps: [shop], allow: [read]}]
`), dir, nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("Warnings with mode 0600: got %q, want none", c.Warnings)
	}
}
