package replica_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/replica"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// pki is a certificate authority made for one test, writing PEM files
// into its own directory.
type etcdPKI struct {
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newEtcdPKI(t *testing.T, name string) *etcdPKI {
	t.Helper()
	p := &etcdPKI{dir: t.TempDir()}
	p.cert, p.key = p.make(t, name, &x509.Certificate{IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature})
	return p
}

// CA is the path of the CA's certificate.
func (p *etcdPKI) CA() string { return filepath.Join(p.dir, "ca.crt") }

// issue makes a certificate for cn, valid for hosts (DNS names or IPs), for
// both server and client use, and returns the paths of it and its key.
func (p *etcdPKI) issue(t *testing.T, cn string, hosts ...string) (crt, key string) {
	t.Helper()
	tmpl := &x509.Certificate{KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	p.make(t, cn, tmpl)
	return filepath.Join(p.dir, cn+".crt"), filepath.Join(p.dir, cn+".key")
}

// make fills in and signs tmpl (self-signed when p has no CA yet) and
// writes <cn>.crt and <cn>.key (ca.crt and ca.key for the CA).
func (p *etcdPKI) make(t *testing.T, cn string, tmpl *x509.Certificate) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl.SerialNumber, tmpl.Subject = serial, pkix.Name{CommonName: cn}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	parent, signer, name := p.cert, p.key, cn
	if parent == nil {
		parent, signer, name = tmpl, key, "ca"
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kder, _ := x509.MarshalECPrivateKey(key)
	write := func(file, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(p.dir, file), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+".crt", "CERTIFICATE", der)
	write(name+".key", "EC PRIVATE KEY", kder)
	return cert, key
}

// secureEtcd is a real single-node etcd for one test: on TCP, with client
// TLS and client certificates required when ca is set, and with auth
// enabled (root, password rootPassword) when auth is true.
type secureEtcd struct {
	URL  string
	ca   *etcdPKI
	root *clientv3.Client // authenticated as root (or anonymous without auth)
}

const rootPassword = "root-pw-8d1c"

func startSecureEtcd(t *testing.T, ca *etcdPKI, auth bool) *secureEtcd {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "test"
	cfg.Dir = t.TempDir()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.BcryptCost = 4 // bcrypt.MinCost: the test authenticates often
	scheme := "http"
	if ca != nil {
		scheme = "https"
		// Not 127.0.0.1: a replica dialing https://127.0.0.1 needs
		// etcd.tls.server_name; the test's own clients dial localhost.
		crt, key := ca.issue(t, "etcd-server", "etcd.test", "localhost")
		cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = crt, key
		cfg.ClientTLSInfo.TrustedCAFile, cfg.ClientTLSInfo.ClientCertAuth = ca.CA(), true
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
	s := &secureEtcd{URL: client.String(), ca: ca}
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
		crt, key := s.ca.issue(t, "client-"+user, "client")
		tc, err := config.EtcdTLS{CAFile: s.ca.CA(), CertFile: crt, KeyFile: key}.ClientConfig()
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
			Margin: 300 * time.Millisecond, Overlap: 6 * time.Second},
		WeChat: config.WeChat{BaseURL: "http://127.0.0.1:1", WeComBaseURL: "http://127.0.0.1:1"},
	}
}

// TestEtcdTLSAndAuth: a replica reaches etcd over TLS with the CA, client
// certificate and server name of etcd.tls and with its user; a wrong or
// missing piece stops the start, and no error shows the password.
func TestEtcdTLSAndAuth(t *testing.T) {
	ca, other := newEtcdPKI(t, "ca"), newEtcdPKI(t, "other-ca")
	etcd := startSecureEtcd(t, ca, true)
	if err := tokenstore.ApplyRoles(tctx(t), etcd.root, tokenstore.Roles("/wxtoken")); err != nil {
		t.Fatal(err)
	}
	const password = "cand-pw-SECRETVALUE"
	etcd.addUser(t, "cand", password, tokenstore.RoleCandidate)
	etcd.addUser(t, "nobody", password, "")
	crt, key := ca.issue(t, "replica", "replica")
	otherCrt, otherKey := other.issue(t, "replica", "replica")
	good := config.EtcdTLS{CAFile: ca.CA(), CertFile: crt, KeyFile: key, ServerName: "etcd.test"}

	tests := []struct {
		name    string
		edit    func(*config.Etcd)
		wantErr string // "" for success
	}{
		{"CA, client certificate, server name and user", func(*config.Etcd) {}, ""},
		{"no server name (the certificate is for etcd.test)", func(e *config.Etcd) { e.TLS.ServerName = "" }, "etcd unreachable"},
		{"another CA", func(e *config.Etcd) { e.TLS.CAFile = other.CA() }, "etcd unreachable"},
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
