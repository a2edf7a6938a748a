//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Images the test builds and runs; fixed tags, so that a run replaces the
// previous run's images instead of piling them up.
const (
	wxtokenImage = "wxtoken:e2e"
	etcdImage    = "wxtoken/etcd:e2e"
	// simSecret is the secret docker-compose.yml gives the simulator's app.
	simSecret = "sim-secret-not-for-production"
)

// teardownTimeout bounds `down -v` (plus the log dump before it). The test's
// own deadline is the go test deadline less this and a margin, so that the
// stack is torn down even when the run overruns.
const teardownTimeout = 2 * time.Minute

// stack is one Compose project started from the repository's
// docker-compose.yml. Its methods are safe for concurrent use.
type stack struct {
	t       *testing.T
	compose []string // "docker compose" or "docker-compose"
	root    string   // repository root
	project string
	env     []string
	out     string // directory for the history, the report and logs
	ports   map[string]int

	downOnce sync.Once
}

// requireEngine skips the test when no Docker engine answers (unless
// WXTOKEN_E2E_REQUIRE_DOCKER=1), and returns the Compose command, failing
// the test when the engine answers but Compose is missing.
func requireEngine(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("no Docker engine answers `docker info` (%v: %s): the compose test needs one", err, bytes.TrimSpace(out))
		if os.Getenv("WXTOKEN_E2E_REQUIRE_DOCKER") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Logf("Docker engine %s", bytes.TrimSpace(out))
	if exec.CommandContext(ctx, "docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if p, err := exec.LookPath("docker-compose"); err == nil && exec.CommandContext(ctx, p, "version").Run() == nil {
		return []string{p}
	}
	t.Fatal("the Docker engine answers but neither `docker compose` nor `docker-compose` works: install the Compose tool")
	return nil
}

// newStack prepares (but does not start) a stack with a unique project name
// and free host ports. It registers the teardown at once, and also on
// SIGINT and SIGTERM.
func newStack(t *testing.T, compose []string) *stack {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(wd) // go test runs in e2e/
	if _, err := os.Stat(filepath.Join(root, "docker-compose.yml")); err != nil {
		t.Fatalf("docker-compose.yml not found at the repository root: %v", err)
	}
	s := &stack{
		t: t, compose: compose, root: root,
		project: fmt.Sprintf("wxtoken-e2e-%d-%04x", os.Getpid(), time.Now().UnixNano()&0xffff),
		ports:   map[string]int{},
	}
	s.out = os.Getenv("WXTOKEN_E2E_OUT")
	if s.out == "" {
		s.out = filepath.Join(wd, "out", s.project)
	}
	if err := os.MkdirAll(s.out, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"WXTOKEN_PORT_1", "WXTOKEN_PORT_2", "WXTOKEN_PORT_3", "WECHAT_SIM_PORT", "PROMETHEUS_PORT"} {
		s.ports[name] = freePort(t)
	}
	config := filepath.Join(wd, "testdata", "wxtoken.yaml")
	env := []string{}
	for _, kv := range os.Environ() {
		// The caller's Compose settings must not leak into the test stack.
		if strings.HasPrefix(kv, "COMPOSE_") || strings.HasPrefix(kv, "WXTOKEN_") || strings.HasPrefix(kv, "ETCD_") ||
			strings.HasPrefix(kv, "APP_SECRET=") || strings.HasPrefix(kv, "SIM_") || strings.HasPrefix(kv, "WECHAT_") ||
			strings.HasPrefix(kv, "PROMETHEUS_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"WXTOKEN_IMAGE="+wxtokenImage, "ETCD_IMAGE="+etcdImage,
		"WXTOKEN_CONFIG="+config, "APP_SECRET="+simSecret,
		"WXTOKEN_BIND=127.0.0.1", "SIM_TOKEN_TTL=60s", "SIM_OVERLAP=30s",
		"ETCD_CLUSTER_TOKEN="+s.project,
		// The monitoring and fleet profiles run too (up, logs and down alike).
		"COMPOSE_PROFILES=monitoring,fleet", "PROMETHEUS_IMAGE="+prometheusImage,
		"WXTOKEN_SIDECAR_CONFIG="+filepath.Join(wd, "testdata", "wxtoken-sidecar.yaml"),
	)
	for name, port := range s.ports {
		env = append(env, fmt.Sprintf("%s=%d", name, port))
	}
	s.env = env

	t.Cleanup(s.down)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sig:
			fmt.Fprintf(os.Stderr, "e2e: interrupted: tearing down %s\n", s.project)
			s.down()
			os.Exit(1)
		case <-done:
		}
	}()
	t.Cleanup(func() { signal.Stop(sig); close(done) })
	return s
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// url is the host URL of a published port (WXTOKEN_PORT_1, WECHAT_SIM_PORT).
func (s *stack) url(portVar string) string {
	return fmt.Sprintf("http://127.0.0.1:%d", s.ports[portVar])
}

