package deploy_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// promtool returns the path of Prometheus's promtool and fails the test
// when it is missing: CI installs it (.ci/run), and so must a developer.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is not installed (%v): it checks and tests deploy/prometheus/alerts.yml; "+
			"install it with `apt-get install -y prometheus` (Debian ships promtool in that package)", err)
	}
	return p
}

// runTool runs a command in dir and fails the test, with its output, when
// it does not exit 0.
func runTool(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v (in %s): %v\n%s", filepath.Base(name), args, dir, err, out.Bytes())
	}
	return out.String()
}

// TestAlertRules checks deploy/prometheus/alerts.yml with promtool and runs
// its unit tests (alerts_test.yml: every rule fires on its fault and stays
// quiet on a healthy cluster).
func TestAlertRules(t *testing.T) {
	tool := promtool(t)
	dir := "prometheus"
	t.Run("check rules", func(t *testing.T) {
		runTool(t, dir, tool, "check", "rules", "alerts.yml")
	})
	t.Run("test rules", func(t *testing.T) {
		out := runTool(t, dir, tool, "test", "rules", "alerts_test.yml")
		if !bytes.Contains([]byte(out), []byte("SUCCESS")) {
			t.Errorf("promtool test rules printed no SUCCESS:\n%s", out)
		}
	})
	t.Run("check config", func(t *testing.T) {
		// The config the compose monitoring profile runs, with the rules.
		runTool(t, dir, tool, "check", "config", "prometheus.yml")
	})
}
