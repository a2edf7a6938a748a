package refresher

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// Metrics counts what the refresher does, as Prometheus collectors: it is a
// prometheus.Collector to register once with the replica's registry. The
// leader-side gauges are cleared when a term ends, so that a follower
// reports none of them. It is safe for concurrent use.
type Metrics struct {
	leading atomic.Bool

	leader          prometheus.Gauge
	fetches         *prometheus.CounterVec // cred, result
	budgetToday     *prometheus.GaugeVec   // cred
	budgetLimit     *prometheus.GaugeVec   // cred
	budgetRefusals  *prometheus.CounterVec // cred
	blockedGauge    *prometheus.GaugeVec   // cred, reason
	refusedGauge    *prometheus.GaugeVec   // cred, node
	refusals        *prometheus.CounterVec // cred, code
	danglingIntents *prometheus.CounterVec // cred
	ambiguousCalls  *prometheus.CounterVec // cred
	reportsRejected *prometheus.CounterVec // cred
	foreignFetches  *prometheus.CounterVec // cred

	mu      sync.Mutex
	blocked map[string]string   // cred -> reason, while blocked
	seen    map[string]struct{} // creds whose counters are exposed
}

var _ prometheus.Collector = (*Metrics)(nil)

// NewMetrics returns Metrics at zero.
func NewMetrics() *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	return &Metrics{
		leader:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "wxtoken_leader", Help: "1 while this replica leads."}),
		fetches:         counter("wxtoken_fetches_total", "WeChat fetches by credential and result (ok, or the error class).", "cred", "result"),
		budgetToday:     gauge("wxtoken_budget_fetches_today", "Fetches counted against the daily budget today (China-time day).", "cred"),
		budgetLimit:     gauge("wxtoken_budget_limit", "The credential's daily budget of fetches (0: unlimited).", "cred"),
		budgetRefusals:  counter("wxtoken_budget_refusals_total", "Fetches refused because the daily budget was used up.", "cred"),
		blockedGauge:    gauge("wxtoken_credential_blocked", "1 while fetching a credential is stopped, by reason.", "cred", "reason"),
		refusedGauge:    gauge("wxtoken_credential_refused", "1 while WeChat's refusal of the credential from a node (40164, 60020, 8950x) is in its holdoff.", "cred", "node"),
		refusals:        counter("wxtoken_refusals_total", "WeChat refusals of this host (40164, 60020, 8950x) by credential and errcode.", "cred", "code"),
		danglingIntents: counter("wxtoken_dangling_intents_total", "Unfinished fetches (a previous leader's, or an unanswered call) waited out.", "cred"),
		ambiguousCalls:  counter("wxtoken_ambiguous_calls_total", "WeChat calls given up without a complete answer.", "cred"),
		reportsRejected: counter("wxtoken_reports_rejected_total", "Reports of a token that WeChat still accepted.", "cred"),
		foreignFetches:  counter("wxtoken_foreign_fetches_total", "Tokens killed by a fetch from outside the cluster.", "cred"),
		blocked:         map[string]string{},
		seen:            map[string]struct{}{},
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.leader, m.fetches, m.budgetToday, m.budgetLimit, m.budgetRefusals, m.blockedGauge, m.refusedGauge,
		m.refusals, m.danglingIntents, m.ambiguousCalls, m.reportsRejected, m.foreignFetches,
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// Leader reports whether this replica leads right now.
func (m *Metrics) Leader() bool { return m.leading.Load() }

// Fetches returns the number of WeChat fetches of cred with result ("ok",
// or an error class such as "transient").
func (m *Metrics) Fetches(cred, result string) int64 {
	return int64(sum(m.fetches, map[string]string{"cred": cred, "result": result}))
}

// Blocked returns why fetching cred is stopped, or "".
func (m *Metrics) Blocked(cred string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.blocked[cred]
}

// ForeignFetches is how many tokens of cred something outside the cluster
// killed, as this replica found while leading.
func (m *Metrics) ForeignFetches(cred string) int64 {
	return int64(sum(m.foreignFetches, map[string]string{"cred": cred}))
}

// HostRefusals is how often WeChat refused this host, over every
// credential and code.
func (m *Metrics) HostRefusals() int64 { return int64(sum(m.refusals, nil)) }

// setLeader marks the start (true) or the end (false) of a term. The end
// clears the leader-side gauges: they are the leader's to report.
func (m *Metrics) setLeader(on bool) {
	m.leading.Store(on)
	if on {
		m.leader.Set(1)
		return
	}
	m.leader.Set(0)
	m.mu.Lock()
	clear(m.blocked)
	m.blockedGauge.Reset()
	m.mu.Unlock()
	m.refusedGauge.Reset()
	m.budgetToday.Reset()
	m.budgetLimit.Reset()
}

