package replica_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/internal/replicatest"
)

// exported are the metrics of METRICS.md that a replica exports in this
// round, with their types, and whether a leader that fetched shows them
// (false: only once an event happens).
var exported = []struct {
	name   string
	typ    dto.MetricType
	always bool
}{
	{"wxtoken_ready", dto.MetricType_GAUGE, true},
	{"wxtoken_leader", dto.MetricType_GAUGE, true},
	{"wxtoken_token_reads_total", dto.MetricType_COUNTER, true},
	{"wxtoken_token_misses_total", dto.MetricType_COUNTER, true},
	{"wxtoken_invalidations_total", dto.MetricType_COUNTER, true},
	{"wxtoken_credential_seq", dto.MetricType_GAUGE, true},
	{"wxtoken_credential_expires_in_seconds", dto.MetricType_GAUGE, true},
	{"wxtoken_credential_usable", dto.MetricType_GAUGE, true},
	{"wxtoken_http_request_duration_seconds", dto.MetricType_HISTOGRAM, true},
	{"wxtoken_propagation_lag_seconds", dto.MetricType_HISTOGRAM, true},
	{"wxtoken_clock_behind_leader_seconds", dto.MetricType_GAUGE, true},
	{"wxtoken_fetches_total", dto.MetricType_COUNTER, true},
	{"wxtoken_wechat_call_duration_seconds", dto.MetricType_HISTOGRAM, true},
	{"wxtoken_budget_fetches_today", dto.MetricType_GAUGE, true},
	{"wxtoken_budget_limit", dto.MetricType_GAUGE, true},
	{"wxtoken_budget_refusals_total", dto.MetricType_COUNTER, true},
	{"wxtoken_credential_blocked", dto.MetricType_GAUGE, true}, // the app "bad" is blocked
	{"wxtoken_credential_refused", dto.MetricType_GAUGE, false},
	{"wxtoken_refusals_total", dto.MetricType_COUNTER, false},
	{"wxtoken_dangling_intents_total", dto.MetricType_COUNTER, true},
	{"wxtoken_ambiguous_calls_total", dto.MetricType_COUNTER, true},
	{"wxtoken_reports_rejected_total", dto.MetricType_COUNTER, true},
	{"wxtoken_foreign_fetches_total", dto.MetricType_COUNTER, true},
	{"go_goroutines", dto.MetricType_GAUGE, true},
	{"process_resident_memory_bytes", dto.MetricType_GAUGE, true},
}

// TestMetricsScrape scrapes GET /metrics of a real replica (embedded etcd,
// leading, fetching from the WeChat simulator) and checks the Go and
// process collectors, the three histograms and every wxtoken metric: its
// type and the values this run must show. No secret or token is in it.
func TestMetricsScrape(t *testing.T) {
	const badSecret = "bad-secret-0000000001"
	env := replicatest.Start(t, replicatest.Options{Edit: func(c *config.Config) {
		// An app WeChat does not know: its fetch fails for good.
		c.Apps = append(c.Apps, config.App{Name: "bad", Kind: config.KindClassic, AppID: "wxunknown0000001",
			Secret: config.NewSecret(badSecret), DailyBudget: 10})
	}})
	waitFor(t, 20*time.Second, "bad/token blocked, the replica ready", func() bool {
		return env.Replica.Refresher().Metrics().Blocked("bad/token") == "permanent" && env.Replica.Cache().Synced()
	})
	for path, want := range map[string]int{
		"/v1/apps/" + replicatest.App + "/token": http.StatusOK,
		"/v1/apps/bad/token":                     http.StatusServiceUnavailable,
		"/no/such/endpoint":                      http.StatusNotFound,
	} {
		if code, _ := get(t, env.URL+path); code != want {
			t.Errorf("GET %s: status %d, want %d", path, code, want)
		}
	}
	code, body := get(t, env.URL+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", code)
	}
	for _, s := range []string{replicatest.Secret, badSecret, env.Current(t, replicatest.App, "token").Value} {
		if strings.Contains(body, s) {
			t.Errorf("/metrics shows a secret or token")
		}
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	for _, m := range exported {
		f, ok := families[m.name]
		switch {
		case !ok && m.always:
			t.Errorf("%s missing", m.name)
		case ok && f.GetType() != m.typ:
			t.Errorf("%s: type %v, want %v", m.name, f.GetType(), m.typ)
		}
	}

	// Values this run must show.
	for _, c := range []struct {
		name   string
		labels map[string]string
		min    float64 // at least; for histograms, the sample count
		max    float64
	}{
		{"wxtoken_ready", nil, 1, 1},
		{"wxtoken_leader", nil, 1, 1},
		{"wxtoken_token_reads_total", nil, 1, 1e9},
		{"wxtoken_token_misses_total", nil, 1, 1e9},
		{"wxtoken_credential_usable", map[string]string{"cred": "demo/token"}, 1, 1},
		{"wxtoken_credential_usable", map[string]string{"cred": "demo/jsapi"}, 1, 1},
		{"wxtoken_credential_usable", map[string]string{"cred": "bad/token"}, 0, 0},
		{"wxtoken_credential_seq", map[string]string{"cred": "demo/token"}, 1, 1e9},
		{"wxtoken_credential_expires_in_seconds", map[string]string{"cred": "demo/token"}, 60, 7200},
		{"wxtoken_credential_blocked", map[string]string{"cred": "bad/token", "reason": "permanent"}, 1, 1},
		{"wxtoken_budget_limit", map[string]string{"cred": "bad/token"}, 10, 10},
		{"wxtoken_budget_fetches_today", map[string]string{"cred": "bad/token"}, 1, 1},
		{"wxtoken_fetches_total", map[string]string{"cred": "demo/token", "result": "ok"}, 1, 1e9},
		{"wxtoken_fetches_total", map[string]string{"cred": "bad/token", "result": "permanent"}, 1, 1},
		{"wxtoken_foreign_fetches_total", map[string]string{"cred": "demo/token"}, 0, 0},
		{"wxtoken_http_request_duration_seconds", map[string]string{"route": "token", "status_class": "2xx"}, 1, 1e9},
		{"wxtoken_http_request_duration_seconds", map[string]string{"route": "token", "status_class": "5xx"}, 1, 1e9},
		{"wxtoken_http_request_duration_seconds", map[string]string{"route": "other", "status_class": "4xx"}, 1, 1e9},
		{"wxtoken_propagation_lag_seconds", nil, 2, 1e9}, // demo/token, demo/jsapi
		{"wxtoken_wechat_call_duration_seconds", map[string]string{"kind": "classic", "outcome": "ok"}, 2, 1e9},
		{"wxtoken_wechat_call_duration_seconds", map[string]string{"kind": "ticket", "outcome": "ok"}, 1, 1e9},
	} {
		v, ok := value(families[c.name], c.labels)
		if !ok || v < c.min || v > c.max {
			t.Errorf("%s%v = %v (found %v), want in [%v, %v]", c.name, c.labels, v, ok, c.min, c.max)
		}
	}
}

// value is the value of the metric of f with labels (a histogram's sample
// count), and whether there is one.
func value(f *dto.MetricFamily, labels map[string]string) (float64, bool) {
	for _, m := range f.GetMetric() {
		match := 0
		for _, l := range m.GetLabel() {
			if labels[l.GetName()] == l.GetValue() {
				match++
			}
		}
		if match != len(labels) || len(m.GetLabel()) != len(labels) {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			return float64(m.GetHistogram().GetSampleCount()), true
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		default:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
