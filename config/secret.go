package config

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

// redacted is what every printed form of a Secret shows.
const redacted = "[redacted]"

// Secret holds an app secret or a password. Every way of printing it
// (fmt with any verb, String, GoString, encoding/json, encoding.TextMarshaler
// and therefore yaml.v3, and log/slog) gives "[redacted]"; only Reveal
// returns the value. The value sits behind a pointer, so even reflection-based
// printing of a Secret in an unexported field shows an address, not the value.
//
// The zero Secret is empty. A Secret is immutable and safe for concurrent use.
type Secret struct {
	v *string
}

// NewSecret returns a Secret holding s.
func NewSecret(s string) Secret {
	if s == "" {
		return Secret{}
	}
	return Secret{v: &s}
}

// Reveal returns the secret value. Call it only where the value is sent to
// its one legitimate consumer (WeChat, etcd), never to build a message.
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsZero reports whether s holds no value (or an empty one).
func (s Secret) IsZero() bool { return s.v == nil || *s.v == "" }

// String returns "[redacted]".
func (s Secret) String() string { return redacted }

// GoString returns "[redacted]", so %#v does not show the value.
func (s Secret) GoString() string { return redacted }

// Format implements fmt.Formatter so that every verb, including %d and %x
// which would otherwise print the struct's fields, gives "[redacted]".
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		_, _ = io.WriteString(f, strconv.Quote(redacted))
		return
	}
	_, _ = io.WriteString(f, redacted)
}

// MarshalJSON returns the JSON string "[redacted]".
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(redacted)), nil }

// MarshalText returns "[redacted]".
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue implements slog.LogValuer: a logged Secret shows "[redacted]".
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

var (
	_ fmt.Stringer   = Secret{}
	_ fmt.GoStringer = Secret{}
	_ fmt.Formatter  = Secret{}
	_ slog.LogValuer = Secret{}
)
