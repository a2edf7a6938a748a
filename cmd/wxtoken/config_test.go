package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/wxtoken/wxtoken/config"
)

// TestConfigCheck: a valid file prints its effective settings with every
// secret redacted, whether given inline, by ${ENV} or in a file; a bad one
// is a usage error (exit 2) of one line that names the field, with no
// secret in it.
func TestConfigCheck(t *testing.T) {
	const (
		inline   = "inline-secret-4f2a9c"
		fromEnv  = "env-secret-7b1d33"
		fromFile = "file-secret-0e8c51"
		password = "etcd-password-91ab"
	)
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write("mini.secret", fromFile+"\n")
	t.Setenv("WXTOKEN_TEST_SHOP_SECRET", fromEnv)
	t.Setenv("WXTOKEN_TEST_ETCD_PASSWORD", password)
	good := write("good.yaml", `
node: replica-1
etcd:
  endpoints: [http://127.0.0.1:2379]
  username: wxtoken
  password: ${WXTOKEN_TEST_ETCD_PASSWORD}
apps:
  - name: shop
    kind: classic
    appid: wx0123456789abcdef
    secret: ${WXTOKEN_TEST_SHOP_SECRET}
    tickets: [jsapi]
  - name: crm
    kind: wecom
    appid: ww0123456789abcdef
    secret: `+inline+`
  - name: mini
    kind: stable
    appid: wxfedcba9876543210
    secret_file: mini.secret
    daily_budget: 500
`)
	secrets := []string{inline, fromEnv, fromFile, password}

	t.Run("valid", func(t *testing.T) {
		out, errOut, err := runCmd("config", "check", good)
		if err != nil {
			t.Fatalf("config check: %v (%s)", err, errOut)
		}
		for _, s := range secrets {
			if strings.Contains(out+errOut, s) {
				t.Errorf("the output shows the secret %q", s)
			}
		}
		if got := strings.Count(out, "'[redacted]'"); got != 4 {
			t.Errorf("%d redacted secrets, want 4:\n%s", got, out)
		}
		for _, want := range []string{"node: replica-1", "fetch_timeout: 30s", "holdoff: 10m", "daily_budget: 500", "- http://127.0.0.1:2379"} {
			if !strings.Contains(out, want) {
				t.Errorf("the output lacks %q:\n%s", want, out)
			}
		}
		// What it prints is a configuration that means the same.
		cfg, err := config.Parse([]byte(out), dir, nil)
		if err != nil {
			t.Fatalf("the output does not parse: %v\n%s", err, out)
		}
		if len(cfg.Apps) != 3 || cfg.Apps[2].DailyBudget != 500 || cfg.Apps[0].Tickets[0] != "jsapi" {
			t.Errorf("parsed back: %+v", cfg)
		}
	})

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad kind", []string{"config", "check", write("bad.yaml", "apps:\n  - name: shop\n    kind: classik\n    appid: wx0123456789abcdef\n    secret: "+inline+"\n")}, `apps[0].kind: unknown kind "classik"`},
		{"unset env", []string{"config", "check", write("unset.yaml", "apps:\n  - name: shop\n    kind: classic\n    appid: wx0123456789abcdef\n    secret: ${WXTOKEN_TEST_UNSET}\n")}, "WXTOKEN_TEST_UNSET"},
		{"no such file", []string{"config", "check", filepath.Join(dir, "absent.yaml")}, "absent.yaml"},
		{"no file", []string{"config", "check"}, "usage: wxtoken config check FILE"},
		{"no subcommand", []string{"config"}, "usage: wxtoken config check FILE"},
		{"other subcommand", []string{"config", "show", good}, "usage: wxtoken config check FILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runCmd(tc.args...)
			if !errors.Is(err, errUsage) {
				t.Fatalf("err = %v, want a usage error (exit 2)", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line with %q", msg, tc.want)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error()+out+errOut, s) {
					t.Errorf("the secret %q leaked", s)
				}
			}
		})
	}
}

// TestVersionAndConfigCheckBinary runs the real binary, built with VCS
// stamping: version prints the module and the commit it was built from,
// and config check exits 2 on a bad file.
func TestVersionAndConfigCheckBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "wxtoken")
	if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git rev-parse: %v", err)
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v", err)
	}
	// go build stamps a clone (.git a directory), not a git worktree.
	revision := "revision  " + strings.TrimSpace(string(head)) + "\n"
	if fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err != nil || !fi.IsDir() {
		revision = "revision  unknown (built without VCS information)\n"
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	for _, want := range []string{"wxtoken ", "\nmodule    github.com/wxtoken/wxtoken", "\n" + revision, "\ntime      ", "\nmodified  "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("listen: nowhere\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "config", "check", bad)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("config check of a bad file: %v, want exit code 2", err)
	}
	if msg := strings.TrimSpace(stderr.String()); strings.Contains(msg, "\n") || !strings.Contains(msg, "listen") || stdout.Len() != 0 {
		t.Errorf("stderr %q, stdout %q: want one line naming listen, nothing on stdout", msg, stdout.String())
	}
}

// TestVersion: in-process, version prints the name and the build's Go.
func TestVersion(t *testing.T) {
	out, _, err := runCmd("version")
	if err != nil || !strings.HasPrefix(out, "wxtoken dev\n") || !strings.Contains(out, "\ngo        go1.") {
		t.Errorf("version: %q, %v", out, err)
	}
}

// TestPrintVersion: what go build stamps is printed as it is.
func TestPrintVersion(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/wxtoken/wxtoken", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"}}}
	for _, tc := range []struct {
		name, v string
		bi      *debug.BuildInfo
		want    string
	}{
		{"stamped", "dev", bi, "wxtoken v1.4.0\nmodule    github.com/wxtoken/wxtoken v1.4.0\ngo        go1.26.0\n" +
			"revision  0123abcd\ntime      2026-01-02T03:04:05Z\nmodified  true\n"},
		{"ldflags version first", "v1.4.0-3-gabc", bi, "wxtoken v1.4.0-3-gabc\n"},
		{"no build info", "dev", nil, "wxtoken dev\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			printVersion(&b, tc.v, tc.bi)
			if !strings.HasPrefix(b.String(), tc.want) {
				t.Errorf("got\n%s\nwant it to begin with\n%s", b.String(), tc.want)
			}
		})
	}
}
