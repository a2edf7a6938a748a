package replica_test

import (
	"context"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/tests/v3/framework/integration"

	"github.com/wxtoken/wxtoken/client"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/replica"
)

// TestUnixSocket: listen_unix makes a socket with socket_mode and
// socket_group, replaces a stale one, refuses one in use, serves the API
// (no Host check: no browser reaches it) and is removed on stop.
func TestUnixSocket(t *testing.T) {
	e := newEnv(t, 1, wechattest.Config{})
	dir, err := os.MkdirTemp("", "wxt") // short: a socket path has ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "api.sock")
	// A stale socket from a replica that died.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()

	gid := os.Getgid()
	if os.Geteuid() == 0 {
		gid = 4321 // root may give the socket to any group: show that it does
	}
	cfg := e.testConfig("r0")
	cfg.ListenUnix, cfg.SocketMode, cfg.SocketGroup = sock, 0o660, strconv.Itoa(gid)
	r := e.start(cfg, nil)

	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode: got %v, want a socket with 0660", fi.Mode())
	}
	if got := fi.Sys().(*syscall.Stat_t).Gid; int(got) != gid {
		t.Errorf("socket group: got %d, want %d", got, gid)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want the socket alone", len(entries))
	}
	c, err := client.New(client.Config{BaseURL: "unix://" + sock})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a token over the socket", func() bool {
		_, err := c.Token(context.Background(), "shop")
		return err == nil
	})
	// A second replica on the same socket is refused.
	cfg2 := e.testConfig("r1")
	cfg2.ListenUnix = sock
	ec, err := integration.NewClientV3(e.clus.Members[0])
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	if _, err := replica.New(replica.Options{Config: cfg2, Etcd: ec}); err == nil || !strings.Contains(err.Error(), "listen_unix: "+sock+" is in use") {
		t.Errorf("second replica on the socket: got %v, want in use", err)
	}
	r.stop()
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket after stop: %v, want it removed", err)
	}
}

// TestMetricsListen: metrics_listen serves /metrics alone, to the same
// clients as the API.
func TestMetricsListen(t *testing.T) {
	e := newEnv(t, 1, wechattest.Config{})
	cfg := e.accessConfig("r0")
	cfg.MetricsListen = "127.0.0.1:0"
	r := e.start(cfg, nil)
	hc := &http.Client{Timeout: 10 * time.Second}
	m := "http://" + r.MetricsAddr()
	waitFor(t, 10*time.Second, "metrics", func() bool {
		code, _, _ := call(t, hc, "GET", m+"/metrics", shopClientToken, "", nil)
		return code == http.StatusOK
	})
	call(t, hc, "GET", r.URL()+"/v1/apps/shop/token", badClientToken, "", nil) // one refusal to count
	_, _, body := call(t, hc, "GET", m+"/metrics", shopClientToken, "", nil)
	if !strings.Contains(body, `wxtoken_http_refused_total{code="unauthorized"} 1`) {
		t.Errorf("metrics: want one unauthorized refusal counted; got\n%s", body)
	}
	for _, tt := range []struct {
		path, token string
		want        int
	}{
		{"/metrics", "", 401},
		{"/metrics", miniClientToken, 403},
		{"/v1/apps/shop/token", shopClientToken, 404},
		{"/v1/status", shopClientToken, 404},
	} {
		if code, _, body := call(t, hc, "GET", m+tt.path, tt.token, "", nil); code != tt.want {
			t.Errorf("metrics_listen %s: got %d %s, want %d", tt.path, code, body, tt.want)
		}
	}
}

// TestHTTPLimits: a header past 64 KiB is refused, and connections past
// http.max_conns wait for one to close.
func TestHTTPLimits(t *testing.T) {
	e := newEnv(t, 1, wechattest.Config{})
	cfg := e.testConfig("r0")
	cfg.HTTP.MaxConns = 1
	r := e.start(cfg, nil)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	waitFor(t, 10*time.Second, "a token", func() bool {
		code, _, _ := call(t, hc, "GET", r.URL()+"/v1/apps/shop/token", "", "", nil)
		return code == http.StatusOK
	})
	if code, _, _ := call(t, hc, "GET", r.URL()+"/healthz", "", "", map[string]string{"X-Big": strings.Repeat("x", 70<<10)}); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("70 KiB header: got %d, want 431", code)
	}
	// One idle connection holds the only slot.
	hold, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	waiting := &http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := waiting.Get(r.URL() + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("a second connection past max_conns 1: got %d, want it kept waiting", resp.StatusCode)
	}
	hold.Close()
	waitFor(t, 10*time.Second, "the slot to free", func() bool {
		code, _, _ := call(t, hc, "GET", r.URL()+"/healthz", "", "", nil)
		return code == http.StatusOK
	})
}

// TestExposureRefused: a replica whose API other hosts can reach, with no
// clients, does not start unless allow_anonymous is set.
func TestExposureRefused(t *testing.T) {
	e := newEnv(t, 1, wechattest.Config{})
	ec, err := integration.NewClientV3(e.clus.Members[0])
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	cfg := e.testConfig("r0")
	cfg.Listen = "0.0.0.0:0"
	_, err = replica.New(replica.Options{Config: cfg, Etcd: ec})
	if err == nil || !strings.HasPrefix(err.Error(), "config: listen: 0.0.0.0:0 is reachable from other hosts and no clients are set") {
		t.Fatalf("New: got %v, want the exposure refusal", err)
	}
	cfg.AllowAnonymous = true
	r := e.start(cfg, nil)
	waitFor(t, 10*time.Second, "the warning", func() bool {
		return strings.Contains(e.logs.String(), "allow_anonymous: anyone who reaches this replica reads every token")
	})
	r.stop()
}
