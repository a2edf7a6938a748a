package main

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/internal/testpki"
	"github.com/wxtoken/wxtoken/tokenstore"
)

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestSetup runs the init step twice on an etcd that wants client
// certificates, as docker-compose.yml does, and checks the result: auth on,
// root only through its certificate, users that log in with their role.
func TestSetup(t *testing.T) {
	dir := t.TempDir()
	// A CA and, as NAME.crt and NAME.key, a certificate for each common
	// name, for servers and clients, valid for localhost.
	ca := testpki.New(t, "test CA")
	ca.Write(t, dir)
	for _, name := range []string{"server", "root", "replica", "stranger"} {
		ca.Issue(t, name, testpki.Server(), testpki.Client(), testpki.Hosts("localhost")).Write(t, dir, name)
	}
	pw := filepath.Join(dir, "cand.password")
	if err := os.WriteFile(pw, []byte("cand-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := embed.NewConfig()
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.BcryptCost = 4
	cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	cfg.ClientTLSInfo.TrustedCAFile, cfg.ClientTLSInfo.ClientCertAuth = filepath.Join(dir, "ca.crt"), true
	port := freeAddr(t)
	client := url.URL{Scheme: "https", Host: port}
	peer := url.URL{Scheme: "http", Host: freeAddr(t)}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	<-e.Server.ReadyNotify()

	endpoint := "https://localhost:" + client.Port()
	tlsOf := func(name string) config.EtcdTLS {
		return config.EtcdTLS{CAFile: filepath.Join(dir, "ca.crt"), CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	}
	s := setup{endpoints: []string{endpoint}, tls: tlsOf("root"), prefix: "/wxtoken",
		users: users{{"wxtoken-candidate", tokenstore.RoleCandidate, pw}}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for run := range 2 {
		if err := s.run(ctx); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	connect := func(cert, user, password string) *clientv3.Client {
		t.Helper()
		tc, err := tlsOf(cert).ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, TLS: tc, Username: user, Password: password,
			DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatalf("connect with %s as %q: %v", cert, user, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// The candidate writes under the prefix and nowhere else.
	cand := connect("replica", "wxtoken-candidate", "cand-pw")
	if _, err := cand.Put(ctx, "/wxtoken/cred/a/token", "x"); err != nil {
		t.Errorf("candidate put: %v", err)
	}
	if _, err := cand.Put(ctx, "/other", "x"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("candidate put outside the prefix: got %v, want permission denied", err)
	}
	// A client certificate of no user reads nothing: auth is on.
	if _, err := connect("stranger", "", "").Get(ctx, "/wxtoken/cred/a/token"); err == nil {
		t.Error("a client with a certificate but no user read a record")
	}
	// Root has no password: only its certificate logs in as root.
	if _, err := connect("root", "", "").UserList(ctx); err != nil {
		t.Errorf("root by certificate: %v", err)
	}
	tc, _ := tlsOf("replica").ClientConfig()
	if c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, TLS: tc, Username: "root", Password: "",
		DialTimeout: 2 * time.Second, Logger: zap.NewNop()}); err == nil {
		if _, err := c.UserList(ctx); err == nil {
			t.Error("root without its certificate and without a password listed users")
		}
		c.Close()
	}
}
