package api

import (
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// route is the value of the route label of the request histogram.
type route uint8

const (
	routeOther route = iota
	routeToken
	routeInvalidate
	routeTicket
	routeJSSDK
	routeProxy
	routeStatus
	routeMetrics
	routeHealthz
	routeReadyz
	routeUI
	routePlatformEvents
	routePlatform
	numRoutes
)

var routeNames = [numRoutes]string{"other", "token", "invalidate", "ticket", "jssdk", "proxy", "status", "metrics", "healthz", "readyz", "ui", "platform_events", "platform"}

// routeNamed returns the route called name, or routeOther.
func routeNamed(name string) route {
	for i, n := range routeNames {
		if n == name {
			return route(i)
		}
	}
	return routeOther
}

// statusClasses are the values of the status_class label; index
// status/100-2, clamped.
var statusClasses = [...]string{"2xx", "3xx", "4xx", "5xx"}

func statusClass(code int) int {
	return min(max(code/100-2, 0), len(statusClasses)-1)
}

// requestBuckets (seconds) span a token read from memory (~0.1 ms) to an
// invalidation waiting for the new token (up to InvalidateWait).
var requestBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// metrics are the API's collectors.
type metrics struct {
	reads, misses, reports prometheus.Counter
	requests               *prometheus.HistogramVec
	// observers holds the requests' children by route and status class,
	// made on first use so that only seen series are exposed, and then
	// reused: an observation allocates nothing.
	observers [numRoutes][len(statusClasses)]atomic.Pointer[prometheus.Observer]
}

// newMetrics registers the API's collectors with reg.
func (a *API) newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		reads:   prometheus.NewCounter(prometheus.CounterOpts{Name: "wxtoken_token_reads_total", Help: "Credentials handed out."}),
		misses:  prometheus.NewCounter(prometheus.CounterOpts{Name: "wxtoken_token_misses_total", Help: "Reads answered 503 for want of a usable credential."}),
		reports: prometheus.NewCounter(prometheus.CounterOpts{Name: "wxtoken_invalidations_total", Help: "Reports of the current token as dead."}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wxtoken_http_request_duration_seconds", Help: "HTTP API requests by route and status class.",
			Buckets: requestBuckets,
		}, []string{"route", "status_class"}),
	}
	ready := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "wxtoken_ready", Help: "1 while the replica follows etcd."},
		func() float64 { return boolValue(a.cfg.Cache.Synced()) })
	for _, c := range []prometheus.Collector{m.reads, m.misses, m.reports, m.requests, ready, newCredCollector(a)} {
		if err := reg.Register(c); err != nil {
			return nil, errors.New("api: register metrics: " + err.Error())
		}
	}
	return m, nil
}

// observe records a request of rt answered with status, begun at start.
func (m *metrics) observe(rt route, status int, start time.Time) {
	slot := &m.observers[rt][statusClass(status)]
	o := slot.Load()
	if o == nil {
		obs := m.requests.WithLabelValues(routeNames[rt], statusClasses[statusClass(status)])
		o = &obs
		slot.Store(o)
	}
	(*o).Observe(time.Since(start).Seconds())
}

// handle registers h for pattern on the mux, labelled rt in the request
// histogram.
func (a *API) handle(pattern string, rt route, h http.HandlerFunc) {
	a.routes[pattern] = rt
	a.mux.Handle(pattern, h)
}

// serveMux serves r through the mux and records its duration under the
// route of the pattern it matched.
func (a *API) serveMux(w http.ResponseWriter, r *http.Request, start time.Time) {
	sw := &statusWriter{ResponseWriter: w}
	a.mux.ServeHTTP(sw, r)
	a.m.observe(a.routes[r.Pattern], sw.status(), start)
}

// metricsHandler serves g in the Prometheus exposition formats.
func metricsHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// statusWriter remembers the status of the answer it passes on.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 && code >= 200 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}

// credCollector exposes the cached credentials, computed at scrape time.
type credCollector struct {
	a                      *API
	seq, expiresIn, usable *prometheus.Desc
}

func newCredCollector(a *API) *credCollector {
	return &credCollector{
		a:         a,
		seq:       prometheus.NewDesc("wxtoken_credential_seq", "Newest record seq cached per credential.", []string{"cred"}, nil),
		expiresIn: prometheus.NewDesc("wxtoken_credential_expires_in_seconds", "Seconds until the cached credential expires.", []string{"cred"}, nil),
		usable:    prometheus.NewDesc("wxtoken_credential_usable", "1 if the replica would hand the credential out now, per configured credential.", []string{"cred"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *credCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.seq
	ch <- c.expiresIn
	ch <- c.usable
}

// Collect implements prometheus.Collector: seq and expiry of every cached
// record, and whether each configured credential is usable.
func (c *credCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.a.cfg.Now()
	for _, r := range c.a.cfg.Cache.Records() {
		ch <- prometheus.MustNewConstMetric(c.seq, prometheus.GaugeValue, float64(r.Seq), r.Cred)
		ch <- prometheus.MustNewConstMetric(c.expiresIn, prometheus.GaugeValue, r.ExpiresAt.Sub(now).Seconds(), r.Cred)
	}
	for _, app := range c.a.apps {
		for _, what := range append([]string{"token"}, app.Tickets...) {
			cred := tokenstore.CredName(app.Name, what)
			rec, ok := c.a.cfg.Cache.Get(cred)
			ch <- prometheus.MustNewConstMetric(c.usable, prometheus.GaugeValue, boolValue(c.a.servable(rec, ok, now)), cred)
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
