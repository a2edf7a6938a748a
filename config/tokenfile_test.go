package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestParseTokenFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		file string // the token_file value, "" for none
		want string
	}{
		{"absent", "", ""},
		{"absolute", "/run/wxtoken/shop.token", "/run/wxtoken/shop.token"},
		{"relative to the config", "tokens/shop", filepath.Join(dir, "tokens/shop")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := "apps: [{name: shop, kind: classic, appid: wx1, secret: s"
			if tt.file != "" {
				y += ", token_file: '" + tt.file + "'"
			}
			c, err := Parse([]byte(y+"}]"), dir, nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := c.Apps[0].TokenFile; got != tt.want {
				t.Errorf("TokenFile: got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseTokenFileErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"same file twice", `apps:
  - {name: a, kind: classic, appid: wx1, secret: s, token_file: /run/t}
  - {name: b, kind: stable, appid: wx2, secret: s, token_file: /run/./t}`,
			`config: apps[1].token_file: same file as apps[0].token_file`},
		{"a directory", `apps: [{name: a, kind: classic, appid: wx1, secret: s, token_file: /run/tokens/}]`,
			`config: apps[0].token_file: "/run/tokens/" names a directory (want a file path)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "", nil)
			if err == nil {
				t.Fatalf("Parse: got nil error, want %q", tt.want)
			}
			if lines := strings.Split(err.Error(), "\n"); len(lines) != 1 || lines[0] != tt.want {
				t.Errorf("Parse error:\n got %q\nwant %q", err.Error(), tt.want)
			}
		})
	}
}
