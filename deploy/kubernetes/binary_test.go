package kubernetes_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// repoRoot is the main module's directory.
const repoRoot = "../.."

// wxtokenBin is cmd/wxtoken of the main module, built once by TestMain.
var wxtokenBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wxtoken-k8s-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wxtokenBin = filepath.Join(dir, "wxtoken")
	cmd := exec.Command("go", "build", "-o", wxtokenBin, "./cmd/wxtoken")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/wxtoken (in %s): %v\n%s", repoRoot, err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestConfigsPassConfigCheck runs `wxtoken config check` on every config
// of the ConfigMap, with the secret files it names taken from the keys of
// secret.yaml.example, and on a broken one, which must fail.
func TestConfigsPassConfigCheck(t *testing.T) {
	o := decodeAll(t)
	secrets := t.TempDir()
	for _, s := range o.secrets {
		for key, value := range s.StringData {
			if err := os.WriteFile(filepath.Join(secrets, key), []byte(value), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	dir := t.TempDir()
	check := func(name, text string) (string, error) {
		file := filepath.Join(dir, name)
		for _, w := range wxtokenContainers(t, o) {
			for _, m := range w.c.VolumeMounts {
				if v := volume(&w.dep.Spec.Template.Spec, m.Name); v != nil && v.Secret != nil {
					text = strings.ReplaceAll(text, strings.TrimSuffix(m.MountPath, "/")+"/", secrets+"/")
				}
			}
		}
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(wxtokenBin, "config", "check", file).CombinedOutput()
		return string(out), err
	}
	n := 0
	for _, cm := range o.configMaps {
		for key, text := range cm.Data {
			n++
			if out, err := check(key, text); err != nil {
				t.Errorf("wxtoken config check on key %s of ConfigMap %s: %v\n%s", key, cm.Name, err, out)
			}
		}
	}
	if n == 0 {
		t.Fatal("no ConfigMap data to check")
	}
	out, err := check("broken.yaml", "listen: 0.0.0.0:8417\napps:\n  - name: shop\n    kind: classik\n")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Errorf("wxtoken config check on a broken config: %v (%s), want exit status 2", err, out)
	}
}

// probePaths are the paths of every probe of every wxtoken container.
func probePaths(t *testing.T, o *objects) []string {
	t.Helper()
	set := map[string]bool{}
	for _, w := range wxtokenContainers(t, o) {
		probes := map[string]*corev1.Probe{"liveness": w.c.LivenessProbe, "readiness": w.c.ReadinessProbe, "startup": w.c.StartupProbe}
		for kind, p := range probes {
			if p == nil {
				continue
			}
			if u, ok := probeURL(t, w.c, p, kind); ok {
				set[u.Path] = true
			}
		}
	}
	paths := make([]string, 0, len(set))
	for p := range set {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

// TestProbePathsServedByBinary runs the wxtoken binary (serve --demo, on a
// free port) and checks that every probe path of the manifests answers 200
// once the replica is ready.
func TestProbePathsServedByBinary(t *testing.T) {
	o := decodeAll(t)
	paths := probePaths(t, o)
	if len(paths) == 0 {
		t.Fatal("no probe paths")
	}
	bin := wxtokenBin
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--demo", "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	cmd.Stderr = io.Discard
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	// The demo prints "curl http://127.0.0.1:PORT/v1/apps/demo/token" once
	// it listens.
	base := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`curl (http://127\.0\.0\.1:\d+)/`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				base <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var url string
	select {
	case url = <-base:
	case <-ctx.Done():
		t.Fatal("wxtoken serve --demo printed no URL within 2 minutes")
	}
	// Wait until it follows etcd (the demo's embedded one), then GET each
	// path.
	for {
		if status(ctx, url+"/readyz") == http.StatusOK {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s/readyz never answered 200", url)
		case <-time.After(100 * time.Millisecond):
		}
	}
	for _, p := range paths {
		if got := status(ctx, url+p); got != http.StatusOK {
			t.Errorf("GET %s on a ready replica: %d, want 200 (a probe of the manifests uses it)", p, got)
		}
	}
	if got := status(ctx, url+"/no-such-probe-path"); got == http.StatusOK {
		t.Errorf("GET /no-such-probe-path: 200; the check above proves nothing if every path answers 200")
	}
	t.Logf("probe paths %s answer 200 on %s", strings.Join(paths, ", "), url)
}

func status(ctx context.Context, url string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
