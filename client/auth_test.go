package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/client"
)

// tokenServer answers token reads, 401 without the bearer token want, and
// records the Host it was asked for.
func tokenServer(want string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+want {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"code":"unauthorized","message":"credentials required"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"app":"shop","kind":"classic","access_token":"T","expires_at":"2030-01-01T00:00:00Z","expires_in":60,"seq":1}`))
	})
}

func TestClientToken(t *testing.T) {
	srv := httptest.NewServer(tokenServer("client-token"))
	defer srv.Close()
	for _, tt := range []struct {
		token string
		code  string
	}{
		{"client-token", ""},
		{"", client.CodeUnauthorized},
		{"other", client.CodeUnauthorized},
	} {
		c, err := client.New(client.Config{BaseURL: srv.URL, Token: tt.token})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := c.Token(context.Background(), "shop")
		var e *client.Error
		switch {
		case tt.code == "" && (err != nil || tok.AccessToken != "T"):
			t.Errorf("token %q: got %+v, %v; want T", tt.token, tok, err)
		case tt.code != "" && (!errors.As(err, &e) || e.Code != tt.code || e.Status != http.StatusUnauthorized):
			t.Errorf("token %q: got %v, want %s", tt.token, err, tt.code)
		}
	}
}

func TestClientUnixSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "wxc")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: tokenServer("t0123456789abcdef"), ReadHeaderTimeout: time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := client.New(client.Config{BaseURL: "unix://" + sock, Token: "t0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := c.Token(context.Background(), "shop"); err != nil || tok.AccessToken != "T" {
		t.Errorf("Token over the socket: got %+v, %v", tok, err)
	}
	for _, bad := range []string{"unix://", "unix://host/path", "ftp://x"} {
		if _, err := client.New(client.Config{BaseURL: bad}); err == nil {
			t.Errorf("New(%q): got nil error", bad)
		}
	}
}

func TestClientRetryAfter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"code":"rate_limited","message":"too many reports"}`))
	}))
	defer srv.Close()
	c, err := client.New(client.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Invalidate(context.Background(), "shop", "T")
	var e *client.Error
	if !errors.As(err, &e) || e.Code != client.CodeRateLimited || e.RetryAfter != 7*time.Second {
		t.Errorf("Invalidate: got %v (%+v), want rate_limited with RetryAfter 7s", err, e)
	}
}
