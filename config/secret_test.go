package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func secretConfig(t *testing.T) *Config {
	t.Helper()
	c, err := Parse([]byte(`
etcd: {username: u, password: "${PW}"}
apps: [{name: shop, kind: classic, appid: wx1, secret: "${SHOP}"}]
`), "", env(map[string]string{"PW": "pw-SECRETVALUE", "SHOP": "app-SECRETVALUE"}))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestSecretReveal(t *testing.T) {
	tests := []struct {
		s      Secret
		reveal string
		zero   bool
	}{
		{Secret{}, "", true},
		{NewSecret(""), "", true},
		{NewSecret("x"), "x", false},
	}
	for _, tt := range tests {
		if got := tt.s.Reveal(); got != tt.reveal {
			t.Errorf("Reveal: got %q, want %q", got, tt.reveal)
		}
		if got := tt.s.IsZero(); got != tt.zero {
			t.Errorf("IsZero(%q): got %v, want %v", tt.reveal, got, tt.zero)
		}
	}
}

func TestSecretRedacted(t *testing.T) {
	c := secretConfig(t)
	s := c.Apps[0].Secret
	if got, want := s.Reveal(), "app-SECRETVALUE"; got != want {
		t.Fatalf("Reveal: got %q, want %q", got, want)
	}
	hidden := struct{ c Config }{*c} // unexported: fmt cannot call methods
	jsonOf := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		return string(b)
	}
	yamlOf := func(v any) string {
		b, err := yaml.Marshal(v)
		if err != nil {
			t.Fatalf("yaml.Marshal: %v", err)
		}
		return string(b)
	}
	slogOf := func(h func(*bytes.Buffer) slog.Handler) string {
		var buf bytes.Buffer
		l := slog.New(h(&buf))
		l.Info("loaded", "secret", s, "password", c.Etcd.Password, "config", c, "app", c.Apps[0])
		return buf.String()
	}
	text := func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }
	jsonH := func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }

	tests := []struct {
		name string
		out  string
		want string // must appear: shows the secret's place was printed
	}{
		{"String", s.String(), "[redacted]"},
		{"GoString", s.GoString(), "[redacted]"},
		{"%v", fmt.Sprintf("%v", s), "[redacted]"},
		{"%+v", fmt.Sprintf("%+v", s), "[redacted]"},
		{"%#v", fmt.Sprintf("%#v", s), "[redacted]"},
		{"%s", fmt.Sprintf("%s", s), "[redacted]"},
		{"%q", fmt.Sprintf("%q", s), `"[redacted]"`},
		{"%d", fmt.Sprintf("%d", s), "[redacted]"},
		{"%x", fmt.Sprintf("%x", s), "[redacted]"},
		{"config %v", fmt.Sprintf("%v", c), "[redacted]"},
		{"config %+v", fmt.Sprintf("%+v", *c), "Secret:[redacted]"},
		{"config %#v", fmt.Sprintf("%#v", c), "Password:[redacted]"},
		{"unexported field %+v", fmt.Sprintf("%+v", hidden), "Secret:"},
		{"unexported field %#v", fmt.Sprintf("%#v", hidden), "Secret:"},
		{"json secret", jsonOf(s), `"[redacted]"`},
		{"json config", jsonOf(c), `"Secret":"[redacted]"`},
		{"json config password", jsonOf(c), `"Password":"[redacted]"`},
		{"yaml config", yamlOf(c), "secret: '[redacted]'"},
		{"error wrapping", fmt.Errorf("fetch %s: %w", s, fmt.Errorf("%v", c)).Error(), "[redacted]"},
		{"slog text", slogOf(text), "secret=[redacted] password=[redacted]"},
		{"slog json", slogOf(jsonH), `"secret":"[redacted]","password":"[redacted]"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.out, leakMarker) {
				t.Errorf("output leaks a secret: %s", tt.out)
			}
			if !strings.Contains(tt.out, tt.want) {
				t.Errorf("output:\n got %s\nwant it to contain %s", tt.out, tt.want)
			}
		})
	}
}

func TestSlogLevel(t *testing.T) {
	for _, tt := range []struct {
		level string
		want  slog.Level
	}{{"debug", slog.LevelDebug}, {"info", slog.LevelInfo}, {"warn", slog.LevelWarn}, {"error", slog.LevelError}} {
		c := &Config{LogLevel: tt.level}
		if got := c.SlogLevel(); got != tt.want {
			t.Errorf("SlogLevel(%q): got %v, want %v", tt.level, got, tt.want)
		}
	}
}
