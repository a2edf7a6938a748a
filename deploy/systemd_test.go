package deploy_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/config"
)

const (
	unitPath      = "systemd/wxtoken.service"
	unitConfig    = "systemd/wxtoken.yaml"
	credentialDir = "/run/credentials/wxtoken.service/"
)

// unitFile is a parsed systemd unit: every Key=Value of every section, in
// order (a key may repeat).
type unitFile map[string][]string

func readUnit(t *testing.T, path string) unitFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q is not Key=Value", path, line)
			}
			u[section+"."+k] = append(u[section+"."+k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// one returns the single value of key, failing when it is absent or set
// more than once.
func (u unitFile) one(t *testing.T, key string) string {
	t.Helper()
	v := u[key]
	if len(v) != 1 {
		t.Fatalf("%s: %s is set %d times, want once", unitPath, key, len(v))
	}
	return v[0]
}

// systemdAnalyze returns the path of systemd-analyze and fails the test
// when it is missing: CI installs it (.ci/run).
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is not installed (%v): it verifies deploy/systemd/wxtoken.service; "+
			"install it with `apt-get install -y systemd`", err)
	}
	return p
}

// TestSystemdUnit runs systemd-analyze verify and an offline security
// review on deploy/systemd/wxtoken.service, and checks the unit against
// the sample config it ships with.
func TestSystemdUnit(t *testing.T) {
	tool := systemdAnalyze(t)
	u := readUnit(t, unitPath)

	t.Run("verify", func(t *testing.T) {
		// verify wants ExecStart's binary to exist: point a copy of the
		// unit at an executable that does (it is not started).
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(unitPath)
		if err != nil {
			t.Fatal(err)
		}
		unit := filepath.Join(t.TempDir(), "wxtoken.service")
		text := strings.Replace(string(data), "ExecStart=/usr/local/bin/wxtoken ", "ExecStart="+self+" ", 1)
		if err := os.WriteFile(unit, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		// verify exits 0 on unknown keys and bad values ("ignoring"): any
		// output is a failure.
		if out := runTool(t, ".", tool, "verify", unit); strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify has complaints:\n%s", out)
		}
	})

	t.Run("security", func(t *testing.T) {
		// Exposure on systemd's 0..10 scale, times ten: at most 2.0 ("OK").
		runTool(t, ".", tool, "security", "--offline=yes", "--threshold=20", unitPath)
	})

	t.Run("sandbox", func(t *testing.T) {
		for key, want := range map[string]string{
			"Service.DynamicUser":             "yes",
			"Service.StateDirectory":          "wxtoken",
			"Service.ProtectSystem":           "strict",
			"Service.ProtectHome":             "yes",
			"Service.PrivateTmp":              "yes",
			"Service.NoNewPrivileges":         "yes",
			"Service.CapabilityBoundingSet":   "",
			"Service.AmbientCapabilities":     "",
			"Service.RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
			"Service.KillSignal":              "SIGTERM",
		} {
			if got := u.one(t, key); got != want {
				t.Errorf("%s = %q, want %q", key, got, want)
			}
		}
		if got := u["Service.SystemCallFilter"]; len(got) == 0 || got[0] != "@system-service" {
			t.Errorf("SystemCallFilter = %q, want @system-service first", got)
		}
	})

	t.Run("config", func(t *testing.T) {
		if got, want := u.one(t, "Service.ExecStart"), "/usr/local/bin/wxtoken serve --config /etc/wxtoken/wxtoken.yaml"; got != want {
			t.Fatalf("ExecStart = %q, want %q (where the README installs the binary and %s)", got, want, unitConfig)
		}
		// Each LoadCredential=name:path becomes credentialDir/name; give
		// the sample config test files there.
		creds := t.TempDir()
		names := map[string]bool{}
		for _, lc := range u["Service.LoadCredential"] {
			name, _, _ := strings.Cut(lc, ":")
			names[name] = true
			if err := os.WriteFile(filepath.Join(creds, name), []byte("secret-"+name+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		data, err := os.ReadFile(unitConfig)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "#") || !strings.Contains(line, credentialDir) {
				continue
			}
			name := strings.Fields(strings.SplitN(line, credentialDir, 2)[1])[0]
			if !names[name] {
				t.Errorf("%s reads credential %q, which the unit does not load (LoadCredential=%s:...)", unitConfig, name, name)
			}
			delete(names, name)
		}
		for name := range names {
			t.Errorf("the unit loads credential %q, which %s never reads", name, unitConfig)
		}
		cfg, err := config.Parse([]byte(strings.ReplaceAll(string(data), credentialDir, creds+"/")), filepath.Dir(unitConfig), nil)
		if err != nil {
			t.Fatalf("%s: %v", unitConfig, err)
		}
		if got, want := cfg.DataDir, "/var/lib/"+u.one(t, "Service.StateDirectory"); got != want {
			t.Errorf("data_dir = %q, want the unit's state directory %q", got, want)
		}
		stop, err := time.ParseDuration(u.one(t, "Service.TimeoutStopSec"))
		if err != nil {
			t.Fatalf("TimeoutStopSec: %v", err)
		}
		if want := cfg.Refresh.FetchTimeout + 10*time.Second; stop < want {
			t.Errorf("TimeoutStopSec = %v, want at least refresh.fetch_timeout + 10s = %v: a leader must finish its calls and resign", stop, want)
		}
	})
}
