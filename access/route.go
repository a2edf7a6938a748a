package access

import (
	"net/http"
	"net/url"
	"strings"
)

// Action is a set of things a client may do; each names a group of routes.
type Action uint8

// The actions, one bit each. An Open Platform third-party platform is an
// app for scopes: its name stands where an app's does.
const (
	// Read: GET /v1/apps/{app}/token; a platform's
	// GET /v1/platforms/{app}/token, /authorizers and
	// /authorizers/{appid}/token.
	Read Action = 1 << iota
	// Invalidate: POST /v1/apps/{app}/token/invalidate; a platform's
	// POST /v1/platforms/{app}/token/invalidate and
	// /authorizers/{appid}/token/invalidate.
	Invalidate
	Proxy  // /wechat/{app}/...
	JSSDK  // GET /v1/apps/{app}/jssdk/signature
	Ticket // GET /v1/apps/{app}/ticket/{type}
	Status // GET /v1/status, GET /metrics, /ui/
	// PreAuth: POST /v1/platforms/{app}/preauth, a pre-auth code and the
	// link to WeChat's authorization page.
	PreAuth

	// All is every action.
	All = Read | Invalidate | Proxy | JSSDK | Ticket | Status | PreAuth
)

var actionNames = []struct {
	a    Action
	name string
}{{Read, "read"}, {Invalidate, "invalidate"}, {Proxy, "proxy"}, {JSSDK, "jssdk"}, {Ticket, "ticket"}, {Status, "status"}, {PreAuth, "preauth"}}

// ParseAction returns the action named name ("read", "invalidate",
// "proxy", "jssdk", "ticket", "status", "preauth") and whether there is
// one.
func ParseAction(name string) (Action, bool) {
	for _, n := range actionNames {
		if n.name == name {
			return n.a, true
		}
	}
	return 0, false
}

// String returns the names of the actions in a, joined by ",".
func (a Action) String() string {
	var names []string
	for _, n := range actionNames {
		if a&n.a != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, ",")
}

// route is what a request asks for, as the API's mux will route it.
type route struct {
	action Action // 0: a route no action names (the mux answers 404 or 405)
	app    string // the app a per-app action is about, else ""
	// open routes are served to anyone, with no credentials and none of
	// the browser checks: /healthz and /readyz, which tell nothing, and a
	// platform's event URL, POST /v1/platforms/{name}/events, which WeChat
	// calls and which verifies every push by its signature (see package
	// platformevents). WeChat sends its pushes as text/xml, with the Host
	// of the public URL the platform registered; a rebound Host or a
	// cross-site form gains nothing there, since the answer is "success"
	// and only a push signed with the platform's token is acted on.
	open bool
}

// maxSegs is how many leading path segments classify looks at.
const maxSegs = 7

// classify tells which action a request needs and for which app. It reads
// the path the way http.ServeMux does (the escaped path cut at "/", each
// segment unescaped), so that the app it names is the app the handler
// serves; it looks at the path alone, leaving wrong methods to the mux's
// 405. It does not allocate for a path without escapes.
func classify(r *http.Request) route {
	var segs [maxSegs]string
	n, more := split(r, &segs)
	s := segs[:n]
	if n == 0 {
		return route{}
	}
	switch s[0] {
	case "healthz", "readyz":
		return route{open: n == 1 && !more}
	case "metrics":
		if n == 1 && !more {
			return route{action: Status}
		}
	case "ui":
		return route{action: Status}
	case "wechat":
		if n >= 2 {
			return route{action: Proxy, app: s[1]}
		}
	case "v1":
		switch {
		case n == 2 && !more && s[1] == "status":
			return route{action: Status}
		case n >= 4 && !more && s[1] == "platforms":
			return platformRoute(s[2], s[3:])
		case n >= 4 && !more && s[1] == "apps":
			app := s[2]
			switch {
			case n == 4 && s[3] == "token":
				return route{action: Read, app: app}
			case n == 5 && s[3] == "token" && s[4] == "invalidate":
				return route{action: Invalidate, app: app}
			case n == 5 && s[3] == "ticket":
				return route{action: Ticket, app: app}
			case n == 5 && s[3] == "jssdk" && s[4] == "signature":
				return route{action: JSSDK, app: app}
			}
		}
	}
	return route{}
}

// platformRoute classifies /v1/platforms/{name}/rest...: the event URL is
// open (WeChat signs its pushes), the rest is per platform as for an app.
func platformRoute(name string, rest []string) route {
	switch {
	case len(rest) == 1 && rest[0] == "events":
		return route{open: true}
	case len(rest) == 1 && rest[0] == "token",
		len(rest) == 1 && rest[0] == "authorizers",
		len(rest) == 3 && rest[0] == "authorizers" && rest[2] == "token":
		return route{action: Read, app: name}
	case len(rest) == 2 && rest[0] == "token" && rest[1] == "invalidate",
		len(rest) == 4 && rest[0] == "authorizers" && rest[2] == "token" && rest[3] == "invalidate":
		return route{action: Invalidate, app: name}
	case len(rest) == 1 && rest[0] == "preauth":
		return route{action: PreAuth, app: name}
	}
	return route{}
}

// split puts up to maxSegs leading segments of r's path into segs and
// reports how many, and whether more follow. A path without escapes
// (RawPath empty) is cut as it is; otherwise the escaped path is cut and
// each segment unescaped, as the mux does.
func split(r *http.Request, segs *[maxSegs]string) (n int, more bool) {
	p := r.URL.Path
	escaped := r.URL.RawPath != ""
	if escaped {
		p = r.URL.EscapedPath()
	}
	if !strings.HasPrefix(p, "/") {
		return 0, false
	}
	p = p[1:]
	for {
		if n == maxSegs {
			return n, true
		}
		seg, rest, found := p, "", false
		if i := strings.IndexByte(p, '/'); i >= 0 {
			seg, rest, found = p[:i], p[i+1:], true
		}
		if escaped {
			if u, err := url.PathUnescape(seg); err == nil {
				seg = u
			}
		}
		segs[n] = seg
		n++
		if !found {
			return n, false
		}
		p = rest
	}
}
