package access

import (
	"fmt"
	"io"
	"sync/atomic"
)

// refusalCodes are the codes Stats counts, in the order it prints them.
var refusalCodes = []string{"unauthorized", "forbidden", "bad_host", "cross_origin", "unsupported_media_type", "rate_limited"}

// Stats counts requests refused by Guards and a Limiter. The zero value is
// ready; a nil *Stats counts nothing. Safe for concurrent use.
type Stats struct {
	counts [6]atomic.Int64 // by index in refusalCodes
}

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

// WritePrometheus writes the counts in Prometheus text format, as
// wxtoken_http_refused_total{code="..."}.
func (s *Stats) WritePrometheus(w io.Writer) {
	fmt.Fprint(w, "# HELP wxtoken_http_refused_total API requests refused by access control, by error code.\n# TYPE wxtoken_http_refused_total counter\n")
	for i, c := range refusalCodes {
		fmt.Fprintf(w, "wxtoken_http_refused_total{code=%q} %d\n", c, s.counts[i].Load())
	}
}