// fetch counts a WeChat fetch of cred and its result. The fetch counts
// against today's budget too: the gauge is exact again at the next budget.
func (m *Metrics) fetch(cred string, err error) {
	result := "ok"
	if err != nil {
		result = fetcher.ClassOf(err).String()
	}
	m.fetches.WithLabelValues(cred, result).Inc()
	m.budgetToday.WithLabelValues(cred).Inc()
}

func (m *Metrics) published(cred string, _ tokenstore.Record) {
	m.setBlocked(cred, "")
}

func (m *Metrics) state(st tokenstore.State) {
	m.setBlocked(st.Cred, st.Blocked)
}

// setBlocked records why fetching cred is stopped ("": it is not).
func (m *Metrics) setBlocked(cred, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.blocked[cred]; ok && old != reason {
		m.blockedGauge.DeleteLabelValues(cred, old)
	}
	if reason == "" {
		delete(m.blocked, cred)
		return
	}
	m.blocked[cred] = reason
	m.blockedGauge.WithLabelValues(cred, reason).Set(1)
}

// budget records the fetches counted today against cred's daily budget
// and the budget itself (0: unlimited). The first call for cred exposes
// its counters at 0, so that their first increment shows in rate() and
// increase().
func (m *Metrics) budget(cred string, today, limit int) {
	m.mu.Lock()
	if _, ok := m.seen[cred]; !ok {
		m.seen[cred] = struct{}{}
		m.fetches.WithLabelValues(cred, "ok")
		for _, c := range []*prometheus.CounterVec{m.budgetRefusals, m.danglingIntents, m.ambiguousCalls, m.reportsRejected, m.foreignFetches} {
			c.WithLabelValues(cred)
		}
	}
	m.mu.Unlock()
	m.budgetToday.WithLabelValues(cred).Set(float64(today))
	m.budgetLimit.WithLabelValues(cred).Set(float64(limit))
}

// budgetRefusal counts a fetch of cred refused by the daily budget.
func (m *Metrics) budgetRefusal(cred string) { m.budgetRefusals.WithLabelValues(cred).Inc() }

// hostRefusal counts WeChat's refusal of this host (errcode code) for cred.
func (m *Metrics) hostRefusal(cred string, code int) {
	m.refusals.WithLabelValues(cred, strconv.Itoa(code)).Inc()
}

// refused sets whether WeChat's refusal of cred from node is in its
// holdoff (on) or over (off).
func (m *Metrics) refused(cred, node string, on bool) {
	if on {
		m.refusedGauge.WithLabelValues(cred, node).Set(1)
		return
	}
	m.refusedGauge.DeleteLabelValues(cred, node)
}

// refusedNodes sets cred's refused gauges to exactly the nodes in refs, as a
// snapshot of etcd showed them (a refusal ends by its lease).
func (m *Metrics) refusedNodes(cred string, refs []tokenstore.Refusal) {
	m.refusedGauge.DeletePartialMatch(prometheus.Labels{"cred": cred})
	for _, r := range refs {
		m.refusedGauge.WithLabelValues(cred, r.Node).Set(1)
	}
}

// danglingIntent counts an unfinished fetch of cred waited out.
func (m *Metrics) danglingIntent(cred string) { m.danglingIntents.WithLabelValues(cred).Inc() }

// ambiguousCall counts a WeChat call for cred given up without a complete
// answer (it may have minted a token).
func (m *Metrics) ambiguousCall(cred string) { m.ambiguousCalls.WithLabelValues(cred).Inc() }

// reportRejected counts a report of cred's token that WeChat still accepted.
func (m *Metrics) reportRejected(cred string) { m.reportsRejected.WithLabelValues(cred).Inc() }

// foreignFetch counts a token of cred killed by a fetch from outside the
// cluster.
func (m *Metrics) foreignFetch(cred string) { m.foreignFetches.WithLabelValues(cred).Inc() }

// sum adds up the counter and gauge values of c's metrics whose labels
// include every pair of want. It is for the accessors, not for scrapes.
func sum(c prometheus.Collector, want map[string]string) float64 {
	ch := make(chan prometheus.Metric)
	go func() { c.Collect(ch); close(ch) }()
	total := 0.0
	for metric := range ch {
		var pb dto.Metric
		if metric.Write(&pb) != nil || !hasLabels(&pb, want) {
			continue
		}
		total += pb.GetCounter().GetValue() + pb.GetGauge().GetValue()
	}
	return total
}

func hasLabels(pb *dto.Metric, want map[string]string) bool {
	found := 0
	for _, lp := range pb.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			found++
		}
	}
	return found == len(want)
}
