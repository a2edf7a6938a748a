package testpki_test

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wxtoken/wxtoken/internal/testpki"
)

// TestIssue: each set of options gives the usages, names and subject it
// promises, and the certificate verifies against the CA's pool for them.
func TestIssue(t *testing.T) {
	ca := testpki.New(t, "test CA")
	server, client := x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth
	tests := []struct {
		name      string
		cn        string
		opts      []testpki.Option
		wantUsage []x509.ExtKeyUsage
		wantNames string // DNS names, then IP addresses
		wantOrg   bool   // the subject is the organization only
	}{
		{"no options: a client", "billing", nil, []x509.ExtKeyUsage{client}, "[] []", false},
		{"client", "billing", []testpki.Option{testpki.Client()}, []x509.ExtKeyUsage{client}, "[] []", false},
		{"server: 127.0.0.1 and localhost", "srv", []testpki.Option{testpki.Server()}, []x509.ExtKeyUsage{server}, "[localhost] [127.0.0.1]", false},
		{"server and client", "srv", []testpki.Option{testpki.Server(), testpki.Client()}, []x509.ExtKeyUsage{server, client}, "[localhost] [127.0.0.1]", false},
		{"hosts replace the default", "srv", []testpki.Option{testpki.Server(), testpki.Hosts("etcd.test", "::1")}, []x509.ExtKeyUsage{server}, "[etcd.test] [::1]", false},
		{"no common name", "", nil, []x509.ExtKeyUsage{client}, "[] []", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ca.Issue(t, tt.cn, tt.opts...)
			leaf := p.TLSCertificate(t).Leaf
			if !slices.Equal(leaf.ExtKeyUsage, tt.wantUsage) {
				t.Errorf("ExtKeyUsage: got %v, want %v", leaf.ExtKeyUsage, tt.wantUsage)
			}
			if got := fmt.Sprint(leaf.DNSNames, " ", leaf.IPAddresses); got != tt.wantNames {
				t.Errorf("names: got %s, want %s", got, tt.wantNames)
			}
			gotOrg := leaf.Subject.CommonName == "" && slices.Equal(leaf.Subject.Organization, []string{"wxtoken test"})
			if leaf.Subject.CommonName != tt.cn || gotOrg != tt.wantOrg {
				t.Errorf("subject: got %v, want common name %q (organization only: %v)", leaf.Subject, tt.cn, tt.wantOrg)
			}
			opts := x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: tt.wantUsage}
			if len(leaf.DNSNames) > 0 {
				opts.DNSName = leaf.DNSNames[0]
			}
			if _, err := leaf.Verify(opts); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: testpki.New(t, "other CA").Pool()}); err == nil {
				t.Error("Verify against another CA: nil error")
			}
		})
	}
}

// TestWrite: the files are where gen-certs.sh puts them, 0600, and hold
// what was issued.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.New(t, "test CA")
	p := ca.Issue(t, "srv", testpki.Server())
	caFile := ca.Write(t, dir)
	certFile, keyFile := p.Write(t, dir, "srv")
	for _, f := range []struct{ path, want string }{
		{caFile, "ca.crt"}, {certFile, "srv.crt"}, {keyFile, "srv.key"},
	} {
		if f.path != filepath.Join(dir, f.want) {
			t.Errorf("path: got %s, want %s in %s", f.path, f.want, dir)
		}
		fi, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f.want, fi.Mode().Perm())
		}
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("ca.crt: got %q, want a PEM certificate", b)
	}
	caCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !caCert.IsCA || caCert.Subject.CommonName != "test CA" {
		t.Errorf("ca.crt: IsCA %v, subject %v; want a CA named test CA", caCert.IsCA, caCert.Subject)
	}
	if got, _ := os.ReadFile(certFile); string(got) != string(p.CertPEM) {
		t.Error("srv.crt does not hold the issued certificate")
	}
	if got, _ := os.ReadFile(keyFile); string(got) != string(p.KeyPEM) {
		t.Error("srv.key does not hold the issued key")
	}
}
