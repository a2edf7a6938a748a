package replica

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/seal"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// Files of the embedded etcd inside the data directory.
const (
	embeddedSocket  = "etcd.sock" // its clients' unix socket
	embeddedPeerDir = "etcd-peer" // its peer port's certificate and key
	// maxSocketPath is the longest unix socket path every platform takes.
	maxSocketPath = 103
)

// embedded is a single-node etcd inside this process, for a replica that
// runs alone. Only this user reaches it: clients connect over a unix socket
// in the data directory, which is made 0700; the peer port (loopback, and a
// single node has no peers) takes only TLS clients whose certificate is
// signed by the member's own key, which lives in that directory too.
type embedded struct {
	e   *embed.Etcd
	url string
}

// startEmbedded starts a single-node etcd with its data in dir, making dir
// private (0700) first; it logs when it had to tighten dir's mode.
func startEmbedded(dir string, timeout time.Duration, log *slog.Logger) (*embedded, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	if err := privateDir(dir, log); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, embeddedSocket)
	if len(sock) > maxSocketPath {
		return nil, fmt.Errorf("data_dir %s is too long: the embedded etcd's socket %s must be at most %d bytes", dir, sock, maxSocketPath)
	}
	peerCrt, peerKey, err := peerCert(filepath.Join(dir, embeddedPeerDir))
	if err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = "wxtoken"
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.LogLevel = "error"
	// The member's own logs stay quiet: its shutdown errors are not ours.
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.AutoCompactionMode = embed.CompactorModeRevision
	cfg.AutoCompactionRetention = "10000"
	client := url.URL{Scheme: "unix", Path: sock}
	peer, err := freeURL()
	if err != nil {
		return nil, err
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
	cfg.PeerTLSInfo.CertFile, cfg.PeerTLSInfo.KeyFile = peerCrt, peerKey
	cfg.PeerTLSInfo.TrustedCAFile, cfg.PeerTLSInfo.ClientCertAuth = peerCrt, true
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", cfg.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(timeout):
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s not ready within %v", cfg.Dir, timeout)
	}
	// The directory already keeps others out; the socket's own mode too.
	if err := os.Chmod(sock, 0o600); err != nil {
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	return &embedded{e: e, url: client.String()}, nil
}

func (m *embedded) Close() { m.e.Close() }

// privateDir creates dir with mode 0700, or makes an existing one 0700.
func privateDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data_dir: %s is not a directory", dir)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("data_dir: %w", err)
		}
		log.Warn("data_dir was open to others: made it 0700", "data_dir", dir, "was", fi.Mode().Perm())
	}
	return nil
}

// peerCert writes a fresh self-signed certificate and key for the peer
// port into dir (0700, files 0600) and returns their paths. The peer port
// trusts that certificate alone, so only a holder of the key gets in.
func peerCert(dir string) (crt, key string, err error) {
	fail := func(err error) (string, string, error) {
		return "", "", fmt.Errorf("embedded etcd peer certificate: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fail(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return fail(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "wxtoken embedded etcd"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return fail(err)
	}
	kder, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		return fail(err)
	}
	crt, key = filepath.Join(dir, "peer.crt"), filepath.Join(dir, "peer.key")
	for path, block := range map[string]*pem.Block{
		crt: {Type: "CERTIFICATE", Bytes: der},
		key: {Type: "EC PRIVATE KEY", Bytes: kder},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			return fail(err)
		}
	}
	return crt, key, nil
}

// freeURL picks a loopback port that is free right now.
func freeURL() (*url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("pick a port for embedded etcd: %w", err)
	}
	defer l.Close()
	return &url.URL{Scheme: "https", Host: l.Addr().String()}, nil
}

// sealing returns how records are kept in etcd per e, and warns about key
// files that others may read.
func sealing(e config.Encryption, log *slog.Logger) (tokenstore.Sealing, error) {
	for _, f := range e.KeyFiles {
		if mode, loose := seal.LooseMode(f); loose {
			log.Warn("encryption key file readable by group or others: make it 0600 or 0400", "file", f, "mode", mode)
		}
	}
	if !e.On() {
		return tokenstore.Sealing{}, nil
	}
	ring, err := seal.NewRing(e.Keys...)
	if err != nil {
		return tokenstore.Sealing{}, fmt.Errorf("encryption: %w", err)
	}
	log.Info("records are sealed in etcd", "sealing_key", ring.SealingKeyID(), "keys", len(e.Keys))
	if e.AcceptPlaintext {
		log.Warn("encryption.accept_plaintext is on: records stored in the clear are still read, so whoever can write to etcd can forge one; turn it off once every record is rewritten")
	}
	return tokenstore.Sealing{Sealer: ring, AcceptPlaintext: e.AcceptPlaintext}, nil
}
