package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// writeCertPair writes a self-signed certificate and its key as PEM into
// dir, as name.crt and name.key.
func writeCertPair(t *testing.T, dir, name string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, name+".crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, dir, name+".key", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
}

// randomHexKey is a key file's content: 64 hex digits and a newline.
func randomHexKey(t *testing.T) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b) + "\n"
}

func TestParseSecurity(t *testing.T) {
	dir := t.TempDir()
	writeCertPair(t, dir, "ca")
	writeCertPair(t, dir, "client")
	k1, k2 := randomHexKey(t), randomHexKey(t)
	writeFile(t, dir, "k1.key", k1)
	writeFile(t, dir, "k2.key", k2)
	c, err := Parse([]byte(`
etcd:
  endpoints: [https://10.0.0.1:2379, http://127.0.0.1:2379]
  username: wxtoken-candidate
  password: pw
  tls: {ca_file: ca.crt, cert_file: client.crt, key_file: client.key, server_name: etcd.internal}
encryption:
  key_files: [k1.key, k2.key]
`), dir, nil)
	if err == nil || !strings.Contains(err.Error(), "etcd.endpoints[1]: http://127.0.0.1:2379 is http://, but etcd.tls is set (want https://)") {
		t.Fatalf("Parse with an http endpoint and tls: got %v", err)
	}
	c, err = Parse([]byte(`
etcd:
  endpoints: [https://10.0.0.1:2379]
  username: wxtoken-candidate
  password: pw
  tls: {ca_file: ca.crt, cert_file: client.crt, key_file: client.key, server_name: etcd.internal}
encryption:
  key_files: [k1.key, k2.key]
`), dir, nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	wantTLS := EtcdTLS{CAFile: dir + "/ca.crt", CertFile: dir + "/client.crt", KeyFile: dir + "/client.key", ServerName: "etcd.internal"}
	if c.Etcd.TLS != wantTLS {
		t.Errorf("etcd.tls = %+v, want %+v", c.Etcd.TLS, wantTLS)
	}
	tc, err := c.Etcd.TLS.ClientConfig()
	if err != nil || tc.ServerName != "etcd.internal" || tc.RootCAs == nil || len(tc.Certificates) != 1 {
		t.Errorf("ClientConfig = %+v, %v; want the server name, a CA pool and one certificate", tc, err)
	}
	if got, want := c.Encryption.KeyFiles, []string{dir + "/k1.key", dir + "/k2.key"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("key files = %q, want %q", got, want)
	}
	if len(c.Encryption.Keys) != 2 || !c.Encryption.On() || c.Encryption.AcceptPlaintext {
		t.Fatalf("encryption = %+v, want two keys, on, no plaintext", c.Encryption)
	}
	if s := c.Encryption.Keys[0].String(); strings.Contains(s, strings.TrimSpace(k1)[:16]) {
		t.Errorf("a key prints as %q: it shows the key", s)
	}

	// Without etcd.tls, https endpoints use the system's roots; a password
	// over http:// is fine on loopback only.
	for _, y := range []string{
		"etcd: {endpoints: ['https://10.0.0.1:2379'], username: u, password: p}",
		"etcd: {endpoints: ['http://127.0.0.1:2379', 'http://localhost:2379', 'http://[::1]:2379'], username: u, password: p}",
		"etcd: {endpoints: ['http://10.0.0.1:2379']}",
		"etcd: {endpoints: ['https://10.0.0.1:2379'], tls: {server_name: etcd}}",
		"encryption: {key_files: []}",
	} {
		if _, err := Parse([]byte(y), dir, nil); err != nil {
			t.Errorf("Parse(%s): %v", y, err)
		}
	}
}

func TestParseSecurityErrors(t *testing.T) {
	dir := t.TempDir()
	writeCertPair(t, dir, "ca")
	writeCertPair(t, dir, "other")
	k1 := randomHexKey(t)
	writeFile(t, dir, "k1.key", k1)
	writeFile(t, dir, "k1-copy.key", k1)
	writeFile(t, dir, "password.key", "correct-horse-battery-staple-123")
	writeFile(t, dir, "short.key", "0123456789abcdef\n")
	writeFile(t, dir, "notpem", "hello\n")
	tests := []struct {
		name, yaml, want string
	}{
		{"password over http", "etcd: {endpoints: [http://etcd-1:2379], username: u, password: lit-SECRETVALUE}",
			"config: etcd.endpoints[0]: http://etcd-1:2379 would carry etcd.password in the clear (want https:// with etcd.tls, or a loopback host)"},
		{"password over http, second endpoint", "etcd: {endpoints: [http://127.0.0.1:2379, http://10.1.1.1:2379], username: u, password: lit-SECRETVALUE}",
			"config: etcd.endpoints[1]: http://10.1.1.1:2379 would carry etcd.password in the clear (want https:// with etcd.tls, or a loopback host)"},
		{"tls with http", "etcd: {endpoints: [http://etcd-1:2379], tls: {ca_file: ca.crt}}",
			"config: etcd.endpoints[0]: http://etcd-1:2379 is http://, but etcd.tls is set (want https://)"},
		{"tls with embedded etcd", "etcd: {tls: {ca_file: ca.crt}}",
			"config: etcd.tls: set, but etcd.endpoints is empty (the embedded etcd is reached over a private unix socket, without TLS)"},
		{"cert without key", "etcd: {endpoints: [https://e:2379], tls: {cert_file: ca.crt}}",
			"config: etcd.tls.key_file: missing (etcd.tls.cert_file is set)"},
		{"key without cert", "etcd: {endpoints: [https://e:2379], tls: {key_file: ca.key}}",
			"config: etcd.tls.cert_file: missing (etcd.tls.key_file is set)"},
		{"missing ca", "etcd: {endpoints: [https://e:2379], tls: {ca_file: nope.crt}}",
			"config: etcd.tls.ca_file: open " + dir + "/nope.crt: no such file or directory"},
		{"ca not pem", "etcd: {endpoints: [https://e:2379], tls: {ca_file: notpem}}",
			"config: etcd.tls.ca_file: no PEM certificate in " + dir + "/notpem"},
		{"key of another cert", "etcd: {endpoints: [https://e:2379], tls: {cert_file: ca.crt, key_file: other.key}}",
			"config: etcd.tls.cert_file: with key_file: tls: private key does not match public key"},
		{"unknown tls key", "etcd: {endpoints: [https://e:2379], tls: {ca: x}}",
			"config: etcd.tls.ca: unknown key (line 1)"},
		{"missing key file", "encryption: {key_files: [nope.key]}",
			"config: encryption.key_files[0]: open " + dir + "/nope.key: no such file or directory"},
		{"empty key file path", "encryption: {key_files: ['']}",
			"config: encryption.key_files[0]: empty path"},
		{"password as key", "encryption: {key_files: [k1.key, password.key]}",
			"config: encryption.key_files[1]: key file " + dir + "/password.key: 32 printable characters: a password, not a key (want 32 random bytes, 64 hex digits or base64 of 32 bytes)"},
		{"short key", "encryption: {key_files: [short.key]}",
			"config: encryption.key_files[0]: key file " + dir + "/short.key: 17 bytes that are neither 32 raw bytes, 64 hex digits nor base64 of 32 bytes"},
		{"same key twice", "encryption: {key_files: [k1.key, k1-copy.key]}",
			"config: encryption.key_files[1]: the same key as encryption.key_files[0] (id "},
		{"plaintext without keys", "encryption: {accept_plaintext: true}",
			"config: encryption.accept_plaintext: set without encryption.key_files"},
		{"key_files not a list", "encryption: {key_files: k1.key}",
			"config: encryption.key_files: got `k1.key`, want a list of strings (line 1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), dir, nil)
			if err == nil {
				t.Fatalf("Parse: nil error, want %q", tt.want)
			}
			msg := err.Error()
			if strings.Contains(msg, leakMarker) || strings.Contains(msg, strings.TrimSpace(k1)) || strings.Contains(msg, "horse") {
				t.Errorf("error leaks a secret: %q", msg)
			}
			found := false
			for _, line := range strings.Split(msg, "\n") {
				found = found || strings.HasPrefix(line, tt.want)
			}
			if !found {
				t.Errorf("error:\n got %s\nwant a line starting %s", msg, tt.want)
			}
		})
	}
}
