package deploy_test

import (
	"reflect"
	"sort"
	"strings"
	"testing"
)

// promqlKeywords are PromQL words that look like metric names, with the
// aggregations (which may be followed by "by (...)" rather than "(").
var promqlKeywords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
	"and": true, "or": true, "unless": true, "atan2": true, "bool": true, "offset": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"inf": true, "nan": true,
}

// promqlGrouping are the keywords followed by a parenthesised label list.
var promqlGrouping = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// promqlNames returns the metric names a PromQL expression selects, sorted
// and without repeats. It skips what is not a metric name: function and
// aggregation names (followed by "("), keywords, label lists of by/on/...,
// label matchers in {...}, ranges in [...], strings, numbers and durations,
// and Grafana variables ($job, ${datasource}, $__rate_interval). It is a
// scanner, not a parser: promtool checks the syntax (see TestDashboard).
func promqlNames(expr string) []string {
	set := map[string]bool{}
	isStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isPart := func(c byte) bool { return isStart(c) || c >= '0' && c <= '9' }
	skipTo := func(i int, close byte) int { // index after the matching close, strings respected
		for i < len(expr) && expr[i] != close {
			if q := expr[i]; q == '"' || q == '\'' || q == '`' {
				i++
				for i < len(expr) && expr[i] != q {
					if expr[i] == '\\' && q != '`' {
						i++
					}
					i++
				}
			}
			i++
		}
		return i + 1
	}
	nextNonSpace := func(i int) byte {
		for i < len(expr) && (expr[i] == ' ' || expr[i] == '\t' || expr[i] == '\n' || expr[i] == '\r') {
			i++
		}
		if i < len(expr) {
			return expr[i]
		}
		return 0
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipTo(i+1, c)
		case c == '{':
			i = skipTo(i+1, '}')
		case c == '[':
			i = skipTo(i+1, ']')
		case c == '$':
			i++
			if i < len(expr) && expr[i] == '{' {
				i = skipTo(i+1, '}')
				continue
			}
			for i < len(expr) && isPart(expr[i]) {
				i++
			}
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isPart(expr[i]) || expr[i] == '.') {
				i++
			}
		case isStart(c):
			j := i
			for j < len(expr) && isPart(expr[j]) {
				j++
			}
			word := expr[i:j]
			i = j
			switch {
			case promqlGrouping[strings.ToLower(word)] && nextNonSpace(i) == '(':
				i = skipTo(strings.IndexByte(expr[i:], '(')+i+1, ')')
			case promqlKeywords[strings.ToLower(word)]:
			case nextNonSpace(i) == '(':
				// a function or an aggregation
			default:
				set[word] = true
			}
		default:
			i++
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func TestPromQLNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`absent(wxtoken_leader == 1)`, []string{"wxtoken_leader"}},
		{`sum by (job, cred) (rate(wxtoken_fetches_total{result!="ok", cred=~"a(b)"}[5m] offset 1h))`, []string{"wxtoken_fetches_total"}},
		{`histogram_quantile(0.99, sum by (le, route) (rate(wxtoken_http_request_duration_seconds_bucket{job=~"$job"}[$__rate_interval])))`,
			[]string{"wxtoken_http_request_duration_seconds_bucket"}},
		{`a / on (instance) group_left (cred) b > bool 1e3 and c unless d or atan2 e`, []string{"a", "b", "c", "d", "e"}},
		{`x{l="}"} + y[1m:30s] * ${var} - 'z'`, []string{"x", "y"}},
		{`wxtoken:fetches:increase30m{result!="ok"}`, []string{"wxtoken:fetches:increase30m"}},
		{`time() - process_start_time_seconds < 900 or up offset 15m`, []string{"process_start_time_seconds", "up"}},
	} {
		if got := promqlNames(tc.expr); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("promqlNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}
