package replica

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/config"
)

// TestEmbeddedEtcdPrivate: the embedded etcd is reachable by this user
// only. Its clients' unix socket lives in the data directory, which is
// made 0700 however it was found, and is itself 0600; its peer port turns
// away every client without the member's own certificate; and the replica
// can restart on the same directory.
func TestEmbeddedEtcdPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cfg := &config.Config{
		Node: "solo", Listen: "127.0.0.1:0", DataDir: dir, LogLevel: "info",
		Etcd:     config.Etcd{Prefix: "/wxtoken", DialTimeout: 5 * time.Second},
		Election: config.Election{TTL: 2 * time.Second, Candidate: true, Holdoff: time.Minute},
		Refresh: config.Refresh{Before: 2 * time.Second, FetchTimeout: time.Second, Concurrency: 1,
			Margin: 300 * time.Millisecond, Overlap: 3 * time.Second},
		WeChat: config.WeChat{BaseURL: "http://127.0.0.1:1", WeComBaseURL: "http://127.0.0.1:1"},
	}
	for run := range 2 {
		r, err := New(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatalf("run %d: New: %v", run, err)
		}
		checkPrivate(t, r, dir)
		r.Close()
	}
	if n := strings.Count(logs.String(), "data_dir was open to others: made it 0700"); n != 1 {
		t.Errorf("warned %d times about data_dir's mode, want once (the first run):\n%s", n, logs.String())
	}
}

func checkPrivate(t *testing.T, r *Replica, dir string) {
	t.Helper()
	mode := func(path string) os.FileMode {
		t.Helper()
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st, ok := fi.Sys().(interface{ Uid() uint32 }); ok && int(st.Uid()) != os.Getuid() {
			t.Errorf("%s is owned by uid %d, not this user", path, st.Uid())
		}
		return fi.Mode()
	}
	if m := mode(dir); m.Perm() != 0o700 || !m.IsDir() {
		t.Errorf("data_dir mode %v, want a directory with 0700", m)
	}
	sock := filepath.Join(dir, embeddedSocket)
	if m := mode(sock); m.Type() != os.ModeSocket || m.Perm() != 0o600 {
		t.Errorf("socket %s: mode %v, want a socket with 0600", sock, m)
	}
	if got, want := r.emb.url, "unix://"+sock; got != want {
		t.Errorf("embedded etcd's client URL = %s, want %s", got, want)
	}
	if m := mode(filepath.Join(dir, embeddedPeerDir)); m.Perm() != 0o700 {
		t.Errorf("peer certificate directory mode %v, want 0700", m)
	}
	if m := mode(filepath.Join(dir, embeddedPeerDir, "peer.key")); m.Perm() != 0o600 {
		t.Errorf("peer key mode %v, want 0600", m)
	}
	// The only client URL is the socket; the replica reads and writes
	// through it.
	if got := r.emb.e.Config().ListenClientUrls; len(got) != 1 || got[0].Scheme != "unix" {
		t.Errorf("client URLs %v, want the unix socket alone", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.etcd.Put(ctx, "/wxtoken/probe", "x"); err != nil {
		t.Fatalf("the replica's own client: %v", err)
	}
	// The peer port speaks TLS and wants the member's certificate: a
	// client with none, or with a certificate of its own, gets nothing.
	peers := r.emb.e.Config().ListenPeerUrls
	if len(peers) != 1 || peers[0].Scheme != "https" || !strings.HasPrefix(peers[0].Host, "127.0.0.1:") {
		t.Fatalf("peer URLs %v, want one https URL on loopback", peers)
	}
	own, err := tls.LoadX509KeyPair(filepath.Join(dir, embeddedPeerDir, "peer.crt"), filepath.Join(dir, embeddedPeerDir, "peer.key"))
	if err != nil {
		t.Fatal(err)
	}
	otherDir := t.TempDir()
	otherCrt, otherKey, err := peerCert(otherDir)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tls.LoadX509KeyPair(otherCrt, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	get := func(scheme string, certs []tls.Certificate) (int, error) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: certs}}}
		resp, err := c.Get(scheme + "://" + peers[0].Host + "/members")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get("https", []tls.Certificate{own}); err != nil || code != http.StatusOK {
		t.Errorf("peer port with the member's certificate: %d, %v; want 200 (else the refusals below prove nothing)", code, err)
	}
	for name, try := range map[string]func() (int, error){
		"plain http":                     func() (int, error) { return get("http", nil) },
		"TLS without a certificate":      func() (int, error) { return get("https", nil) },
		"TLS with another's certificate": func() (int, error) { return get("https", []tls.Certificate{other}) },
	} {
		if code, err := try(); err == nil && code == http.StatusOK {
			t.Errorf("peer port, %s: got 200, want a refusal", name)
		}
	}
}
