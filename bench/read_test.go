package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestUnixSockets: the load generator reads both protocols on a unix
// socket named unix:<path>, and sends Host: localhost there.
func TestUnixSockets(t *testing.T) {
	dir := t.TempDir()
	hl, err := net.Listen("unix", dir+"/http.sock")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.Host))
	}))
	srv.Listener = hl
	srv.Start()
	defer srv.Close()
	h, err := dialHTTP(unixPrefix+dir+"/http.sock", "/")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if body, err := h.get(); err != nil || string(body) != "localhost" {
		t.Errorf("HTTP on a unix socket: got Host %q, %v; want localhost", body, err)
	}

	rl, err := net.Listen("unix", dir+"/redis.sock")
	if err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("v", redisValueLen)
	fakeRedisOn(t, rl, value)
	if err := setRedis(unixPrefix+dir+"/redis.sock", "k", value); err != nil {
		t.Errorf("Redis on a unix socket: %v", err)
	}
}

// TestReadRows: the ratios divide the right targets, and a run without
// Docker says that its Redis is not as deployed.
func TestReadRows(t *testing.T) {
	res := map[string]Load{
		"wxtoken-unix": {RPS: 300}, "wxtoken-tcp": {RPS: 200}, "wxtoken-unix-default": {RPS: 150},
		"redis-net": {RPS: 250}, "redis-tcp": {RPS: 400}, "redis-unix": {RPS: 600},
		refNetHTTP: {RPS: 100}, refRaw: {RPS: 500},
	}
	tests := []struct {
		deployed string
		want     map[string]float64 // row name prefix -> value
		label    string
	}{
		{"redis-net", map[string]float64{
			"Sidecar (unix socket) / Redis as deployed, c=1": 300.0 / 250,
			"Sidecar (loopback) / Redis as deployed, c=1":    200.0 / 250,
			"Same transport, both on loopback":               200.0 / 400,
			"Same transport, both on unix sockets":           300.0 / 600,
		}, "Redis on a container network (as deployed)"},
		{"redis-tcp", map[string]float64{
			"Sidecar (unix socket) / Redis on loopback (NOT as deployed), c=1": 300.0 / 400,
			"Sidecar (loopback) / Redis on loopback (NOT as deployed), c=1":    200.0 / 400,
		}, "NOT as deployed"},
	}
	for _, tt := range tests {
		t.Run(tt.deployed, func(t *testing.T) {
			var r Report
			readRows(&r, res, 1, tt.deployed, 2)
			labelled := false
			for prefix, want := range tt.want {
				found := false
				for _, row := range r.Rows {
					if strings.HasPrefix(row.Name, prefix) {
						found = true
						if row.Value != want {
							t.Errorf("%s: got %v, want %v", prefix, row.Value, want)
						}
					}
				}
				if !found {
					t.Errorf("no row %q", prefix)
				}
			}
			for _, row := range r.Rows {
				labelled = labelled || strings.Contains(row.Name, tt.label)
			}
			if !labelled {
				t.Errorf("no row says %q", tt.label)
			}
		})
	}
}

// TestRedisContainer runs the Redis image on a network of its own, reads
// it at the container's address, and checks that stop leaves nothing
// behind, and that a later run removes what a killed one left.
func TestRedisContainer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a container")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const image = "wxtoken/redis:latest"
	if _, err := docker(ctx, "image", "inspect", image); err != nil {
		t.Skipf("no Docker or no %s (deploy/build-images.sh redis): %v", image, err)
	}
	rc, err := startRedisContainer(ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("v", redisValueLen)
	if err := setRedis(rc.addr, "k", value); err != nil {
		t.Error(err)
	}
	rc.stop()
	if out, _ := docker(ctx, "ps", "-a", "--filter", "name=^"+rc.name+"$", "--format", "{{.Names}}"); out != "" {
		t.Errorf("container %s left after stop", out)
	}
	if _, err := docker(ctx, "network", "inspect", rc.name); err == nil {
		t.Errorf("network %s left after stop", rc.name)
	}

	// A network labelled with the pid of a process that is gone.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(dead.Process.Pid)
	name := "wxtoken-bench-test-" + pid
	if _, err := docker(ctx, "network", "create", "--label", pidLabel+"="+pid, name); err != nil {
		t.Fatal(err)
	}
	mine := "wxtoken-bench-test-live-" + pid
	if _, err := docker(ctx, "network", "create", "--label", pidLabel+"="+strconv.Itoa(os.Getpid()), mine); err != nil {
		t.Fatal(err)
	}
	defer docker(context.Background(), "network", "rm", mine)
	removeStale(ctx)
	if _, err := docker(ctx, "network", "inspect", name); err == nil {
		docker(ctx, "network", "rm", name)
		t.Errorf("removeStale left %s, of a process that is gone", name)
	}
	if _, err := docker(ctx, "network", "inspect", mine); err != nil {
		t.Errorf("removeStale removed %s, of a live process", mine)
	}
}
