package replica

import (
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// wechatClient is the WeChat fetcher's HTTP client: the fetcher's defaults
// (HTTPS_PROXY honoured, redirects refused, and no Timeout of its own: every
// call of the replica's is bounded by its context, the fetch's deadline),
// with every call timed in calls. It keeps up to idle connections per
// host (refresh.concurrency): net/http's default of 2 made a leader with 8
// calls in flight open a new connection, a TLS handshake against WeChat,
// for about every other call.
func wechatClient(calls *prometheus.HistogramVec, idle int) *http.Client {
	var rt http.RoundTripper = http.DefaultTransport
	if t, ok := rt.(*http.Transport); ok {
		c := t.Clone()
		c.MaxIdleConnsPerHost = max(idle, http.DefaultMaxIdleConnsPerHost)
		rt = c
	}
	return &http.Client{
		Transport: &timedTransport{next: rt, calls: calls},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// timedTransport observes the duration of each call, up to the response
// headers, by the kind of WeChat call and its outcome: "ok" (HTTP 200:
// WeChat's errcode is in the body, which it leaves to the fetcher),
// "http_5xx", "http_other", "ambiguous" (failed once a connection was
// had: the request may have reached WeChat) or "unsent" (failed before).
// It is safe for concurrent use.
type timedTransport struct {
	next  http.RoundTripper
	calls *prometheus.HistogramVec
}

// RoundTrip implements http.RoundTripper.
func (t *timedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var conn atomic.Bool
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { conn.Store(true) }}
	start := time.Now()
	resp, err := t.next.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	outcome := "ok"
	switch {
	case err != nil && conn.Load():
		outcome = "ambiguous"
	case err != nil:
		outcome = "unsent"
	case resp.StatusCode >= 500:
		outcome = "http_5xx"
	case resp.StatusCode != http.StatusOK:
		outcome = "http_other"
	}
	t.calls.WithLabelValues(callKind(req.URL.Path), outcome).Observe(time.Since(start).Seconds())
	return resp, err
}

// callKind names a WeChat call by its path, which may follow a base path.
func callKind(path string) string {
	for _, k := range [...]struct{ suffix, kind string }{
		{"/cgi-bin/token", "classic"},
		{"/cgi-bin/stable_token", "stable"},
		{"/cgi-bin/gettoken", "wecom"},
		{"/cgi-bin/ticket/getticket", "ticket"},
		{"/cgi-bin/getcallbackip", "callbackip"},
	} {
		if strings.HasSuffix(path, k.suffix) {
			return k.kind
		}
	}
	return "other"
}