// buildImages runs deploy/build-images.sh (for the stack, then for the
// monitoring profile's Prometheus), unless WXTOKEN_E2E_SKIP_BUILD=1 and the
// images exist.
func (s *stack) buildImages(ctx context.Context) error {
	// The compose file mounts etcd's CA, certificates and passwords from
	// deploy/certs, which build-images.sh makes too.
	if out, err := exec.CommandContext(ctx, filepath.Join(s.root, "deploy", "gen-certs.sh")).CombinedOutput(); err != nil {
		return fmt.Errorf("deploy/gen-certs.sh: %w\n%s", err, out)
	}
	if os.Getenv("WXTOKEN_E2E_SKIP_BUILD") == "1" {
		_, err1 := s.docker(ctx, "image", "inspect", wxtokenImage)
		_, err2 := s.docker(ctx, "image", "inspect", etcdImage)
		_, err3 := s.docker(ctx, "image", "inspect", prometheusImage)
		if err1 == nil && err2 == nil && err3 == nil {
			s.t.Logf("WXTOKEN_E2E_SKIP_BUILD=1: using the existing %s, %s and %s", wxtokenImage, etcdImage, prometheusImage)
			return nil
		}
	}
	for _, which := range []string{"all", "prometheus"} {
		cmd := exec.CommandContext(ctx, filepath.Join(s.root, "deploy", "build-images.sh"), which)
		cmd.Dir = s.root
		cmd.Env = append(os.Environ(), "WXTOKEN_IMAGE="+wxtokenImage, "ETCD_IMAGE="+etcdImage, "PROMETHEUS_IMAGE="+prometheusImage)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("deploy/build-images.sh %s: %w\n%s", which, err, out)
		}
	}
	return nil
}

// run runs a command and returns its trimmed stdout; the error carries
// stderr.
func (s *stack) run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = s.env
	cmd.Dir = s.root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

func (s *stack) docker(ctx context.Context, args ...string) (string, error) {
	return s.run(ctx, "docker", args...)
}

// composeRun runs the Compose command on the repository's compose file and
// the project.
func (s *stack) composeRun(ctx context.Context, args ...string) (string, error) {
	full := append(append([]string{}, s.compose[1:]...), "-f", filepath.Join(s.root, "docker-compose.yml"), "-p", s.project)
	return s.run(ctx, s.compose[0], append(full, args...)...)
}

// up starts the stack in the background.
func (s *stack) up(ctx context.Context) error {
	_, err := s.composeRun(ctx, "up", "-d", "--no-build")
	return err
}

// down dumps the containers' logs into the output directory and removes
// the stack with its volumes. It runs once, on a fresh context, whatever
// state the test is in.
func (s *stack) down() {
	s.downOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
		defer cancel()
		if logs, err := s.composeRun(ctx, "logs", "--no-color", "--timestamps"); err == nil {
			path := filepath.Join(s.out, "compose.log")
			if os.WriteFile(path, []byte(logs+"\n"), 0o644) == nil {
				s.t.Logf("containers' logs: %s", path)
			}
		}
		if _, err := s.composeRun(ctx, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
			s.t.Errorf("teardown: %v", err)
			return
		}
		// Anything left under the project's label is a teardown failure.
		left, err := s.docker(ctx, "ps", "-aq", "--filter", "label=com.docker.compose.project="+s.project)
		vols, err2 := s.docker(ctx, "volume", "ls", "-q", "--filter", "label=com.docker.compose.project="+s.project)
		switch {
		case err != nil || err2 != nil:
			s.t.Errorf("teardown check: %v %v", err, err2)
		case left != "" || vols != "":
			s.t.Errorf("teardown left containers %q and volumes %q", left, vols)
		default:
			s.t.Logf("torn down %s (down -v)", s.project)
		}
	})
}
