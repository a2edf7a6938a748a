package refresher

import (
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// Metrics counts what the refresher does: it is a prometheus.Collector to
// register once with the replica's registry. Its per-credential figures are
// kept in one small struct per credential and turned into metrics at
// scrape time, so that a leader of 100,000 credentials does not hold a
// dozen client_golang series objects for each. The leader-side gauges are
// cleared when a term ends, so that a follower reports none of them. It is
// safe for concurrent use.
type Metrics struct {
	leading atomic.Bool
	leader  prometheus.Gauge

	mu    sync.Mutex
	creds map[string]*credMetrics
}

// credMetrics is one credential's figures.
type credMetrics struct {
	fetches                  [len(results)]uint64 // by result, see results
	fetched                  uint8                // bit i: results[i] has been counted ("ok" is exposed at 0)
	budgetRefusals, dangling uint64
	ambiguous, rejected      uint64
	foreign                  uint64
	recovered                uint64         // refresh tokens from api_get_authorizer_list
	refusals                 map[int]uint64 // by errcode
	// The leader's gauges, cleared at the end of a term.
	budgetToday, budgetLimit int
	budgetSet                bool
	blocked                  string
	refused                  []string // nodes
}

// results are the values of the result label of wxtoken_fetches_total: ok
// and fetcher's classes.
var results = [...]string{"ok", "unknown", "transient", "permanent", "quota", "token_dead", "ambiguous"}

// resultIndex is result's index in results (that of "unknown" for a class
// fetcher names otherwise).
func resultIndex(result string) int {
	for i, r := range results {
		if r == result {
			return i
		}
	}
	return 1
}

var (
	descFetches        = desc("wxtoken_fetches_total", "WeChat fetches by credential and result (ok, or the error class).", "cred", "result")
	descBudgetToday    = desc("wxtoken_budget_fetches_today", "Fetches counted against the daily budget today (China-time day).", "cred")
	descBudgetLimit    = desc("wxtoken_budget_limit", "The credential's daily budget of fetches (0: unlimited).", "cred")
	descBudgetRefusals = desc("wxtoken_budget_refusals_total", "Fetches refused because the daily budget was used up.", "cred")
	descBlocked        = desc("wxtoken_credential_blocked", "1 while fetching a credential is stopped, by reason.", "cred", "reason")
	descRefused        = desc("wxtoken_credential_refused", "1 while WeChat's refusal of the credential from a node (40164, 60020, 8950x) is in its holdoff.", "cred", "node")
	descRefusals       = desc("wxtoken_refusals_total", "WeChat refusals of this host (40164, 60020, 8950x) by credential and errcode.", "cred", "code")
	descDangling       = desc("wxtoken_dangling_intents_total", "Unfinished fetches (a previous leader's, or an unanswered call) waited out.", "cred")
	descAmbiguous      = desc("wxtoken_ambiguous_calls_total", "WeChat calls given up without a complete answer.", "cred")
	descRejected       = desc("wxtoken_reports_rejected_total", "Reports of a token that WeChat still accepted.", "cred")
	descForeign        = desc("wxtoken_foreign_fetches_total", "Tokens killed by a fetch from outside the cluster.", "cred")
	descRecovered      = desc("wxtoken_refresh_tokens_recovered_total", "Authorizer refresh tokens restored from api_get_authorizer_list (missing, unreadable or rejected with 61023).", "cred")
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var _ prometheus.Collector = (*Metrics)(nil)

// NewMetrics returns Metrics at zero.
func NewMetrics() *Metrics {
	return &Metrics{
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "wxtoken_leader", Help: "1 while this replica leads."}),
		creds:  map[string]*credMetrics{},
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.leader.Describe(ch)
	for _, d := range []*prometheus.Desc{descFetches, descBudgetToday, descBudgetLimit, descBudgetRefusals, descBlocked,
		descRefused, descRefusals, descDangling, descAmbiguous, descRejected, descForeign, descRecovered} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.leader.Collect(ch)
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for cred, c := range m.creds {
		for i, v := range c.fetches {
			if i == 0 || c.fetched&(1<<i) != 0 {
				counter(descFetches, v, cred, results[i])
			}
		}
		counter(descBudgetRefusals, c.budgetRefusals, cred)
		counter(descDangling, c.dangling, cred)
		counter(descAmbiguous, c.ambiguous, cred)
		counter(descRejected, c.rejected, cred)
		counter(descForeign, c.foreign, cred)
		if c.recovered > 0 { // only authorizers recover: no series for the rest
			counter(descRecovered, c.recovered, cred)
		}
		for code, v := range c.refusals {
			counter(descRefusals, v, cred, strconv.Itoa(code))
		}
		if c.budgetSet {
			gauge(descBudgetToday, float64(c.budgetToday), cred)
			gauge(descBudgetLimit, float64(c.budgetLimit), cred)
		}
		if c.blocked != "" {
			gauge(descBlocked, 1, cred, c.blocked)
		}
		for _, node := range c.refused {
			gauge(descRefused, 1, cred, node)
		}
	}
}

// of returns cred's figures, made at zero on first use; m.mu is held.
func (m *Metrics) of(cred string) *credMetrics {
	c := m.creds[cred]
	if c == nil {
		c = &credMetrics{}
		m.creds[cred] = c
	}
	return c
}

// update runs fn on cred's figures under the lock.
func (m *Metrics) update(cred string, fn func(c *credMetrics)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fn(m.of(cred))
}

// Leader reports whether this replica leads right now.
func (m *Metrics) Leader() bool { return m.leading.Load() }

// Fetches returns the number of WeChat fetches of cred with result ("ok",
// or an error class such as "transient").
func (m *Metrics) Fetches(cred, result string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.creds[cred]; c != nil {
		return int64(c.fetches[resultIndex(result)])
	}
	return 0
}

// Blocked returns why fetching cred is stopped, or "".
func (m *Metrics) Blocked(cred string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.creds[cred]; c != nil {
		return c.blocked
	}
	return ""
}

// ForeignFetches is how many tokens of cred something outside the cluster
// killed, as this replica found while leading.
func (m *Metrics) ForeignFetches(cred string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.creds[cred]; c != nil {
		return int64(c.foreign)
	}
	return 0
}

// HostRefusals is how often WeChat refused this host, over every
// credential and code.
func (m *Metrics) HostRefusals() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n uint64
	for _, c := range m.creds {
		for _, v := range c.refusals {
			n += v
		}
	}
	return int64(n)
}

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
	defer m.mu.Unlock()
	for _, c := range m.creds {
		c.budgetSet, c.blocked, c.refused = false, "", nil
	}
}

