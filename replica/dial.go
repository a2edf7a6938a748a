package replica

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// Liveness of the connections to etcd. gRPC pings no more often than every
// 10 s, and etcd refuses pings more often than every 5 s
// (--grpc-keepalive-min-time); a replica always has a watch open, so the
// pings need no PermitWithoutStream.
const (
	keepaliveTime    = 10 * time.Second
	keepaliveTimeout = 5 * time.Second
	// reconnectMax bounds the wait between two attempts to reach an etcd
	// endpoint (gRPC's default grows to 120 s): a replica cut off for a
	// minute is back within seconds of the network's return, not after its
	// backoff's next turn. Attempts keep gRPC's jitter, so a fleet of
	// sidecars does not reconnect in step.
	reconnectMax = 3 * time.Second
)

// reconnect is how gRPC reconnects to an endpoint: backoff from 1 s up to
// reconnectMax, and a connection attempt that may take the dial timeout
// (gRPC's default is 20 s, which a dropped SYN would use up).
func reconnect(dialTimeout time.Duration) []grpc.DialOption {
	b := backoff.DefaultConfig
	b.MaxDelay = reconnectMax
	return []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{Backoff: b, MinConnectTimeout: dialTimeout})}
}

// ErrEtcdUnreachable is returned when etcd does not answer at start.
var ErrEtcdUnreachable = errors.New("etcd unreachable")

// dial connects to etcd at endpoints with e's credentials and TLS, and
// checks, within e.DialTimeout, that it answers a read under e.Prefix (the
// least a replica's etcd user may do).
func dial(endpoints []string, e config.Etcd) (*clientv3.Client, error) {
	password := e.Password.Reveal()
	var tc *tls.Config
	switch {
	case !e.TLS.IsZero():
		var err error
		if tc, err = e.TLS.ClientConfig(); err != nil {
			return nil, err
		}
	case slices.ContainsFunc(endpoints, func(ep string) bool { return strings.HasPrefix(ep, "https://") }):
		tc = &tls.Config{MinVersion: tls.VersionTLS12} // the system's roots
	}
	opts := reconnect(e.DialTimeout)
	if tc != nil && e.TLS.ServerName != "" {
		opts = append(opts, grpc.WithTransportCredentials(serverName{credentials.NewTLS(tc), e.TLS.ServerName}))
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		Username:    e.Username,
		Password:    password,
		TLS:         tc,
		DialOptions: opts,
		DialTimeout: e.DialTimeout,
		// A connection that a partition left half-open answers nothing and
		// errs nothing: without pings gRPC keeps sending on it until TCP
		// gives up, minutes later, long after the partition healed.
		DialKeepAliveTime:    keepaliveTime,
		DialKeepAliveTimeout: keepaliveTimeout,
		Logger:               nopZap(),
	})
	if err != nil {
		return nil, fmt.Errorf("%w at %v: %v", ErrEtcdUnreachable, endpoints, redactErr(err, password))
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.DialTimeout)
	defer cancel()
	creds := tokenstore.Keys{Prefix: e.Prefix}.Creds()
	if _, err := c.Get(ctx, creds, clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		c.Close()
		if errors.Is(err, rpctypes.ErrPermissionDenied) {
			who := fmt.Sprintf("user %q", e.Username)
			if e.Username == "" {
				who = "a client without etcd.username (or the user its certificate names)"
			}
			return nil, fmt.Errorf("etcd at %v: %s may not read %s (see deploy/etcd-roles.sh): %v", endpoints, who, creds, err)
		}
		return nil, fmt.Errorf("%w at %v within %v: %v", ErrEtcdUnreachable, endpoints, e.DialTimeout, redactErr(err, password))
	}
	return c, nil
}

// serverName is TLS transport credentials that check every endpoint's
// certificate against one name (etcd.tls.server_name): gRPC would check it
// against each endpoint's host, whatever tls.Config.ServerName says.
type serverName struct {
	credentials.TransportCredentials
	name string
}

func (s serverName) ClientHandshake(ctx context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return s.TransportCredentials.ClientHandshake(ctx, s.name, conn)
}

func (s serverName) Clone() credentials.TransportCredentials {
	return serverName{s.TransportCredentials.Clone(), s.name}
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
