package refresher

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// gather returns every metric of g as "name label=value ..." -> value, and
// every family's type.
func gather(t *testing.T, g prometheus.Gatherer) (map[string]float64, map[string]dto.MetricType) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values, types := map[string]float64{}, map[string]dto.MetricType{}
	for _, mf := range mfs {
		types[mf.GetName()] = mf.GetType()
		for _, m := range mf.GetMetric() {
			key := []string{mf.GetName()}
			for _, l := range m.GetLabel() {
				key = append(key, l.GetName()+"="+l.GetValue())
			}
			values[strings.Join(key, " ")] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return values, types
}

// TestMetrics drives Metrics through a term and checks what a scrape shows
// and what the accessors say.
func TestMetrics(t *testing.T) {
	m := NewMetrics()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)

	m.setLeader(true)
	m.budget("shop/token", 0, 5)
	m.fetch("shop/token", nil)
	m.fetch("shop/token", nil)
	m.budget("shop/token", 3, 5) // the count in etcd, which has a retry more
	m.fetch("shop/token", errors.New("not a fetcher error"))
	m.budgetRefusal("shop/token")
	m.hostRefusal("shop/token", 40164)
	m.hostRefusal("shop/jsapi", 89503)
	m.refused("shop/token", "r1", true)
	m.refused("shop/token", "r2", true)
	m.refused("shop/token", "r2", false)
	m.danglingIntent("shop/token")
	m.ambiguousCall("shop/token")
	m.reportRejected("shop/token")
	m.foreignFetch("shop/token")
	m.state(tokenstore.State{Cred: "shop/token", Blocked: "quota"})
	m.state(tokenstore.State{Cred: "shop/token", Blocked: "budget"}) // replaces quota
	m.state(tokenstore.State{Cred: "shop/jsapi", Blocked: "permanent"})
	m.published("shop/jsapi", tokenstore.Record{})

	values, types := gather(t, reg)
	wantValues := map[string]float64{
		"wxtoken_leader": 1,
		"wxtoken_fetches_total cred=shop/token result=ok":          2,
		"wxtoken_fetches_total cred=shop/token result=unknown":     1,
		"wxtoken_budget_fetches_today cred=shop/token":             4,
		"wxtoken_budget_limit cred=shop/token":                     5,
		"wxtoken_budget_refusals_total cred=shop/token":            1,
		"wxtoken_credential_blocked cred=shop/token reason=budget": 1,
		"wxtoken_credential_refused cred=shop/token node=r1":       1,
		"wxtoken_refusals_total code=40164 cred=shop/token":        1,
		"wxtoken_refusals_total code=89503 cred=shop/jsapi":        1,
		"wxtoken_dangling_intents_total cred=shop/token":           1,
		"wxtoken_ambiguous_calls_total cred=shop/token":            1,
		"wxtoken_reports_rejected_total cred=shop/token":           1,
		"wxtoken_foreign_fetches_total cred=shop/token":            1,
		// A credential's counters show at 0 from its first figure on.
		"wxtoken_fetches_total cred=shop/jsapi result=ok": 0,
		"wxtoken_budget_refusals_total cred=shop/jsapi":   0,
		"wxtoken_dangling_intents_total cred=shop/jsapi":  0,
		"wxtoken_ambiguous_calls_total cred=shop/jsapi":   0,
		"wxtoken_reports_rejected_total cred=shop/jsapi":  0,
		"wxtoken_foreign_fetches_total cred=shop/jsapi":   0,
	}
	if !maps.Equal(values, wantValues) {
		t.Errorf("scrape:\n got %v\nwant %v", values, wantValues)
	}
	wantTypes := map[string]dto.MetricType{
		"wxtoken_leader": dto.MetricType_GAUGE, "wxtoken_fetches_total": dto.MetricType_COUNTER,
		"wxtoken_budget_fetches_today": dto.MetricType_GAUGE, "wxtoken_budget_limit": dto.MetricType_GAUGE,
		"wxtoken_budget_refusals_total": dto.MetricType_COUNTER, "wxtoken_credential_blocked": dto.MetricType_GAUGE,
		"wxtoken_credential_refused": dto.MetricType_GAUGE, "wxtoken_refusals_total": dto.MetricType_COUNTER,
		"wxtoken_dangling_intents_total": dto.MetricType_COUNTER, "wxtoken_ambiguous_calls_total": dto.MetricType_COUNTER,
		"wxtoken_reports_rejected_total": dto.MetricType_COUNTER, "wxtoken_foreign_fetches_total": dto.MetricType_COUNTER,
	}
	if !maps.Equal(types, wantTypes) {
		t.Errorf("types:\n got %v\nwant %v", types, wantTypes)
	}
	if !m.Leader() || m.Blocked("shop/token") != "budget" || m.Blocked("shop/jsapi") != "" {
		t.Errorf("Leader %v, Blocked %q, %q; want true, budget, \"\"", m.Leader(), m.Blocked("shop/token"), m.Blocked("shop/jsapi"))
	}
	if got := m.Fetches("shop/token", "ok"); got != 2 {
		t.Errorf("Fetches ok: got %d, want 2", got)
	}
	if got := m.Fetches("shop/token", "unknown"); got != 1 {
		t.Errorf("Fetches unknown: got %d, want 1", got)
	}
	if got := m.HostRefusals(); got != 2 {
		t.Errorf("HostRefusals: got %d, want 2", got)
	}
	if got := m.ForeignFetches("shop/token"); got != 1 {
		t.Errorf("ForeignFetches: got %d, want 1", got)
	}

	// A credential's counters are exposed at 0 once the leader looks at it.
	m.budget("shop/newapp", 0, 0)
	values, _ = gather(t, reg)
	for _, key := range []string{
		"wxtoken_fetches_total cred=shop/newapp result=ok", "wxtoken_budget_refusals_total cred=shop/newapp",
		"wxtoken_dangling_intents_total cred=shop/newapp", "wxtoken_ambiguous_calls_total cred=shop/newapp",
		"wxtoken_reports_rejected_total cred=shop/newapp", "wxtoken_foreign_fetches_total cred=shop/newapp",
	} {
		if v, ok := values[key]; !ok || v != 0 {
			t.Errorf("%s = %v (exposed %v), want 0", key, v, ok)
		}
	}

	// The end of the term clears the leader's gauges; counters stay.
	m.setLeader(false)
	values, _ = gather(t, reg)
	for key, v := range values {
		if strings.HasPrefix(key, "wxtoken_credential_") || strings.HasPrefix(key, "wxtoken_budget_fetches_today") ||
			strings.HasPrefix(key, "wxtoken_budget_limit") || key == "wxtoken_leader" && v != 0 {
			t.Errorf("after the term: %s = %v", key, v)
		}
	}
	if values["wxtoken_refusals_total code=40164 cred=shop/token"] != 1 {
		t.Error("after the term: the refusals counter was reset")
	}
	if m.Leader() || m.Blocked("shop/token") != "" || m.HostRefusals() != 2 {
		t.Errorf("after the term: Leader %v, Blocked %q, HostRefusals %d; want false, \"\", 2", m.Leader(), m.Blocked("shop/token"), m.HostRefusals())
	}
}

// TestResultsNameEveryClass: every class fetcher names has its own value of
// the result label.
func TestResultsNameEveryClass(t *testing.T) {
	for c := fetcher.ClassUnknown; c <= fetcher.Ambiguous; c++ {
		if i := resultIndex(c.String()); results[i] != c.String() {
			t.Errorf("class %s is counted as %s", c, results[i])
		}
	}
}
