package replica

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// lagBuckets (seconds) span a watch event inside one data centre to a
// replica catching up after a partition.
var lagBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// metrics is a replica's one registry, served at GET /metrics, and the
// collectors the replica owns itself: every other package's collectors are
// registered with it too.
type metrics struct {
	reg   *prometheus.Registry
	lag   prometheus.Histogram
	calls *prometheus.HistogramVec // WeChat calls by kind and outcome
}

func newMetrics() (*metrics, error) {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wxtoken_propagation_lag_seconds",
			Help:    "From a record's publication (leader clock) to its arrival in this replica's cache.",
			Buckets: lagBuckets,
		}),
		calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wxtoken_wechat_call_duration_seconds",
			Help:    "WeChat HTTP calls (to the response headers) by kind and outcome.",
			Buckets: prometheus.DefBuckets,
		}, []string{"kind", "outcome"}),
	}
	if err := m.register(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.lag, m.calls,
	); err != nil {
		return nil, err
	}
	return m, nil
}

// register adds cs to the registry.
func (m *metrics) register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}

// applied observes the propagation lag of r, applied to the cache at at.
// Records published before PublishedAt existed are not observed; a leader
// clock ahead of ours counts as no lag.
func (m *metrics) applied(r tokenstore.Record, at time.Time) {
	if r.PublishedAt.IsZero() {
		return
	}
	m.lag.Observe(max(at.Sub(r.PublishedAt).Seconds(), 0))
}
