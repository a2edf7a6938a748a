package wechatproxy

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// errBadPath is why a path is refused; its text goes to the caller.
var errBadPath = errors.New(`the path must not hold "..", "." or empty segments, backslashes, or encoded dots, slashes or backslashes (%2e, %2f, %5c)`)

// below returns the part of an escaped request path /wechat/{app}/REST
// after the app segment ("REST", without its leading slash), and whether
// the path has that shape. The app segment is skipped as it stands in the
// escaped path, whatever escapes it holds.
func below(escaped string) (string, bool) {
	const prefix = "/wechat/"
	if !strings.HasPrefix(escaped, prefix) {
		return "", false
	}
	_, rest, ok := strings.Cut(escaped[len(prefix):], "/")
	return rest, ok
}

// checkPath refuses a path below the app that could leave the base URL's
// path once some server down the line decodes or normalizes it: any
// encoded dot, slash or backslash (in any case), a backslash, and ".",
// ".." or empty segments. WeChat's API paths need none of these.
func checkPath(rest string) error {
	if strings.ContainsRune(rest, '\\') {
		return errBadPath
	}
	for i := 0; i+2 < len(rest); i++ {
		if rest[i] != '%' {
			continue
		}
		switch strings.ToLower(rest[i+1 : i+3]) {
		case "2e", "2f", "5c":
			return errBadPath
		}
	}
	if rest == "" {
		return nil
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return errBadPath
		}
	}
	return nil
}

// target builds the URL of a call: base's path, then rest (escaped, as
// checked by checkPath), then the caller's query without access_token
// (the Transport puts the app's in).
func target(base *url.URL, rest, rawQuery string) (*url.URL, error) {
	if err := checkPath(rest); err != nil {
		return nil, err
	}
	u, err := url.Parse(base.String() + "/" + rest)
	if err != nil {
		return nil, errBadPath
	}
	// The path must be read back exactly as written: nothing taken for a
	// query, a fragment or another host.
	if u.Scheme != base.Scheme || u.Host != base.Host || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" ||
		u.EscapedPath() != base.EscapedPath()+"/"+rest {
		return nil, errBadPath
	}
	u.RawQuery = rawQuery
	return u, nil
}

// credentialHeaders are the caller's credentials and where it came from:
// meant for the replica, never for WeChat.
var credentialHeaders = []string{"Authorization", "Cookie", "Cookie2", "Forwarded", "X-Forwarded-For",
	"X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "Referer"}

// dropCredentials removes the caller's credentials from h, and any header
// whose value holds an access_token.
func dropCredentials(h http.Header) {
	for _, k := range credentialHeaders {
		h.Del(k)
	}
	for k, vs := range h {
		for _, v := range vs {
			if strings.Contains(strings.ToLower(v), "access_token") {
				delete(h, k)
				break
			}
		}
	}
}
