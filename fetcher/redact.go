package fetcher

import (
	"net/url"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// redactedText replaces a secret in messages.
	redactedText = "[redacted]"
	// redactedParam replaces a secret in a URL query (no characters that
	// need escaping).
	redactedParam = "REDACTED"
	// maxMsgLen bounds APIError.Msg, in bytes.
	maxMsgLen = 512
)

// sensitiveParam matches key=value pairs whose value must never be shown,
// whatever the value is: secret=, corpsecret=, appsecret=, access_token=,
// ticket=, refresh_token=, authorization_code= and the like.
var sensitiveParam = regexp.MustCompile(`(?i)(secret|access_token|ticket|refresh_token|authorization_code|auth_code)=[^&\s"',;]+`)

// redactor removes known sensitive values (a secret, an access token) from
// text. The zero value removes only sensitive key=value pairs.
type redactor struct {
	values []string // with their escaped forms, longest first
}

// newRedactor returns a redactor for the given values; empty ones are
// ignored.
func newRedactor(values ...string) redactor {
	var r redactor
	for _, v := range values {
		if v == "" {
			continue
		}
		r.values = append(r.values, v, url.QueryEscape(v), url.PathEscape(v))
	}
	sort.Slice(r.values, func(i, j int) bool { return len(r.values[i]) > len(r.values[j]) })
	return r
}

// redact returns s without any sensitive value. If a value cannot be
// removed (it is part of the replacement text itself), it returns "".
func (r redactor) redact(s string) string {
	s = sensitiveParam.ReplaceAllString(s, "${1}="+redactedText)
	for _, v := range r.values {
		s = strings.ReplaceAll(s, v, redactedText)
	}
	if r.leaks(s) {
		return ""
	}
	return s
}

// leaks reports whether s contains a sensitive value.
func (r redactor) leaks(s string) bool {
	for _, v := range r.values {
		if strings.Contains(s, v) {
			return true
		}
	}
	return false
}

// message turns an errmsg from WeChat into something safe to show: control
// characters become spaces, sensitive values are removed, and the result is
// cut to maxMsgLen bytes on a rune boundary. Cutting comes last, so a
// secret is never cut in half before it could be recognised.
func (r redactor) message(s string) string {
	s = strings.Map(func(c rune) rune {
		if unicode.IsControl(c) || c == utf8.RuneError {
			return ' '
		}
		return c
	}, s)
	s = strings.TrimSpace(r.redact(s))
	if len(s) <= maxMsgLen {
		return s
	}
	cut := maxMsgLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	s = s[:cut] + "..."
	if r.leaks(s) {
		return ""
	}
	return s
}
