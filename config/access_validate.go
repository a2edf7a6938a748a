package config

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var (
	clientNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	domainRE     = regexp.MustCompile(`^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// Loopback reports whether hostport ("127.0.0.1:8417", "[::1]:80",
// "localhost:8417") names a loopback address, reachable from this host
// alone. An empty or unspecified host (":8417", "0.0.0.0:8417") is not.
func Loopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Exposed returns the fields of the TCP listeners that other hosts can
// reach ("listen", "metrics_listen"); a unix socket is never among them.
func (c *Config) Exposed() []string {
	var out []string
	// An address that is not host:port is refused as such elsewhere.
	reachable := func(addr string) bool {
		_, _, err := net.SplitHostPort(addr)
		return err == nil && !Loopback(addr)
	}
	if reachable(c.Listen) {
		out = append(out, "listen")
	}
	if c.MetricsListen != "" && reachable(c.MetricsListen) {
		out = append(out, "metrics_listen")
	}
	return out
}

// Anonymous reports whether callers without credentials are served:
// with allow_anonymous, or with no clients while every listener is
// loopback or a unix socket.
func (c *Config) Anonymous() bool {
	return c.AllowAnonymous || (len(c.Clients) == 0 && len(c.Exposed()) == 0)
}

// ExposureError returns the refusal of a replica whose API other hosts
// can reach with no clients and no allow_anonymous, as one line naming the
// field; nil otherwise. Validate includes it; call it again after changing
// Listen.
func (c *Config) ExposureError() error {
	if exposed := c.Exposed(); len(c.Clients) == 0 && !c.AllowAnonymous && len(exposed) > 0 {
		addr := c.Listen
		if exposed[0] == "metrics_listen" {
			addr = c.MetricsListen
		}
		return fmt.Errorf("config: %s: %s is reachable from other hosts and no clients are set: anyone who reaches it would read every token (set clients, or allow_anonymous: true)", exposed[0], addr)
	}
	return nil
}

func (p *problems) access(c *Config) {
	a := &c.Access
	if a.ListenUnix != "" {
		switch {
		case strings.HasSuffix(a.ListenUnix, "/"):
			p.addf("listen_unix", "%q names a directory (want a socket path)", a.ListenUnix)
		case len(a.ListenUnix) > maxUnixPath:
			p.addf("listen_unix", "%q is longer than %d bytes, the most a unix socket path may be", a.ListenUnix, maxUnixPath)
		}
	}
	if strings.ContainsFunc(a.SocketGroup, badNameRune) {
		p.addf("socket_group", "bad group %q", a.SocketGroup)
	}
	if a.MetricsListen != "" {
		p.hostPort("metrics_listen", a.MetricsListen)
		if a.MetricsListen == c.Listen {
			p.addf("metrics_listen", "same address as listen")
		}
	}
	switch t := a.TLS; {
	case t.CertFile != "" && t.KeyFile == "":
		p.addf("tls.key_file", "missing (tls.cert_file is set)")
	case t.CertFile == "" && t.KeyFile != "":
		p.addf("tls.cert_file", "missing (tls.key_file is set)")
	case t.CertFile == "" && t.ClientCAFile != "":
		p.addf("tls.client_ca_file", "needs tls.cert_file and tls.key_file")
	}
	p.clients(c)
	for i, h := range a.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/:@ \t") || strings.ContainsFunc(h, badNameRune) {
			p.addf(fmt.Sprintf("allowed_hosts[%d]", i), "bad host name %q (want a name without scheme or port)", h)
		}
	}
	// Zero means the default (a Config built in code leaves them zero).
	for _, d := range []struct {
		field string
		v     int64
	}{
		{"http.read_timeout", int64(a.HTTP.ReadTimeout)}, {"http.write_timeout", int64(a.HTTP.WriteTimeout)},
		{"http.max_conns", int64(a.HTTP.MaxConns)},
		{"report_limit.per_client", int64(a.ReportLimit.PerClient)}, {"report_limit.per_credential", int64(a.ReportLimit.PerCredential)},
	} {
		if d.v < 0 {
			p.addf(d.field, "is negative (0 or absent: the default)")
		}
	}
	if err := c.ExposureError(); err != nil {
		*p = append(*p, err)
	}
	p.plainHTTP("wechat.base_url", c.WeChat.BaseURL, c.WeChat.InsecureHTTP)
	p.plainHTTP("wechat.wecom_base_url", c.WeChat.WeComBaseURL, c.WeChat.InsecureHTTP)
	for i, app := range c.Apps {
		p.appAccess(fmt.Sprintf("apps[%d]", i), app)
	}
}

func (p *problems) hostPort(field, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.addf(field, "bad address %q (want host:port, e.g. 127.0.0.1:9417)", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.addf(field, "bad port in %q (want 0 to 65535)", addr)
	}
}

// plainHTTP refuses an http:// base URL to a host that is not loopback,
// unless insecure is set: the secrets would cross the network in the clear.
func (p *problems) plainHTTP(field, raw string, insecure bool) {
	u, err := url.Parse(raw)
	if insecure || err != nil || u.Scheme != "http" || badURL(raw, true) != "" || Loopback(u.Hostname()) {
		return
	}
	p.addf(field, "%s is plain HTTP to a host that is not loopback: app secrets and tokens would cross the network in the clear (use https://, or set wechat.insecure_http: true)", raw)
}

func (p *problems) clients(c *Config) {
	names := map[string]int{}
	for i, cl := range c.Clients {
		field := fmt.Sprintf("clients[%d]", i)
		switch j, dup := names[cl.Name]; {
		case cl.Name == "":
			p.addf(field+".name", "missing")
		case !clientNameRE.MatchString(cl.Name):
			p.addf(field+".name", "bad name %q (want [A-Za-z0-9][A-Za-z0-9._-]{0,63})", cl.Name)
		case dup:
			p.addf(field+".name", "duplicate %q (also clients[%d])", cl.Name, j)
		default:
			names[cl.Name] = i
		}
		hasToken := cl.TokenSHA256 != nil || cl.TokenFile != ""
		switch {
		case !hasToken && cl.CertCN == "":
			p.addf(field, "no credential (set token_file, token_sha256 or cert_cn)")
		case hasToken && cl.CertCN != "":
			p.addf(field+".cert_cn", "set either a token (token_file or token_sha256) or cert_cn, not both")
		case cl.CertCN != "" && c.TLS.ClientCAFile == "":
			p.addf(field+".cert_cn", "needs tls.client_ca_file: client certificates are asked for and checked only with it")
		}
		for j, other := range c.Clients[:i] {
			switch {
			case cl.TokenSHA256 != nil && bytes.Equal(cl.TokenSHA256, other.TokenSHA256):
				p.addf(field, "same token as clients[%d]", j)
			case cl.CertCN != "" && cl.CertCN == other.CertCN:
				p.addf(field+".cert_cn", "same cert_cn as clients[%d]", j)
			}
		}
		switch {
		case len(cl.Apps) == 0:
			p.addf(field+".apps", `missing (app names, or ["*"] for every app)`)
		case slices.Contains(cl.Apps, AllApps) && len(cl.Apps) > 1:
			p.addf(field+".apps", `"*" stands for every app: list it alone`)
		}
		for j, name := range cl.Apps {
			af := fmt.Sprintf("%s.apps[%d]", field, j)
			_, known := c.App(name)
			if !known { // a platform is an app for client scopes
				_, known = c.Platform(name)
			}
			switch {
			case name == AllApps:
			case !known:
				p.addf(af, "unknown app %q", name)
			case slices.Contains(cl.Apps[:j], name):
				p.addf(af, "duplicate %q", name)
			}
		}
		if len(cl.Allow) == 0 {
			p.addf(field+".allow", "missing (want some of %s)", strings.Join(Actions, ", "))
		}
		for j, act := range cl.Allow {
			af := fmt.Sprintf("%s.allow[%d]", field, j)
			switch {
			case !slices.Contains(Actions, act):
				p.addf(af, "unknown action %q (want %s)", act, strings.Join(Actions, ", "))
			case slices.Contains(cl.Allow[:j], act):
				p.addf(af, "duplicate %q", act)
			}
		}
	}
}

func (p *problems) appAccess(field string, a App) {
	for i, d := range a.JSSDKDomains {
		if len(d) > 253 || !domainRE.MatchString(d) {
			p.addf(fmt.Sprintf("%s.jssdk_domains[%d]", field, i), "bad domain %q (want a host name such as shop.example.com, or *.example.com)", d)
		}
	}
	if len(a.JSSDKDomains) > 0 && !slices.Contains(a.Tickets, TicketJSAPI) {
		p.addf(field+".jssdk_domains", "the app has no jsapi ticket to sign with (add tickets: [jsapi])")
	}
	if a.ExposeTicket && len(a.Tickets) == 0 {
		p.addf(field+".expose_ticket", "the app has no tickets")
	}
	if a.TokenFileMode&0o022 != 0 {
		p.addf(field+".token_file_mode", "%04o lets group or others write the file (want at most 0644)", a.TokenFileMode)
	}
}
