// Package testpki makes throwaway X.509 certificate authorities for tests:
// a CA, the certificates it issues for servers and clients, and the PEM
// files that TLS configurations name, laid out as deploy/gen-certs.sh lays
// them out (ca.crt, and NAME.crt beside NAME.key).
//
// Every key is ECDSA P-256. Every certificate is valid from an hour ago
// to a day from now. Only tests import this package.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority made for one test. It does not change
// after New, so it is safe for concurrent use; its methods that take t
// call t.Fatal on an error, so call them from the goroutine running t.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// New makes a self-signed CA with common name cn.
func New(t testing.TB, cn string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(t),
		Subject:               subject(cn),
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testpki: make CA %q: %v", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testpki: parse CA %q: %v", cn, err)
	}
	return &CA{cert: cert, key: key, pem: encode("CERTIFICATE", der)}
}

// Pool is a new certificate pool holding only the CA, for RootCAs or
// ClientCAs of a tls.Config.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return pool
}

// Write writes the CA's certificate in PEM to dir/ca.crt (mode 0600) and
// returns that path.
func (ca *CA) Write(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "ca.crt")
	writeFile(t, path, ca.pem)
	return path
}

// An Option shapes a certificate that Issue makes.
type Option func(*options)

type options struct {
	server, client bool
	hosts          []string
	hostsSet       bool
}

// Server makes the certificate one for a TLS server (extended key usage
// serverAuth), valid for 127.0.0.1 and localhost unless Hosts says
// otherwise.
func Server() Option { return func(o *options) { o.server = true } }

// Client makes the certificate one for a TLS client (extended key usage
// clientAuth). With Server it is both; with neither it is a client's.
func Client() Option { return func(o *options) { o.client = true } }

// Hosts names what the certificate is valid for, in place of Server's
// default: each an IP address or a DNS name.
func Hosts(hosts ...string) Option {
	return func(o *options) { o.hosts, o.hostsSet = hosts, true }
}

// Issue makes a certificate signed by the CA and its key. Its subject is
// the common name cn or, when cn is empty, only the organization
// "wxtoken test" (as a certificate that must name no etcd user has).
func (ca *CA) Issue(t testing.TB, cn string, opts ...Option) KeyPair {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(t),
		Subject:      subject(cn),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	if o.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		if !o.hostsSet {
			o.hosts = []string{"127.0.0.1", "localhost"}
		}
	}
	if o.client || !o.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	for _, h := range o.hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("testpki: issue %q: %v", cn, err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatalf("testpki: issue %q: %v", cn, err)
	}
	return KeyPair{CertPEM: encode("CERTIFICATE", der), KeyPEM: encode("EC PRIVATE KEY", kder)}
}

// KeyPair is a certificate and its private key, each in PEM.
type KeyPair struct {
	CertPEM, KeyPEM []byte
}

// TLSCertificate is the pair for the Certificates of a tls.Config.
func (p KeyPair) TLSCertificate(t testing.TB) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
	if err != nil {
		t.Fatalf("testpki: %v", err)
	}
	return c
}

// Write writes the pair to dir/NAME.crt and dir/NAME.key (mode 0600),
// replacing what is there, and returns their paths. It writes the key
// first: a reader that sees the new certificate finds its key too.
func (p KeyPair) Write(t testing.TB, dir, name string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writeFile(t, keyFile, p.KeyPEM)
	writeFile(t, certFile, p.CertPEM)
	return certFile, keyFile
}

func subject(cn string) pkix.Name {
	if cn == "" {
		return pkix.Name{Organization: []string{"wxtoken test"}}
	}
	return pkix.Name{CommonName: cn}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testpki: generate key: %v", err)
	}
	return key
}

// newSerial is a random positive serial number: unique without a
// counter to share.
func newSerial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatalf("testpki: serial: %v", err)
	}
	return n.Add(n, big.NewInt(1))
}

func encode(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatalf("testpki: %v", err)
	}
}
