package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Raw forms of the access keys, inlined into rawConfig and rawApp.

type rawAccess struct {
	ListenUnix     string         `yaml:"listen_unix"`
	SocketMode     string         `yaml:"socket_mode"`
	SocketGroup    string         `yaml:"socket_group"`
	TLS            rawTLS         `yaml:"tls"`
	MetricsListen  string         `yaml:"metrics_listen"`
	Clients        []rawClient    `yaml:"clients"`
	AllowAnonymous bool           `yaml:"allow_anonymous"`
	AllowedHosts   []string       `yaml:"allowed_hosts"`
	HTTP           rawHTTP        `yaml:"http"`
	ReportLimit    rawReportLimit `yaml:"report_limit"`
}

type rawTLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
}

type rawClient struct {
	Name        string   `yaml:"name"`
	TokenFile   string   `yaml:"token_file"`
	TokenSHA256 string   `yaml:"token_sha256"`
	CertCN      string   `yaml:"cert_cn"`
	Apps        []string `yaml:"apps"`
	Allow       []string `yaml:"allow"`
}

type rawHTTP struct {
	ReadTimeout  string `yaml:"read_timeout"`
	WriteTimeout string `yaml:"write_timeout"`
	MaxConns     *int   `yaml:"max_conns"`
}

type rawReportLimit struct {
	PerClient     *int `yaml:"per_client"`
	PerCredential *int `yaml:"per_credential"`
}

type rawAppAccess struct {
	JSSDKDomains  []string `yaml:"jssdk_domains" json:"jssdk_domains"`
	ExposeTicket  bool     `yaml:"expose_ticket" json:"expose_ticket"`
	TokenFileMode string   `yaml:"token_file_mode" json:"token_file_mode"`
}

// access builds the Access part of a Config; it runs last, so that it can
// hand over every warning collected.
func (b *builder) access(r *rawAccess) Access {
	a := Access{
		ListenUnix:    b.path(r.ListenUnix),
		SocketMode:    b.mode("socket_mode", r.SocketMode, DefaultSocketMode),
		SocketGroup:   r.SocketGroup,
		MetricsListen: r.MetricsListen,
		TLS: TLS{
			CertFile:     b.path(r.TLS.CertFile),
			KeyFile:      b.path(r.TLS.KeyFile),
			ClientCAFile: b.path(r.TLS.ClientCAFile),
		},
		AllowAnonymous: r.AllowAnonymous,
		AllowedHosts:   r.AllowedHosts,
		HTTP: HTTP{
			ReadTimeout:  b.duration("http.read_timeout", r.HTTP.ReadTimeout, DefaultReadTimeout),
			WriteTimeout: b.duration("http.write_timeout", r.HTTP.WriteTimeout, DefaultWriteTimeout),
			MaxConns:     intOrDefault(r.HTTP.MaxConns, DefaultMaxConns),
		},
		ReportLimit: ReportLimit{
			PerClient:     intOrDefault(r.ReportLimit.PerClient, DefaultReportsClient),
			PerCredential: intOrDefault(r.ReportLimit.PerCredential, DefaultReportsCred),
		},
	}
	for i, rc := range r.Clients {
		field := fmt.Sprintf("clients[%d]", i)
		c := Client{Name: rc.Name, CertCN: rc.CertCN, Apps: rc.Apps, Allow: rc.Allow}
		if rc.TokenFile != "" {
			c.TokenFile = b.path(rc.TokenFile)
			c.TokenSHA256 = b.tokenFile(field+".token_file", c.TokenFile)
		}
		if rc.TokenSHA256 != "" {
			if rc.TokenFile != "" {
				b.fail(field+".token_sha256", errors.New("set either token_file or token_sha256, not both"))
			}
			sum, err := hex.DecodeString(strings.TrimSpace(rc.TokenSHA256))
			if err != nil || len(sum) != sha256.Size {
				b.fail(field+".token_sha256", errors.New("want 64 hex digits (the SHA-256 of the token)"))
			} else {
				c.TokenSHA256 = sum
			}
		}
		a.Clients = append(a.Clients, c)
	}
	a.Warnings = b.warnings
	return a
}

// appAccess builds the AppAccess part of apps[i].
func (b *builder) appAccess(field, tokenFile string, r *rawAppAccess) AppAccess {
	a := AppAccess{
		ExposeTicket:  r.ExposeTicket,
		TokenFileMode: b.mode(field+".token_file_mode", r.TokenFileMode, DefaultTokenFileMode),
	}
	if tokenFile != "" && a.TokenFileMode&0o004 != 0 {
		b.warnings = append(b.warnings, fmt.Sprintf("config: %s.token_file_mode: %04o lets every local user read the token", field, a.TokenFileMode))
	}
	for _, d := range r.JSSDKDomains {
		a.JSSDKDomains = append(a.JSSDKDomains, strings.TrimSuffix(strings.ToLower(d), "."))
	}
	return a
}

// tokenFile reads a client's bearer token and returns its SHA-256. The
// content, trimmed of surrounding whitespace, is the token; it never
// appears in an error.
func (b *builder) tokenFile(field, path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		b.fail(field, err) // *fs.PathError: names the path, not the content
		return nil
	}
	tok := strings.TrimSpace(string(data))
	switch {
	case tok == "":
		b.fail(field, fmt.Errorf("file %s is empty", path))
		return nil
	case len(tok) < MinClientToken:
		b.fail(field, fmt.Errorf("the token in %s is shorter than %d characters (make one with: openssl rand -hex 32)", path, MinClientToken))
		return nil
	}
	b.private(field, path)
	sum := sha256.Sum256([]byte(tok))
	return sum[:]
}

// private warns when group or others may read the file at path.
func (b *builder) private(field, path string) {
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	if m := fi.Mode().Perm(); m&0o044 != 0 {
		b.warnings = append(b.warnings, fmt.Sprintf("config: %s: %s may be read by group or others (mode %04o): chmod 600 it", field, path, m))
	}
}

// mode parses an octal permission such as "0640", or returns def for "".
func (b *builder) mode(field, s string, def os.FileMode) os.FileMode {
	if s == "" {
		return def
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "0o"), 8, 32)
	if err != nil || n > 0o777 {
		b.fail(field, fmt.Errorf("bad mode %q (want an octal permission such as \"0640\")", s))
		return def
	}
	return os.FileMode(n)
}
