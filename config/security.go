package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"

	"github.com/wxtoken/wxtoken/seal"
)

// Encryption seals the records kept in etcd ("encryption").
type Encryption struct {
	// KeyFiles ("key_files") are files of 32 random bytes each (raw, 64 hex
	// digits or base64; see seal.ParseKey). A relative path is taken
	// relative to the config file. Empty: records are stored in the clear.
	KeyFiles []string
	// Keys are the keys Parse read from KeyFiles, in the same order: the
	// first seals, every one opens. A Config built in code sets Keys (and
	// may leave KeyFiles empty).
	Keys []seal.Key
	// AcceptPlaintext ("accept_plaintext") lets a replica with keys still
	// read records stored in the clear: only for turning encryption on in a
	// running cluster, since while it is set anyone who can write to etcd
	// can forge a record. Default false.
	AcceptPlaintext bool
}

// On reports whether records are sealed.
func (e Encryption) On() bool { return len(e.Keys) > 0 }

// EtcdTLS is the client side of TLS to etcd ("etcd.tls").
type EtcdTLS struct {
	CAFile     string // "ca_file": PEM CA certificates that sign etcd's; default the system's
	CertFile   string // "cert_file": PEM client certificate (with key_file), for etcd's --client-cert-auth
	KeyFile    string // "key_file": its PEM private key
	ServerName string // "server_name": the name etcd's certificate must hold; default each endpoint's host
}

// IsZero reports whether no TLS setting is made.
func (t EtcdTLS) IsZero() bool { return t == EtcdTLS{} }

// ClientConfig returns the tls.Config that dials etcd: the CA (or the
// system's roots), the client certificate and the server name. It reads
// the files each time it is called. (etcd's client, through gRPC, checks
// each endpoint's host instead of ServerName: replica's dial sees to it.)
func (t EtcdTLS) ClientConfig() (*tls.Config, error) {
	c, field, err := t.clientConfig()
	if err != nil {
		return nil, fmt.Errorf("etcd.tls.%s: %w", field, err)
	}
	return c, nil
}

// clientConfig is ClientConfig; its error comes with the field it is about.
func (t EtcdTLS) clientConfig() (*tls.Config, string, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, "ca_file", err
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, "ca_file", fmt.Errorf("no PEM certificate in %s", t.CAFile)
		}
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, "cert_file", fmt.Errorf("with key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, "", nil
}

type rawEncryption struct {
	KeyFiles        []string `yaml:"key_files"`
	AcceptPlaintext bool     `yaml:"accept_plaintext"`
}

type rawEtcdTLS struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// security fills in c.Encryption and c.Etcd.TLS, reading the key files and
// checking that the TLS files load.
func (b *builder) security(r *rawConfig, c *Config) {
	c.Encryption.AcceptPlaintext = r.Encryption.AcceptPlaintext
	for i, f := range r.Encryption.KeyFiles {
		field := fmt.Sprintf("encryption.key_files[%d]", i)
		if f == "" {
			b.fail(field, errors.New("empty path"))
			continue
		}
		path := b.path(f)
		c.Encryption.KeyFiles = append(c.Encryption.KeyFiles, path)
		k, err := seal.ReadKeyFile(path)
		if err != nil {
			b.fail(field, err) // names the path, never the content
			continue
		}
		c.Encryption.Keys = append(c.Encryption.Keys, k)
	}
	t := r.Etcd.TLS
	c.Etcd.TLS = EtcdTLS{CAFile: b.path(t.CAFile), CertFile: b.path(t.CertFile), KeyFile: b.path(t.KeyFile), ServerName: t.ServerName}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return // Validate names the missing one
	}
	if _, field, err := c.Etcd.TLS.clientConfig(); err != nil {
		b.fail("etcd.tls."+field, err)
	}
}

// security checks the encryption keys and the etcd transport: TLS needs
// https endpoints, and a password never crosses the network in the clear.
func (p *problems) security(c *Config) {
	e := c.Encryption
	for i, k := range e.Keys {
		field := fmt.Sprintf("encryption.key_files[%d]", i)
		if k.IsZero() {
			p.addf(field, "no key")
			continue
		}
		for j, o := range e.Keys[:i] {
			if o.ID() == k.ID() {
				p.addf(field, "the same key as encryption.key_files[%d] (id %s)", j, k.ID())
				break
			}
		}
	}
	if e.AcceptPlaintext && len(e.Keys) == 0 {
		p.addf("encryption.accept_plaintext", "set without encryption.key_files")
	}
	t := c.Etcd.TLS
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		p.addf("etcd.tls.key_file", "missing (etcd.tls.cert_file is set)")
	case t.CertFile == "" && t.KeyFile != "":
		p.addf("etcd.tls.cert_file", "missing (etcd.tls.key_file is set)")
	}
	if !t.IsZero() && len(c.Etcd.Endpoints) == 0 {
		p.addf("etcd.tls", "set, but etcd.endpoints is empty (the embedded etcd is reached over a private unix socket, without TLS)")
	}
	for i, ep := range c.Etcd.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || u.Scheme != "http" {
			continue
		}
		field := fmt.Sprintf("etcd.endpoints[%d]", i)
		switch {
		case !t.IsZero():
			p.addf(field, "%s is http://, but etcd.tls is set (want https://)", ep)
		case c.Etcd.Username != "" && !loopback(u.Hostname()):
			p.addf(field, "%s would carry etcd.password in the clear (want https:// with etcd.tls, or a loopback host)", ep)
		}
	}
}

// loopback reports whether host names this machine only.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
