// Package jssdk signs pages for WeChat's JS-SDK (wx.config) with an app's
// jsapi ticket, so that the ticket itself never leaves the replica.
package jssdk

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"net/url"
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
// URL of at most MaxURL bytes.
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
	}
	u, err := url.Parse(pageURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return errors.New("url must be an absolute http:// or https:// URL")
	}
	return nil
}
