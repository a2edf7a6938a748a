// Package jssdk signs pages for WeChat's JS-SDK (wx.config) with an app's
// jsapi ticket, so that the ticket itself never leaves the replica.
package jssdk

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// MaxURL bounds the length of a page URL to sign.
const MaxURL = 4096

// Sign returns the JS-SDK signature of a page: the lower-case hex SHA-1 of
// "jsapi_ticket=T&noncestr=N&timestamp=TS&url=URL", the keys in that
// (sorted) order and the values as they are, unescaped. pageURL must be the
// page's full URL without its #fragment; see CheckURL.
func Sign(ticket, nonce string, timestamp int64, pageURL string) string {
	s := "jsapi_ticket=" + ticket + "&noncestr=" + nonce + "&timestamp=" + strconv.FormatInt(timestamp, 10) + "&url=" + pageURL
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// CheckURL returns why pageURL cannot be signed, or nil. WeChat checks the
// signature against the page's URL without its fragment, so a URL with a
// "#" is refused rather than silently cut: the caller should send
// location.href.split('#')[0]. The URL must be an absolute http or https
// URL of at most MaxURL bytes, with a host of ASCII letters, digits, dots
// and hyphens (punycode for other names), an optional port, no user name
// and no backslash: parsers that disagree on such URLs could name another
// host than the one checked.
func CheckURL(pageURL string) error {
	switch {
	case pageURL == "":
		return errors.New("url is required: pass the page URL, percent-encoded, as ?url=")
	case len(pageURL) > MaxURL:
		return errors.New("url is longer than 4096 bytes")
	case strings.Contains(pageURL, "#"):
		return errors.New("url must not include the #fragment: sign location.href.split('#')[0]")
	case strings.ContainsFunc(pageURL, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return errors.New("url must not contain spaces or control characters")
	case strings.ContainsRune(pageURL, '\\'):
		return errors.New("url must not contain a backslash")
	}
	u, err := url.Parse(pageURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" ||
		!strings.HasPrefix(pageURL[len(u.Scheme):], "://") {
		return errors.New("url must be an absolute http:// or https:// URL")
	}
	if u.User != nil {
		return errors.New("url must not hold a user name or password")
	}
	if !hostRE.MatchString(u.Host) {
		return errors.New("url's host must be a name or IPv4 address in ASCII (punycode), with an optional port")
	}
	return nil
}

var hostRE = regexp.MustCompile(`^[A-Za-z0-9.-]+(:[0-9]{1,5})?$`)

// PageHost returns the host of a page URL that CheckURL accepts, lower
// case, without port or trailing dot; "" for one it refuses.
func PageHost(pageURL string) string {
	if CheckURL(pageURL) != nil {
		return ""
	}
	u, _ := url.Parse(pageURL)
	return strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
}

// HostAllowed reports whether a page host (as PageHost returns it) is
// among domains: equal to a domain, or below "example.com" for a domain
// "*.example.com" (any depth; not example.com itself). Domains are lower
// case, as the config leaves them.
func HostAllowed(host string, domains []string) bool {
	if host == "" {
		return false
	}
	for _, d := range domains {
		if parent, ok := strings.CutPrefix(d, "*."); ok {
			if strings.HasSuffix(host, "."+parent) && len(host) > len(parent)+1 {
				return true
			}
		} else if host == d {
			return true
		}
	}
	return false
}
