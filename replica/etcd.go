package replica

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// embedded is a single-node etcd inside this process, for a replica that
// runs alone.
type embedded struct {
	e   *embed.Etcd
	url string
}

// startEmbedded starts a single-node etcd with its data in dir, listening
// on loopback ports chosen by the kernel.
func startEmbedded(dir string, timeout time.Duration) (*embedded, error) {
	cfg := embed.NewConfig()
	cfg.Name = "wxtoken"
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.LogLevel = "error"
	// The member's own logs stay quiet: its shutdown errors are not ours.
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.AutoCompactionMode = embed.CompactorModeRevision
	cfg.AutoCompactionRetention = "10000"
	client, err := freeURL()
	if err != nil {
		return nil, err
	}
	peer, err := freeURL()
	if err != nil {
		return nil, err
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
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
	return &embedded{e: e, url: client.String()}, nil
}

func (m *embedded) Close() { m.e.Close() }

// freeURL picks a loopback port that is free right now.
func freeURL() (*url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("pick a port for embedded etcd: %w", err)
	}
	defer l.Close()
	return &url.URL{Scheme: "http", Host: l.Addr().String()}, nil
}

// ErrEtcdUnreachable is returned when etcd does not answer at start.
var ErrEtcdUnreachable = errors.New("etcd unreachable")

// dial connects to etcd and checks, within timeout, that it answers.
func dial(endpoints []string, user, password string, timeout time.Duration) (*clientv3.Client, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		Username:    user,
		Password:    password,
		DialTimeout: timeout,
		Logger:      nopZap(),
	})
	if err != nil {
		return nil, fmt.Errorf("%w at %v: %v", ErrEtcdUnreachable, endpoints, redactErr(err, password))
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := c.Get(ctx, "/wxtoken-ping", clientv3.WithCountOnly()); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w at %v within %v: %v", ErrEtcdUnreachable, endpoints, timeout, redactErr(err, password))
	}
	return c, nil
}

func nopZap() *zap.Logger { return zap.NewNop() }

// redactErr renders err without the etcd password.
func redactErr(err error, password string) string {
	s := err.Error()
	if password != "" {
		s = strings.ReplaceAll(s, password, "[redacted]")
	}
	return s
}
