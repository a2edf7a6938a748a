package replica_test

import (
	"crypto/tls"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/internal/testpki"
	"github.com/wxtoken/wxtoken/replica"
)

// tlsFiles writes a server certificate (common name cn) as dir/tls.crt
// and dir/tls.key, and the CA's certificate as dir/ca.crt, and returns the
// TLS config naming them.
func tlsFiles(t *testing.T, ca *testpki.CA, dir, cn string) config.TLS {
	t.Helper()
	certFile, keyFile := ca.Issue(t, cn, testpki.Server()).Write(t, dir, "tls")
	return config.TLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: ca.Write(t, dir)}
}

func tlsClient(ca *testpki.CA, certs ...tls.Certificate) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), Certificates: certs}}}
}

// servedCN is the common name of the certificate a new handshake gets.
func servedCN(t *testing.T, addr string, ca *testpki.CA, cert tls.Certificate) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{cert}})
	if err != nil {
		return "dial: " + err.Error()
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// TestAPIMutualTLS: with tls and client_ca_file, a caller needs a
// certificate from that CA; its common name (cert_cn) names the client,
// and a bearer token still names one over the same connection.
func TestAPIMutualTLS(t *testing.T) {
	e := newEnv(t, 1, wechattest.Config{})
	ca, other := testpki.New(t, "wxtoken test CA"), testpki.New(t, "another CA")
	cfg := e.testConfig("r0")
	cfg.TLS = tlsFiles(t, ca, t.TempDir(), "replica-one")
	cfg.Clients = []config.Client{
		{Name: "billing", CertCN: "billing", Apps: []string{"shop"}, Allow: []string{"read"}},
		{Name: "shop-all", TokenSHA256: sha(shopClientToken), Apps: []string{"shop"}, Allow: config.Actions},
	}
	r := e.start(cfg, nil)
	if !strings.HasPrefix(r.URL(), "https://") {
		t.Fatalf("URL: got %s, want https://", r.URL())
	}
	billing := tlsClient(ca, ca.Issue(t, "billing", testpki.Client()).TLSCertificate(t))
	stranger := tlsClient(ca, ca.Issue(t, "stranger", testpki.Client()).TLSCertificate(t))
	token := r.URL() + "/v1/apps/shop/token"
	waitFor(t, 10*time.Second, "a token over mTLS", func() bool {
		code, _, _ := call(t, billing, "GET", token, "", "", nil)
		return code == http.StatusOK
	})
	for _, tt := range []struct {
		name        string
		hc          *http.Client
		path, token string
		want        int
	}{
		{"cert_cn reads", billing, "/v1/apps/shop/token", "", 200},
		{"cert_cn may not proxy", billing, "/wechat/shop/cgi-bin/getcallbackip", "", 403},
		{"cert_cn may not see status", billing, "/v1/status", "", 403},
		{"unknown CN", stranger, "/v1/apps/shop/token", "", 401},
		{"unknown CN with a client token", stranger, "/v1/apps/shop/token", shopClientToken, 200},
		{"unknown CN with a wrong token", stranger, "/v1/apps/shop/token", badClientToken, 401},
		{"health needs no client", stranger, "/healthz", "", 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if code, _, body := call(t, tt.hc, "GET", r.URL()+tt.path, tt.token, "", nil); code != tt.want {
				t.Errorf("got %d %s, want %d", code, body, tt.want)
			}
		})
	}
	for _, tt := range []struct {
		name string
		hc   *http.Client
	}{
		{"no client certificate", tlsClient(ca)},
		{"certificate of another CA", tlsClient(ca, other.Issue(t, "billing", testpki.Client()).TLSCertificate(t))},
	} {
		if resp, err := tt.hc.Get(token); err == nil {
			resp.Body.Close()
			t.Errorf("%s: got %d, want the handshake refused", tt.name, resp.StatusCode)
		}
	}
	if resp, err := http.Get("http://" + r.Addr() + "/v1/apps/shop/token"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP to the TLS port: got 200")
		}
	}
}

