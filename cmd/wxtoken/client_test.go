package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/client"
	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/internal/replicatest"
)

func runCmd(args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	err = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

func TestClientCommands(t *testing.T) {
	env := replicatest.Start(t, replicatest.Options{})
	cur := env.Current(t, replicatest.App, "token")

	t.Run("get -q", func(t *testing.T) {
		out, _, err := runCmd("get", "--addr", env.URL, "-q", "demo")
		if err != nil || out != cur.Value+"\n" {
			t.Errorf("get -q: got %q, %v; want the token and a newline", out, err)
		}
	})
	t.Run("get --json, flags after the app, address from the environment", func(t *testing.T) {
		t.Setenv("WXTOKEN_ADDR", env.URL)
		out, _, err := runCmd("get", "demo", "--json")
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		var tok client.Token
		if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.AccessToken != cur.Value || tok.Seq != cur.Seq {
			t.Errorf("get --json: got %q (%v), want the current token as JSON", out, err)
		}
	})
	t.Run("get for a person", func(t *testing.T) {
		out, _, err := runCmd("get", "--addr", env.URL, "demo")
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		for _, want := range []string{"demo (classic)", cur.Value, "keep for"} {
			if !strings.Contains(out, want) {
				t.Errorf("get: output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("status for a person", func(t *testing.T) {
		out, _, err := runCmd("status", "--addr", env.URL)
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		for _, want := range []string{"leader    test-replica", "  test-replica  candidate  http://", "demo/token", "demo/jsapi", "FETCHES TODAY", "/1000", " ok"} {
			if !strings.Contains(out, want) {
				t.Errorf("status: output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("status --json", func(t *testing.T) {
		out, _, err := runCmd("status", "--json", "--addr", env.URL)
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		var st client.Status
		if err := json.Unmarshal([]byte(out), &st); err != nil || st.Leader != "test-replica" || len(st.Credentials) != 2 {
			t.Errorf("status --json: got %q (%v), want leader and two credentials", out, err)
		}
	})
	t.Run("invalidate a live token", func(t *testing.T) {
		out, _, err := runCmd("invalidate", "--addr", env.URL, "--json", "demo", cur.Value)
		if err != nil {
			t.Fatalf("invalidate: %v", err)
		}
		var tok client.Token
		if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.Seq != cur.Seq || tok.AccessToken != cur.Value {
			t.Errorf("invalidate: got %q (%v), want the same token: WeChat still accepts it", out, err)
		}
	})
	t.Run("invalidate a dead token", func(t *testing.T) {
		env.KillToken(t, replicatest.App)
		out, _, err := runCmd("invalidate", "--addr", env.URL, "--json", "demo", cur.Value)
		if err != nil {
			t.Fatalf("invalidate: %v", err)
		}
		var tok client.Token
		if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.Seq != cur.Seq+1 || tok.AccessToken == cur.Value {
			t.Errorf("invalidate: got %q (%v), want a new token with seq %d", out, err, cur.Seq+1)
		}
	})
}

func TestClientCommandErrors(t *testing.T) {
	env := replicatest.Start(t, replicatest.Options{})
	down := httptest.NewServer(nil)
	down.Close()
	tests := []struct {
		name      string
		args      []string
		usage     bool   // exit 2
		wantInErr string // the one line main prints
	}{
		{"unknown app", []string{"get", "--addr", env.URL, "nope"}, false, `unknown_app: unknown app "nope"`},
		{"replica down", []string{"get", "--addr", down.URL, "demo"}, false, "replica unreachable at " + down.URL},
		{"status, replica down", []string{"status", "--addr", down.URL}, false, "set --addr or WXTOKEN_ADDR"},
		{"no app", []string{"get", "--addr", env.URL}, true, "usage: wxtoken get"},
		{"invalidate without token", []string{"invalidate", "--addr", env.URL, "demo"}, true, "usage: wxtoken invalidate"},
		{"bad address", []string{"get", "--addr", "localhost:8417", "demo"}, true, "--addr"},
		{"unknown flag", []string{"status", "--verbose"}, false, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runCmd(tt.args...)
			if err == nil {
				t.Fatalf("got nil error and output %q, want an error", out)
			}
			if got := errors.Is(err, errUsage); got != tt.usage {
				t.Errorf("usage error: got %v, want %v (%v)", got, tt.usage, err)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.wantInErr) || strings.Contains(msg, "\n") {
				t.Errorf("error: got %q, want one line containing %q", msg, tt.wantInErr)
			}
		})
	}
}

func TestPrintStatusBlocked(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st := client.Status{Node: "r2", Ready: false, EtcdError: "etcd unreachable", Credentials: []client.CredStatus{{
		Cred: "shop/token", Kind: "classic", Seq: 9, FetchedAt: now.Add(-time.Hour), AgeSeconds: 3600,
		ExpiresAt: now.Add(time.Hour), NextRefresh: now.Add(-time.Minute), FetchesToday: 1000, Budget: 1000,
		Blocked: "budget", BlockedTill: now.Add(20 * time.Hour), LastError: "daily budget of 1000 fetches used up", Usable: true,
	}}}
	var b bytes.Buffer
	if err := printStatus(&b, st, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NOT READY", "leader    unknown: etcd unreachable", "1000/1000", "blocked: budget until", "last error: daily budget", "due", "1h0m "} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

// TestClientCommandsToken: against a replica with clients, the CLI sends
// the token of --token-file or $WXTOKEN_TOKEN, and without one it prints
// the refusal.
func TestClientCommandsToken(t *testing.T) {
	const token = "cli-client-token-0123456789"
	sum := sha256.Sum256([]byte(token))
	env := replicatest.Start(t, replicatest.Options{Edit: func(c *config.Config) {
		c.Clients = []config.Client{{Name: "cli", TokenSHA256: sum[:], Apps: []string{"*"}, Allow: config.Actions}}
	}})
	cur := env.Current(t, replicatest.App, "token")
	file := filepath.Join(t.TempDir(), "cli.token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCmd("get", "--addr", env.URL, "-q", "demo"); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("get without a token: got %v, want unauthorized", err)
	}
	if out, _, err := runCmd("get", "--addr", env.URL, "--token-file", file, "-q", "demo"); err != nil || out != cur.Value+"\n" {
		t.Errorf("get --token-file: got %q, %v", out, err)
	}
	t.Setenv("WXTOKEN_TOKEN", token)
	if out, _, err := runCmd("status", "--addr", env.URL); err != nil || !strings.Contains(out, "demo/token") {
		t.Errorf("status with WXTOKEN_TOKEN: got %q, %v", out, err)
	}
	if _, _, err := runCmd("get", "--addr", env.URL, "--token-file", file+".missing", "demo"); !errors.Is(err, errUsage) {
		t.Errorf("get --token-file missing: got %v, want a usage error", err)
	}
}
