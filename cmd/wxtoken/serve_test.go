package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestServeBadConfig: every bad configuration ends with one line that
// names the problem, a usage error (exit code 2), and no secret.
func TestServeBadConfig(t *testing.T) {
	const good = `
listen: 127.0.0.1:0
etcd:
  endpoints: [http://127.0.0.1:1]
  dial_timeout: 500ms
apps:
  - name: shop
    kind: classic
    appid: wx0123456789abcdef
    secret: hunter2-very-secret
`
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown kind", strings.Replace(good, "kind: classic", "kind: classik", 1), `apps[0].kind: unknown kind "classik"`},
		{"missing secret", strings.Replace(good, "    secret: hunter2-very-secret\n", "", 1), "apps[0].secret"},
		{"unset env secret", strings.Replace(good, "hunter2-very-secret", "${WXTOKEN_TEST_UNSET_SECRET}", 1), "WXTOKEN_TEST_UNSET_SECRET"},
		{"bad duration", strings.Replace(good, "dial_timeout: 500ms", "dial_timeout: soon", 1), `etcd.dial_timeout: bad duration "soon"`},
		{"unknown key", good + "extra: 1\n", "extra"},
		{"unreachable etcd", good, "etcd unreachable at [http://127.0.0.1:1]"},
		{"exposed without clients", strings.Replace(good, "listen: 127.0.0.1:0", "listen: 0.0.0.0:0", 1),
			"config: listen: 0.0.0.0:0 is reachable from other hosts and no clients are set"},
		{"http base_url", good + "wechat: {base_url: 'http://10.0.0.9:8500'}\n",
			"config: wechat.base_url: http://10.0.0.9:8500 is plain HTTP to a host that is not loopback"},
		{"unreadable token_file", good + "clients: [{name: web, token_file: /nonexistent/web.token, apps: [shop], allow: [read]}]\n",
			"config: clients[0].token_file: open /nonexistent/web.token: no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "wxtoken.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, []string{"serve", "--config", path}, &stdout, &stderr)
			if !errors.Is(err, errUsage) {
				t.Fatalf("err = %v, want a usage error (exit 2)", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not name %q", msg, tc.want)
			}
			if strings.Count(msg, "\n") > 0 {
				t.Errorf("error spans several lines: %q", msg)
			}
			if strings.Contains(msg+stdout.String()+stderr.String(), "hunter2") {
				t.Errorf("the secret leaked: %q", msg)
			}
		})
	}
}

// TestServeExitCode runs the real binary: a bad config exits 2 with one
// line on stderr and no stack trace.
func TestServeExitCode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "wxtoken")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, tc := range []struct{ yaml, field string }{
		{"apps:\n  - name: a\n    kind: nope\n    appid: x\n    secret: s\n", "apps[0].kind"},
		{"listen: 0.0.0.0:8417\n", "listen"},
		{"wechat: {wecom_base_url: 'http://wecom-proxy.internal'}\n", "wechat.wecom_base_url"},
		{"clients: [{name: web, token_file: /nonexistent/web.token, apps: ['*'], allow: [read]}]\n", "clients[0].token_file"},
	} {
		path := filepath.Join(t.TempDir(), "bad.yaml")
		os.WriteFile(path, []byte(tc.yaml), 0o600)
		cmd := exec.Command(bin, "serve", "--config", path)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Fatalf("%s: exit: %v, want code 2", tc.field, err)
		}
		out := strings.TrimSpace(stderr.String())
		if strings.Contains(out, "\n") || strings.Contains(out, "goroutine") || !strings.Contains(out, "config: "+tc.field+": ") {
			t.Errorf("stderr = %q, want one line naming %s", out, tc.field)
		}
	}
	// --listen on every interface, with no clients, is refused the same way.
	path := filepath.Join(t.TempDir(), "ok.yaml")
	os.WriteFile(path, []byte("etcd: {endpoints: ['http://127.0.0.1:1'], dial_timeout: 100ms}\n"), 0o600)
	cmd := exec.Command(bin, "serve", "--config", path, "--listen", ":8417")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if out := strings.TrimSpace(stderr.String()); !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.HasPrefix(out, "wxtoken: config: listen: :8417 is reachable") {
		t.Errorf("--listen :8417: exit %v, stderr %q; want code 2 naming listen", err, out)
	}
}

// TestServeDemo runs `serve --demo` and reads the demo token, as the
// README's quick start does.
func TestServeDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout syncWriter
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--demo", "--listen", "127.0.0.1:0"}, &stdout, &bytes.Buffer{})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve --demo: %v", err)
		}
	}()
	var url string
	deadline := time.Now().Add(30 * time.Second)
	for url == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no URL printed; stdout: %q", stdout.String())
		}
		for _, line := range strings.Split(stdout.String(), "\n") {
			if u, ok := strings.CutPrefix(line, "wxtoken: serving on "); ok {
				url = u
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	var body string
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/v1/apps/demo/token")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			if resp.StatusCode == http.StatusOK && strings.Contains(body, `"access_token"`) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s/v1/apps/demo/token = %q, want a token", url, body)
}

type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
