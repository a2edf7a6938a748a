package replica_test

import (
	"context"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/internal/testpki"
	"github.com/wxtoken/wxtoken/replica"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// etcdCert issues a certificate of ca for cn, for both server and client
// use, valid for hosts (DNS names or IPs), writes it into a new directory
// and returns the paths of it and its key.
func etcdCert(t *testing.T, ca *testpki.CA, cn string, hosts ...string) (crt, key string) {
	t.Helper()
	return ca.Issue(t, cn, testpki.Server(), testpki.Client(), testpki.Hosts(hosts...)).Write(t, t.TempDir(), cn)
}

// secureEtcd is a real single-node etcd for one test: on TCP, with client
// TLS and client certificates required when ca is set, and with auth
// enabled (root, password rootPassword) when auth is true.
type secureEtcd struct {
	URL    string
	ca     *testpki.CA
	caFile string           // ca's certificate, when ca is set
	root   *clientv3.Client // authenticated as root (or anonymous without auth)
}

const rootPassword = "root-pw-8d1c"

func startSecureEtcd(t *testing.T, ca *testpki.CA, auth bool) *secureEtcd {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "test"
	cfg.Dir = t.TempDir()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.BcryptCost = 4 // bcrypt.MinCost: the test authenticates often
	scheme, caFile := "http", ""
	if ca != nil {
		scheme, caFile = "https", ca.Write(t, t.TempDir())
		// Not 127.0.0.1: a replica dialing https://127.0.0.1 needs
		// etcd.tls.server_name; the test's own clients dial localhost.
		crt, key := etcdCert(t, ca, "etcd-server", "etcd.test", "localhost")
		cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = crt, key
		cfg.ClientTLSInfo.TrustedCAFile, cfg.ClientTLSInfo.ClientCertAuth = caFile, true
	}
	client := url.URL{Scheme: scheme, Host: freeAddr(t)}
	peer := url.URL{Scheme: "http", Host: freeAddr(t)}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("etcd not ready")
	}
	s := &secureEtcd{URL: client.String(), ca: ca, caFile: caFile}
	s.root = s.client(t, "", "")
	if auth {
		ctx := tctx(t)
		for i, step := range []func() error{
			func() error { _, err := s.root.UserAdd(ctx, "root", rootPassword); return err },
			func() error { _, err := s.root.UserGrantRole(ctx, "root", "root"); return err },
			func() error { _, err := s.root.AuthEnable(ctx); return err },
		} {
			if err := step(); err != nil {
				t.Fatalf("enable auth: step %d: %v", i, err)
			}
		}
		s.root = s.client(t, "root", rootPassword)
	}
	return s
}

// client connects as user (anonymous if ""), with a client certificate
// when etcd takes TLS.
func (s *secureEtcd) client(t *testing.T, user, password string) *clientv3.Client {
	t.Helper()
	cfg := clientv3.Config{Endpoints: []string{strings.Replace(s.URL, "127.0.0.1", "localhost", 1)}, Username: user, Password: password,
		DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if s.ca != nil {
		crt, key := etcdCert(t, s.ca, "client-"+user, "client")
		tc, err := config.EtcdTLS{CAFile: s.caFile, CertFile: crt, KeyFile: key}.ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS = tc
	}
	c, err := clientv3.New(cfg)
	if err != nil {
		t.Fatalf("etcd client as %q: %v", user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// addUser creates user with password and role.
func (s *secureEtcd) addUser(t *testing.T, user, password, role string) {
	t.Helper()
	if _, err := s.root.UserAdd(tctx(t), user, password); err != nil {
		t.Fatal(err)
	}
	if role != "" {
		if _, err := s.root.UserGrantRole(tctx(t), user, role); err != nil {
			t.Fatal(err)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// bareConfig is a valid replica config with no apps on etcd at endpoint.
func bareConfig(node, endpoint string) *config.Config {
	return &config.Config{
		Node: node, Listen: "127.0.0.1:0", LogLevel: "debug", DataDir: "unused-with-endpoints",
		Etcd:     config.Etcd{Endpoints: []string{endpoint}, Prefix: "/wxtoken", DialTimeout: 3 * time.Second},
		Election: config.Election{TTL: 2 * time.Second, Candidate: true, Holdoff: time.Minute},
		Refresh: config.Refresh{Before: 2 * time.Second, FetchTimeout: time.Second, Concurrency: 8,
			Margin: 300 * time.Millisecond, Overlap: 10 * time.Second},
		WeChat: config.WeChat{BaseURL: "http://127.0.0.1:1", WeComBaseURL: "http://127.0.0.1:1"},
	}
}

// TestEtcdTLSAndAuth: a replica reaches etcd over TLS with the CA, client
// certificate and server name of etcd.tls and with its user; a wrong or
// missing piece stops the start, and no error shows the password.
func TestEtcdTLSAndAuth(t *testing.T) {
	ca, other := testpki.New(t, "ca"), testpki.New(t, "other-ca")
	etcd := startSecureEtcd(t, ca, true)
	if err := tokenstore.ApplyRoles(tctx(t), etcd.root, tokenstore.Roles("/wxtoken")); err != nil {
		t.Fatal(err)
	}
	const password = "cand-pw-SECRETVALUE"
	etcd.addUser(t, "cand", password, tokenstore.RoleCandidate)
	etcd.addUser(t, "nobody", password, "")
	crt, key := etcdCert(t, ca, "replica", "replica")
	otherCrt, otherKey := etcdCert(t, other, "replica", "replica")
	otherCA := other.Write(t, t.TempDir())
	good := config.EtcdTLS{CAFile: etcd.caFile, CertFile: crt, KeyFile: key, ServerName: "etcd.test"}

	tests := []struct {
		name    string
		edit    func(*config.Etcd)
		wantErr string // "" for success
	}{
		{"CA, client certificate, server name and user", func(*config.Etcd) {}, ""},
		{"no server name (the certificate is for etcd.test)", func(e *config.Etcd) { e.TLS.ServerName = "" }, "etcd unreachable"},
		{"another CA", func(e *config.Etcd) { e.TLS.CAFile = otherCA }, "etcd unreachable"},
		{"no client certificate", func(e *config.Etcd) { e.TLS.CertFile, e.TLS.KeyFile = "", "" }, "etcd unreachable"},
		{"client certificate of another CA", func(e *config.Etcd) { e.TLS.CertFile, e.TLS.KeyFile = otherCrt, otherKey }, "etcd unreachable"},
		{"wrong password", func(e *config.Etcd) { e.Password = config.NewSecret("wrong-SECRETVALUE") }, "authentication failed"},
		{"no user", func(e *config.Etcd) { e.Username, e.Password = "", config.Secret{} }, "may not read /wxtoken/cred/"},
		{"user without a role", func(e *config.Etcd) { e.Username = "nobody" }, `user "nobody" may not read /wxtoken/cred/`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := bareConfig("n1", etcd.URL)
			cfg.Etcd.Username, cfg.Etcd.Password, cfg.Etcd.TLS = "cand", config.NewSecret(password), good
			tt.edit(&cfg.Etcd)
			if err := cfg.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			r, err := replica.New(replica.Options{Config: cfg})
			if err == nil {
				r.Close()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("New: nil error, want one containing %q", tt.wantErr)
			case err != nil && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("New: %v\nwant an error containing %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), "SECRETVALUE"):
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}
