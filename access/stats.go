package access

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// refusalCodes are the codes Stats counts.
var refusalCodes = []string{"unauthorized", "forbidden", "bad_host", "cross_origin", "unsupported_media_type", "rate_limited"}

var refusedDesc = prometheus.NewDesc("wxtoken_http_refused_total",
	"API requests refused by access control, by error code.", []string{"code"}, nil)

// Stats counts requests refused by Guards and a Limiter. The zero value is
// ready; a nil *Stats counts nothing. It is a prometheus.Collector of
// wxtoken_http_refused_total{code}. Safe for concurrent use.
type Stats struct {
	counts [6]atomic.Int64 // by index in refusalCodes
}

var _ prometheus.Collector = (*Stats)(nil)

func (s *Stats) refused(code string) {
	if s == nil {
		return
	}
	for i, c := range refusalCodes {
		if c == code {
			s.counts[i].Add(1)
			return
		}
	}
}

// Describe implements prometheus.Collector.
func (s *Stats) Describe(ch chan<- *prometheus.Desc) { ch <- refusedDesc }

// Collect implements prometheus.Collector: one counter per code, zeros
// included, so that increase() sees the first refusal.
func (s *Stats) Collect(ch chan<- prometheus.Metric) {
	for i, c := range refusalCodes {
		ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(s.counts[i].Load()), c)
	}
}
