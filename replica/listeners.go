package replica

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/net/netutil"

	"github.com/wxtoken/wxtoken/access"
	"github.com/wxtoken/wxtoken/api"
	"github.com/wxtoken/wxtoken/config"
)

// Bounds of every API server beside those of config.HTTP.
const (
	readHeaderTimeout = 5 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	// DefaultTLSReloadEvery is how often the TLS files are checked for a
	// change.
	DefaultTLSReloadEvery = 10 * time.Second
)

// listeners are the replica's open listeners: the API on TCP (with TLS if
// configured) and on a unix socket, and the metrics-only one. New opens
// them, so that a port in use stops the start; Run serves them.
type listeners struct {
	tcp     net.Listener // "listen"; TLS is wrapped around it in serve
	unix    *unixSocket  // "listen_unix", or nil
	metrics net.Listener // "metrics_listen", or nil
	certs   *certs       // nil without TLS
}

// served is a listener with its server.
type served struct {
	name string
	ln   net.Listener
	srv  *http.Server
}

// openListeners opens every configured listener, each capped at MaxConns
// connections. Its errors are one line naming the field.
func openListeners(cfg *config.Config, log *slog.Logger) (*listeners, error) {
	l := &listeners{}
	ok := false
	defer func() {
		if !ok {
			l.close()
		}
	}()
	maxConns := cfg.HTTP.MaxConns
	if maxConns <= 0 {
		maxConns = config.DefaultMaxConns
	}
	if cfg.TLS.Enabled() {
		c, err := loadCerts(cfg.TLS, log)
		if err != nil {
			return nil, err
		}
		l.certs = c
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	l.tcp = netutil.LimitListener(ln, maxConns)
	if cfg.ListenUnix != "" {
		mode := cfg.SocketMode
		if mode == 0 {
			mode = config.DefaultSocketMode
		}
		u, err := listenUnix(cfg.ListenUnix, mode, cfg.SocketGroup)
		if err != nil {
			return nil, err
		}
		l.unix = u
	}
	if cfg.MetricsListen != "" {
		ln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return nil, fmt.Errorf("metrics_listen on %s: %w", cfg.MetricsListen, err)
		}
		l.metrics = netutil.LimitListener(ln, maxConns)
	}
	ok = true
	return l, nil
}

// serve returns the servers of the listeners: h on the API listeners,
// metrics on the metrics one.
func (l *listeners) serve(cfg *config.Config, h, metrics http.Handler, log *slog.Logger) []served {
	readTimeout, writeTimeout := cfg.HTTP.ReadTimeout, cfg.HTTP.WriteTimeout
	if readTimeout <= 0 {
		readTimeout = config.DefaultReadTimeout
	}
	if writeTimeout <= 0 {
		writeTimeout = config.DefaultWriteTimeout
	}
	server := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler: h, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout, WriteTimeout: writeTimeout,
			IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug), // TLS handshake failures and the like
		}
	}
	tcp := l.tcp
	if l.certs != nil {
		tcp = tls.NewListener(tcp, l.certs.serverConfig())
	}
	out := []served{{name: "listen", ln: tcp, srv: server(h)}}
	if l.unix != nil {
		out = append(out, served{name: "listen_unix", ln: l.unix.ln, srv: server(h)})
	}
	if l.metrics != nil {
		out = append(out, served{name: "metrics_listen", ln: l.metrics, srv: server(metrics)})
	}
	return out
}

// MetricsAddr is the address metrics_listen listens on, or "".
func (r *Replica) MetricsAddr() string {
	if r.lns == nil || r.lns.metrics == nil {
		return ""
	}
	return r.lns.metrics.Addr().String()
}

// close closes every listener and removes the unix socket.
func (l *listeners) close() {
	if l.tcp != nil {
		l.tcp.Close()
	}
	if l.unix != nil {
		l.unix.close()
	}
	if l.metrics != nil {
		l.metrics.Close()
	}
}

// guard builds the access control in front of the API (and of the
// metrics-only handler): clients, anonymity, the names the replica
// answers to, and the limiter of report-triggered refreshes, which the API
// asks through its ReportLimit.
func guard(cfg *config.Config, advertise string, stats *access.Stats, log *slog.Logger) (func(http.Handler) (http.Handler, error), *access.Limiter, error) {
	var clients []access.Client
	for _, c := range cfg.Clients {
		var allow access.Action
		for _, name := range c.Allow {
			a, ok := access.ParseAction(name)
			if !ok {
				return nil, nil, fmt.Errorf("config: clients: unknown action %q", name)
			}
			allow |= a
		}
		clients = append(clients, access.Client{Name: c.Name, TokenSHA256: c.TokenSHA256, CertCN: c.CertCN, Apps: c.Apps, Allow: allow})
	}
	hosts := append(access.HostNames(cfg.Listen, advertise, cfg.MetricsListen), cfg.AllowedHosts...)
	acfg := access.Config{Clients: clients, Anonymous: cfg.Anonymous(), Hosts: hosts, Stats: stats, Logger: log}
	limiter := access.NewLimiter(access.LimiterConfig{
		PerCaller: orInt(cfg.ReportLimit.PerClient, config.DefaultReportsClient), PerCredential: orInt(cfg.ReportLimit.PerCredential, config.DefaultReportsCred),
		Stats: stats,
	})
	wrap := func(h http.Handler) (http.Handler, error) { return access.New(h, acfg) }
	return wrap, limiter, nil
}

// metricsOnly serves GET /metrics from the API and nothing else.
func metricsOnly(a *api.API) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, &api.Error{Status: http.StatusNotFound, Code: "not_found", Message: "this listener serves GET /metrics only"})
	})
	return mux
}

// warnAccess logs what the configuration lets through that an operator
// should know of: warnings from the config, anonymous access from other
// hosts, bearer tokens over plain HTTP on the network.
func warnAccess(cfg *config.Config, log *slog.Logger) {
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	exposed := cfg.Exposed()
	if cfg.AllowAnonymous && len(exposed) > 0 {
		log.Warn("allow_anonymous: anyone who reaches this replica reads every token", "listeners", exposed)
	}
	if !cfg.TLS.Enabled() && !config.Loopback(cfg.Listen) && len(cfg.Clients) > 0 {
		log.Warn("listen has no tls: bearer tokens and access tokens cross the network in the clear", "listen", cfg.Listen)
	}
}

// reloadTLS re-reads the TLS files every interval when they change, and
// on each value from hup; it returns when ctx ends.
func (l *listeners) reloadTLS(ctx context.Context, every time.Duration, hup <-chan os.Signal) {
	if l.certs == nil {
		return
	}
	if every <= 0 {
		every = DefaultTLSReloadEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.certs.reloadIfChanged()
		case <-hup:
			l.certs.reload("SIGHUP")
		}
	}
}

func orInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}