// TestAPITLSReload: replaced certificate files are served to new
// connections without a restart, by the periodic check or on SIGHUP; a
// half-written pair keeps the old certificate.
func TestAPITLSReload(t *testing.T) {
	for _, how := range []string{"files change", "SIGHUP"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t, 1, wechattest.Config{})
			ca := testpki.New(t, "wxtoken test CA")
			dir := t.TempDir()
			cfg := e.testConfig("r0")
			cfg.TLS = tlsFiles(t, ca, dir, "replica-one")
			cfg.Clients = []config.Client{{Name: "billing", CertCN: "billing", Apps: []string{"shop"}, Allow: []string{"read"}}}
			every := 50 * time.Millisecond
			if how == "SIGHUP" {
				every = time.Hour
				// Keep the default action (exit) of SIGHUP away from the test
				// process until the replica has asked for the signal.
				own := make(chan os.Signal, 16)
				signal.Notify(own, syscall.SIGHUP)
				defer signal.Stop(own)
			}
			e.options = func(o *replica.Options) { o.TLSReloadEvery = every }
			r := e.start(cfg, nil)
			cert := ca.Issue(t, "billing", testpki.Client()).TLSCertificate(t)
			waitFor(t, 10*time.Second, "the first certificate", func() bool { return servedCN(t, r.Addr(), ca, cert) == "replica-one" })

			// A key that does not match the certificate: the old pair stays.
			broken := ca.Issue(t, "broken", testpki.Server())
			if err := os.WriteFile(cfg.TLS.CertFile, broken.CertPEM, 0o644); err != nil {
				t.Fatal(err)
			}
			if how == "SIGHUP" {
				syscall.Kill(os.Getpid(), syscall.SIGHUP)
			}
			waitFor(t, 10*time.Second, "the reload to fail", func() bool {
				return strings.Contains(e.logs.String(), "keeping the previous certificate")
			})
			if got := servedCN(t, r.Addr(), ca, cert); got != "replica-one" {
				t.Fatalf("after a broken pair: served %q, want replica-one", got)
			}
			ca.Issue(t, "replica-two", testpki.Server()).Write(t, dir, "tls") // over tlsFiles' pair
			waitFor(t, 10*time.Second, "the new certificate", func() bool {
				if how == "SIGHUP" {
					syscall.Kill(os.Getpid(), syscall.SIGHUP)
				}
				return servedCN(t, r.Addr(), ca, cert) == "replica-two"
			})
		})
	}
}

// TestAPITLSRefusals: unreadable TLS files stop the start with one line
// naming the field.
func TestAPITLSRefusals(t *testing.T) {
	e := newEnv(t, 1, wechattest.Config{})
	ca := testpki.New(t, "wxtoken test CA")
	dir := t.TempDir()
	good := tlsFiles(t, ca, dir, "replica-one")
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("nothing here"), 0o600)
	for _, tt := range []struct {
		name  string
		files config.TLS
		want  string
	}{
		{"missing cert", config.TLS{CertFile: filepath.Join(dir, "nope.crt"), KeyFile: good.KeyFile}, "tls.cert_file, tls.key_file: open "},
		{"key of another cert", config.TLS{CertFile: good.CertFile, KeyFile: notPEM}, "tls.cert_file, tls.key_file: "},
		{"CA not PEM", config.TLS{CertFile: good.CertFile, KeyFile: good.KeyFile, ClientCAFile: notPEM}, "tls.client_ca_file: " + notPEM + " holds no PEM certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := e.testConfig("r0")
			cfg.TLS = tt.files
			_, err := replica.New(replica.Options{Config: cfg, Etcd: e.clus.Members[0].Client})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("New: got %v, want one line starting %q", err, tt.want)
			}
		})
	}
}
