package refresher

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/wxtoken/wxtoken/tokenstore"
)

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

	types := map[string]dto.MetricType{
		"wxtoken_leader": dto.MetricType_GAUGE, "wxtoken_fetches_total": dto.MetricType_COUNTER,
		"wxtoken_budget_fetches_today": dto.MetricType_GAUGE, "wxtoken_budget_limit": dto.MetricType_GAUGE,
		"wxtoken_budget_refusals_total": dto.MetricType_COUNTER, "wxtoken_credential_blocked": dto.MetricType_GAUGE,
		"wxtoken_credential_refused": dto.MetricType_GAUGE, "wxtoken_refusals_total": dto.MetricType_COUNTER,
		"wxtoken_dangling_intents_total": dto.MetricType_COUNTER, "wxtoken_ambiguous_calls_total": dto.MetricType_COUNTER,
		"wxtoken_reports_rejected_total": dto.MetricType_COUNTER, "wxtoken_foreign_fetches_total": dto.MetricType_COUNTER,
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		want, ok := types[mf.GetName()]
		if !ok {
			t.Errorf("unexpected metric %s", mf.GetName())
		} else if mf.GetType() != want {
			t.Errorf("%s: type %v, want %v", mf.GetName(), mf.GetType(), want)
		}
		delete(types, mf.GetName())
	}
	for name := range types {
		t.Errorf("metric %s not exposed", name)
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
	want := `
# HELP wxtoken_budget_fetches_today Fetches counted against the daily budget today (China-time day).
# TYPE wxtoken_budget_fetches_today gauge
wxtoken_budget_fetches_today{cred="shop/token"} 4
# HELP wxtoken_budget_limit The credential's daily budget of fetches (0: unlimited).
# TYPE wxtoken_budget_limit gauge
wxtoken_budget_limit{cred="shop/token"} 5
# HELP wxtoken_credential_blocked 1 while fetching a credential is stopped, by reason.
# TYPE wxtoken_credential_blocked gauge
wxtoken_credential_blocked{cred="shop/token",reason="budget"} 1
# HELP wxtoken_credential_refused 1 while WeChat's refusal of the credential from a node (40164, 60020, 8950x) is in its holdoff.
# TYPE wxtoken_credential_refused gauge
wxtoken_credential_refused{cred="shop/token",node="r1"} 1
# HELP wxtoken_leader 1 while this replica leads.
# TYPE wxtoken_leader gauge
wxtoken_leader 1
# HELP wxtoken_refusals_total WeChat refusals of this host (40164, 60020, 8950x) by credential and errcode.
# TYPE wxtoken_refusals_total counter
wxtoken_refusals_total{code="40164",cred="shop/token"} 1
wxtoken_refusals_total{code="89503",cred="shop/jsapi"} 1
`
	names := []string{"wxtoken_budget_fetches_today", "wxtoken_budget_limit", "wxtoken_credential_blocked",
		"wxtoken_credential_refused", "wxtoken_leader", "wxtoken_refusals_total"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	for name, c := range map[string]prometheus.Collector{
		"budget refusals":  m.budgetRefusals,
		"dangling intents": m.danglingIntents,
		"ambiguous calls":  m.ambiguousCalls,
		"reports rejected": m.reportsRejected,
		"foreign fetches":  m.foreignFetches,
	} {
		if got := testutil.ToFloat64(c); got != 1 {
			t.Errorf("%s: got %v, want 1", name, got)
		}
	}

	// A credential's counters are exposed at 0 once the leader looks at it.
	m.budget("shop/jsapi", 0, 0)
	if got := testutil.CollectAndCount(m.foreignFetches); got != 2 {
		t.Errorf("foreign fetches series: got %d, want 2", got)
	}

	// The end of the term clears the leader's gauges; counters stay.
	m.setLeader(false)
	want = `
# HELP wxtoken_leader 1 while this replica leads.
# TYPE wxtoken_leader gauge
wxtoken_leader 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names[:5]...); err != nil {
		t.Error(err)
	}
	if m.Leader() || m.Blocked("shop/token") != "" || m.HostRefusals() != 2 {
		t.Errorf("after the term: Leader %v, Blocked %q, HostRefusals %d; want false, \"\", 2", m.Leader(), m.Blocked("shop/token"), m.HostRefusals())
	}
}
