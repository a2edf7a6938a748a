package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxtoken/wxtoken/fetcher/wechattest"
)

// exchangeStats is what the simulator's ledger says of the authorization
// codes' exchanges (api_query_auth).
type exchangeStats struct {
	ok, failed  int
	twice       int       // codes exchanged successfully more than once
	first, last time.Time // first call's start, last success's answer
}

func exchangesOf(ledger []wechattest.Fetch) exchangeStats {
	var s exchangeStats
	per := map[string]int{}
	for _, f := range ledger {
		if f.Kind != wechattest.KindQueryAuth {
			continue
		}
		if s.first.IsZero() || f.Start.Before(s.first) {
			s.first = f.Start
		}
		if f.Errcode != 0 {
			s.failed++
			continue
		}
		s.ok++
		if per[f.Code]++; per[f.Code] == 2 {
			s.twice++
		}
		if f.At.After(s.last) {
			s.last = f.At
		}
	}
	return s
}

// rate is successful exchanges per second from the first call's start to
// the last answer.
func (s exchangeStats) rate() float64 {
	if d := s.last.Sub(s.first).Seconds(); d > 0 {
		return float64(s.ok) / d
	}
	return 0
}

// refreshStats is what the ledger says of a refresh cycle: each
// authorizer's first successful api_authorizer_token call that started
// in a window.
type refreshStats struct {
	ok     int // authorizers refreshed
	failed int // failed calls
	again  int // calls after an authorizer's first refresh in the window
	first  time.Time
	// perSecond counts first refreshes started in each second from the
	// first.
	perSecond []int
}

func refreshesOf(ledger []wechattest.Fetch, from, to time.Time) refreshStats {
	var s refreshStats
	var starts []time.Time
	seen := map[string]bool{}
	for _, f := range ledger {
		switch {
		case f.Kind != wechattest.KindAuthorizer || f.Start.Before(from) || !f.Start.Before(to):
		case f.Errcode != 0:
			s.failed++
		case seen[f.AppID]:
			s.again++
		default:
			seen[f.AppID] = true
			s.ok++
			starts = append(starts, f.Start)
		}
	}
	if len(starts) == 0 {
		return s
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	s.first = starts[0]
	s.perSecond = make([]int, int(starts[len(starts)-1].Sub(starts[0])/time.Second)+1)
	for _, t := range starts {
		s.perSecond[int(t.Sub(starts[0])/time.Second)]++
	}
	return s
}

// busiest is the most calls started in one second; median is the median
// over the seconds with at least one call.
func (s refreshStats) busiest() (peak, median int) {
	var busy []int
	for _, c := range s.perSecond {
		peak = max(peak, c)
		if c > 0 {
			busy = append(busy, c)
		}
	}
	if len(busy) == 0 {
		return 0, 0
	}
	slices.Sort(busy)
	return peak, busy[len(busy)/2]
}

// histogram renders how many seconds had how many calls, in buckets of
// width calls, empty buckets left out: "0-9: 3 s, 20-29: 1 s, ...".
func (s refreshStats) histogram(width int) string {
	peak, _ := s.busiest()
	buckets := make([]int, peak/width+1)
	for _, c := range s.perSecond {
		buckets[c/width]++
	}
	parts := make([]string, 0, len(buckets))
	for i, n := range buckets {
		if n == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%d-%d: %d s", i*width, (i+1)*width-1, n))
	}
	return strings.Join(parts, ", ")
}

// callsOf counts the ledger's calls of kind, and those that failed.
func callsOf(ledger []wechattest.Fetch, kind string) (n, failed int) {
	for _, f := range ledger {
		if f.Kind == kind {
			n++
			if f.Errcode != 0 {
				failed++
			}
		}
	}
	return n, failed
}

// unaryByMethod counts the unary requests the etcd members (embedded in
// this process) handled, by gRPC method (Range, Txn, Put, ...).
func unaryByMethod() (map[string]float64, error) {
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "grpc_server_handled_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var unary bool
			var method string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "grpc_type":
					unary = l.GetValue() == "unary"
				case "grpc_method":
					method = l.GetValue()
				}
			}
			if unary {
				out[method] += m.GetCounter().GetValue()
			}
		}
	}
	return out, nil
}

// perMethod renders the requests between two counts, per unit of work:
// "Range 4.0, Txn 5.0".
func perMethod(before, after map[string]float64, per int) (total float64, text string) {
	type m struct {
		name string
		n    float64
	}
	var ms []m
	for name, v := range after {
		if d := v - before[name]; d > 0 {
			ms = append(ms, m{name, d / float64(max(per, 1))})
			total += d / float64(max(per, 1))
		}
	}
	slices.SortFunc(ms, func(a, b m) int { return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.name, b.name)) })
	parts := make([]string, 0, len(ms))
	for _, x := range ms {
		parts = append(parts, fmt.Sprintf("%s %.1f", x.name, x.n))
	}
	return total, strings.Join(parts, ", ")
}
