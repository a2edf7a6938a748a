package kubernetes_test

import (
	"bufio"
	"context"
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

// buildWxtoken compiles cmd/wxtoken of the main module into a temporary
// directory.
func buildWxtoken(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wxtoken")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/wxtoken")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/wxtoken: %v\n%s", err, out)
	}
	return bin
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
	bin := buildWxtoken(t)
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
