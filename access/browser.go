package access

import (
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
)

// hostAllowed guards against DNS rebinding: a page on a name the attacker
// controls, resolved to this replica's address, sends its requests with
// that name in Host. A plain-HTTP request over TCP must name this replica:
// an IP address, a loopback name, or one of the configured hosts (the
// replica passes its listen and advertise hosts and its host name). Over
// TLS the rebound name would fail the certificate check in the browser,
// and no browser reaches a unix socket, so those are not checked.
func (g *Guard) hostAllowed(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if _, unix := r.Context().Value(http.LocalAddrContextKey).(*net.UnixAddr); unix {
		return true
	}
	host := hostOnly(r.Host)
	if host == "" {
		return false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	host = strings.TrimSuffix(host, ".")
	if strings.EqualFold(host, "localhost") || hasSuffixFold(host, ".localhost") {
		return true
	}
	for _, h := range g.hosts {
		if strings.EqualFold(host, h) {
			return true
		}
	}
	return false
}

// hostOnly strips the port and IPv6 brackets from a Host header without
// allocating.
func hostOnly(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return ""
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		return h[:i]
	}
	return h
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// sameOrigin guards against cross-site requests from browsers: a request
// that carries an Origin must come from this replica's own origin (the
// scheme of the connection and the Host it was sent to), and one that
// carries Sec-Fetch-Site must say "same-origin" or "none" (typed by the
// user). Programs send neither header and pass.
func sameOrigin(r *http.Request) bool {
	if site := r.Header["Sec-Fetch-Site"]; len(site) > 0 && site[0] != "same-origin" && site[0] != "none" {
		return false
	}
	origins := r.Header["Origin"]
	if len(origins) == 0 {
		return true
	}
	if len(origins) > 1 {
		return false
	}
	o := origins[0]
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	return len(o) == len(scheme)+len(r.Host) && strings.EqualFold(o[:len(scheme)], scheme) && strings.EqualFold(o[len(scheme):], r.Host)
}

// jsonBody reports whether a POST may be served: its body is declared
// application/json (parameters such as charset allowed), or it has no body
// and declares no type. A browser's cross-site form always declares one of
// the types it may send without asking (form, multipart or text/plain).
func jsonBody(r *http.Request) bool {
	ct := r.Header["Content-Type"]
	if len(ct) == 0 {
		return r.ContentLength == 0
	}
	if len(ct) > 1 {
		return false
	}
	mt, _, _ := strings.Cut(ct[0], ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

// HostNames returns the names a replica answers to beside IP addresses and
// loopback names: the hosts of addrs (listen addresses, or URLs such as
// advertise) that are names, and this machine's host name.
func HostNames(addrs ...string) []string {
	var out []string
	add := func(h string) {
		if h == "" {
			return
		}
		if _, err := netip.ParseAddr(h); err == nil {
			return
		}
		out = append(out, strings.ToLower(h))
	}
	for _, a := range addrs {
		if _, rest, ok := strings.Cut(a, "://"); ok {
			a, _, _ = strings.Cut(rest, "/")
		}
		add(hostOnly(a))
	}
	if h, err := os.Hostname(); err == nil {
		add(h)
	}
	return out
}
