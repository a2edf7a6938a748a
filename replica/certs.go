package replica

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxtoken/wxtoken/config"
)

// certs holds the API's TLS configuration, rebuilt from the files when
// they change. Every handshake takes the newest; a reload that fails
// (files half replaced) keeps the previous one and is tried again at the
// next check. Safe for concurrent use.
type certs struct {
	files config.TLS
	log   *slog.Logger
	cur   atomic.Pointer[tls.Config]

	mu     sync.Mutex // serializes reloads
	stamps []stamp    // of the files the current config was read from
}

// stamp is what tells that a file changed.
type stamp struct {
	mod  time.Time
	size int64
}

// loadCerts reads the TLS files; its errors name the field.
func loadCerts(files config.TLS, log *slog.Logger) (*certs, error) {
	c := &certs{files: files, log: log.With("component", "tls")}
	cfg, stamps, err := c.read()
	if err != nil {
		return nil, err
	}
	c.cur.Store(cfg)
	c.stamps = stamps
	return c, nil
}

// serverConfig is the listener's TLS config: every handshake gets the
// newest config read.
func (c *certs) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return c.cur.Load(), nil
		},
	}
}

// paths are the files, in the order of stamps.
func (c *certs) paths() []string {
	p := []string{c.files.CertFile, c.files.KeyFile}
	if c.files.ClientCAFile != "" {
		p = append(p, c.files.ClientCAFile)
	}
	return p
}

func (c *certs) stat() []stamp {
	var out []stamp
	for _, p := range c.paths() {
		var s stamp
		if fi, err := os.Stat(p); err == nil {
			s = stamp{fi.ModTime(), fi.Size()}
		}
		out = append(out, s)
	}
	return out
}

// read builds a config from the files, with the stamps taken before
// reading them (a change while reading is seen at the next check).
func (c *certs) read() (*tls.Config, []stamp, error) {
	stamps := c.stat()
	pair, err := tls.LoadX509KeyPair(c.files.CertFile, c.files.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("tls.cert_file, tls.key_file: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}, Certificates: []tls.Certificate{pair}}
	if c.files.ClientCAFile != "" {
		pem, err := os.ReadFile(c.files.ClientCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, errors.New("tls.client_ca_file: " + c.files.ClientCAFile + " holds no PEM certificate")
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, stamps, nil
}

// reloadIfChanged reloads when a file's modification time or size changed.
func (c *certs) reloadIfChanged() {
	c.mu.Lock()
	changed := false
	for i, s := range c.stat() {
		changed = changed || i >= len(c.stamps) || !s.mod.Equal(c.stamps[i].mod) || s.size != c.stamps[i].size
	}
	c.mu.Unlock()
	if changed {
		c.reload("files changed")
	}
}

// reload reads the files and, if they make a config, serves it.
func (c *certs) reload(why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg, stamps, err := c.read()
	if err != nil {
		c.log.Error("reload TLS files: keeping the previous certificate", "why", why, "err", err)
		return
	}
	c.cur.Store(cfg)
	c.stamps = stamps
	c.log.Info("reloaded TLS files", "why", why)
}