// fetch counts a WeChat fetch of cred and its result. The fetch counts
// against today's budget too: the gauge is exact again at the next budget.
func (m *Metrics) fetch(cred string, err error) {
	result := "ok"
	if err != nil {
		result = fetcher.ClassOf(err).String()
	}
	m.update(cred, func(c *credMetrics) {
		i := resultIndex(result)
		c.fetches[i]++
		c.fetched |= 1 << i
		c.budgetToday++
		c.budgetSet = true
	})
}

func (m *Metrics) published(cred string, _ tokenstore.Record) {
	m.setBlocked(cred, "")
}

func (m *Metrics) state(st tokenstore.State) {
	m.setBlocked(st.Cred, st.Blocked)
}

// setBlocked records why fetching cred is stopped ("": it is not).
func (m *Metrics) setBlocked(cred, reason string) {
	m.update(cred, func(c *credMetrics) { c.blocked = reason })
}

// budget records the fetches counted today against cred's daily budget
// and the budget itself (0: unlimited). The first call for cred exposes
// its counters at 0, so that their first increment shows in rate() and
// increase().
func (m *Metrics) budget(cred string, today, limit int) {
	m.update(cred, func(c *credMetrics) {
		c.budgetToday, c.budgetLimit, c.budgetSet = today, limit, true
	})
}

// budgetRefusal counts a fetch of cred refused by the daily budget.
func (m *Metrics) budgetRefusal(cred string) {
	m.update(cred, func(c *credMetrics) { c.budgetRefusals++ })
}

// hostRefusal counts WeChat's refusal of this host (errcode code) for cred.
func (m *Metrics) hostRefusal(cred string, code int) {
	m.update(cred, func(c *credMetrics) {
		if c.refusals == nil {
			c.refusals = map[int]uint64{}
		}
		c.refusals[code]++
	})
}

// refused sets whether WeChat's refusal of cred from node is in its
// holdoff (on) or over (off).
func (m *Metrics) refused(cred, node string, on bool) {
	m.update(cred, func(c *credMetrics) {
		c.refused = slices.DeleteFunc(c.refused, func(n string) bool { return n == node })
		if on {
			c.refused = append(c.refused, node)
		}
	})
}

// refusedNodes sets cred's refused gauges to exactly the nodes in refs, as a
// snapshot of etcd showed them (a refusal ends by its lease).
func (m *Metrics) refusedNodes(cred string, refs []tokenstore.Refusal) {
	m.update(cred, func(c *credMetrics) {
		c.refused = c.refused[:0]
		for _, r := range refs {
			c.refused = append(c.refused, r.Node)
		}
		if len(c.refused) == 0 {
			c.refused = nil
		}
	})
}

// danglingIntent counts an unfinished fetch of cred waited out.
func (m *Metrics) danglingIntent(cred string) { m.update(cred, func(c *credMetrics) { c.dangling++ }) }

// ambiguousCall counts a WeChat call for cred given up without a complete
// answer (it may have minted a token).
func (m *Metrics) ambiguousCall(cred string) { m.update(cred, func(c *credMetrics) { c.ambiguous++ }) }

// reportRejected counts a report of cred's token that WeChat still accepted.
func (m *Metrics) reportRejected(cred string) { m.update(cred, func(c *credMetrics) { c.rejected++ }) }

// foreignFetch counts a token of cred killed by a fetch from outside the
// cluster.
func (m *Metrics) foreignFetch(cred string) { m.update(cred, func(c *credMetrics) { c.foreign++ }) }

// recovered counts a refresh token of cred restored from the authorizer
// list.
func (m *Metrics) recovered(cred string) { m.update(cred, func(c *credMetrics) { c.recovered++ }) }
