package fetcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
)

func TestClassOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, ClassUnknown},
		{"other", errors.New("x"), ClassUnknown},
		{"api transient", &APIError{Code: -1, Class: Transient}, Transient},
		{"api quota wrapped", fmt.Errorf("w: %w", &APIError{Code: 45009, Class: Quota}), Quota},
		{"bad response", fmt.Errorf("%w: broken JSON", ErrBadResponse), Ambiguous},
		{"status 5xx", &statusError{op: opToken, status: 502}, Ambiguous},
		{"status 4xx", &statusError{op: opToken, status: 404}, Transient},
		{"sent, then failed", &sendError{err: io.ErrUnexpectedEOF, written: true}, Ambiguous},
		{"failed before sent", &sendError{err: io.ErrUnexpectedEOF}, Transient},
		{"canceled", context.Canceled, Transient},
		{"deadline", fmt.Errorf("w: %w", context.DeadlineExceeded), Transient},
		{"url error", &url.Error{Op: "Get", URL: "u", Err: io.ErrUnexpectedEOF}, Transient},
		{"net error", &net.OpError{Op: "dial", Err: errors.New("refused")}, Transient},
		{"op error", &opError{msg: "m", errs: []error{&APIError{Code: 40001, Class: TokenDead}}}, TokenDead},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ClassOf(tc.err); got != tc.want {
				t.Errorf("ClassOf(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		op   string
		code int
		want Class
	}{
		{opToken, -1, Transient},
		{opStableToken, 45011, Transient},
		{opGetToken, 45009, Quota},
		{opToken, 40001, Permanent},
		{opStableToken, 40001, Permanent},
		{opGetToken, 40001, Permanent},
		{opGetTicket, 40001, TokenDead},
		{opGetTicket, 40014, TokenDead},
		{opCallbackIP, 42001, TokenDead},
		{opGetTicket, 40125, Permanent},
		{opToken, 89507, Permanent},
		{opToken, 12345, Permanent},
	}
	for _, tc := range tests {
		if got := classify(tc.op, tc.code); got != tc.want {
			t.Errorf("classify(%q, %d) = %v, want %v", tc.op, tc.code, got, tc.want)
		}
	}
}

func TestClassString(t *testing.T) {
	tests := map[Class]string{
		ClassUnknown: "unknown", Transient: "transient", Permanent: "permanent",
		Quota: "quota", TokenDead: "token_dead", Class(42): "Class(42)",
	}
	for c, want := range tests {
		if got := c.String(); got != want {
			t.Errorf("Class(%d).String() = %q, want %q", int(c), got, want)
		}
	}
}

func TestAPIErrorError(t *testing.T) {
	tests := []struct {
		err  *APIError
		want string
	}{
		{&APIError{Op: "token", Code: 40125, Msg: "invalid appsecret"}, "wechat token: errcode 40125: invalid appsecret"},
		{&APIError{Op: "getticket", Code: 40001}, "wechat getticket: errcode 40001"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestHostSpecific(t *testing.T) {
	for _, code := range []int{40164, 60020, 89501, 89503, 89506, 89507} {
		if !(&APIError{Code: code}).HostSpecific() {
			t.Errorf("HostSpecific(%d) = false, want true", code)
		}
	}
	for _, code := range []int{-1, 40001, 40013, 40125, 45009, 89502} {
		if (&APIError{Code: code}).HostSpecific() {
			t.Errorf("HostSpecific(%d) = true, want false", code)
		}
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"zero config", Config{}, false},
		{"base with path", Config{BaseURL: "http://proxy.local:8080/wechat/"}, false},
		{"relative base", Config{BaseURL: "/cgi-bin"}, true},
		{"ftp base", Config{BaseURL: "ftp://x"}, true},
		{"no host", Config{BaseURL: "http://"}, true},
		{"query", Config{BaseURL: "https://x/?secret=s"}, true},
		{"fragment", Config{WeComBaseURL: "https://x/#f"}, true},
		{"user info", Config{BaseURL: "https://u:p@x"}, true},
		{"bad wecom", Config{WeComBaseURL: "::"}, true},
		{"negative attempts", Config{MaxAttempts: -1}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.cfg)
			if (err != nil) != tc.wantErr {
				t.Fatalf("New err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "u:p") {
				t.Errorf("err = %q quotes user info", err)
			}
			if err == nil && (c.hc == nil || c.log == nil || c.newBackOff == nil) {
				t.Errorf("defaults not filled: %+v", c)
			}
		})
	}
	c := mustNew(t, Config{})
	if c.base != DefaultBaseURL || c.wecomBase != DefaultWeComBaseURL || c.hc.Timeout != 0 {
		t.Errorf("defaults = %q %q %v, want %q %q and no client timeout (the context bounds a call)", c.base, c.wecomBase, c.hc.Timeout, DefaultBaseURL, DefaultWeComBaseURL)
	}
}

func TestCallbackIPBadBase(t *testing.T) {
	c := mustNew(t, Config{})
	if _, err := c.CallbackIP(context.Background(), "not a url", "AT"); err == nil {
		t.Error("err = nil, want an error for a relative base")
	}
}

func TestRedactorMessage(t *testing.T) {
	r := newRedactor("s3cr+t", "")
	tests := []struct{ in, want string }{
		{"invalid appsecret", "invalid appsecret"},
		{"got s3cr+t twice: s3cr+t", "got [redacted] twice: [redacted]"},
		{"escaped s3cr%2Bt", "escaped [redacted]"},
		{"query corpsecret=abc&x=1 access_token=XYZ", "query corpsecret=[redacted]&x=1 access_token=[redacted]"},
		{"line\nbreak\x00", "line break"},
		{strings.Repeat("é", 400), strings.Repeat("é", 256) + "..."},
	}
	for _, tc := range tests {
		if got := r.message(tc.in); got != tc.want {
			t.Errorf("message(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// A secret that the replacement text contains cannot be redacted: the
	// message is dropped.
	if got := newRedactor("dacte").message("x dacte y"); got != "" {
		t.Errorf("message with secret inside the marker = %q, want empty", got)
	}
}
