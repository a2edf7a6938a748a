package refresher

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// Metrics counts what the refresher does. It is safe for concurrent use.
type Metrics struct {
	leader          atomic.Int64
	budgetRefusals  atomic.Int64
	hostRefusals    atomic.Int64
	danglingIntents atomic.Int64
	reportsRejected atomic.Int64

	mu        sync.Mutex
	fetches   map[[2]string]int64 // {cred, result} -> count
	blocked   map[string]string   // cred -> reason, while blocked
	foreign   map[string]int64    // cred -> foreign fetches seen
	ambiguous map[string]int64    // cred -> calls given up without an answer
	refusals  map[[2]string]bool  // {cred, node} refused, as this replica saw
	budgets   map[string][2]int   // cred -> {fetches today, limit}
}

// NewMetrics returns empty Metrics.
func NewMetrics() *Metrics {
	return &Metrics{fetches: map[[2]string]int64{}, blocked: map[string]string{}, foreign: map[string]int64{},
		ambiguous: map[string]int64{}, refusals: map[[2]string]bool{}, budgets: map[string][2]int{}}
}

// Leader reports whether this replica leads right now.
func (m *Metrics) Leader() bool { return m.leader.Load() == 1 }

// Fetches returns the number of WeChat fetches of cred with result ("ok",
// or an error class such as "transient").
func (m *Metrics) Fetches(cred, result string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fetches[[2]string{cred, result}]
}

// Blocked returns why fetching cred is stopped, or "".
func (m *Metrics) Blocked(cred string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.blocked[cred]
}

func (m *Metrics) fetch(cred string, err error) {
	result := "ok"
	if err != nil {
		result = fetcher.ClassOf(err).String()
	}
	m.mu.Lock()
	m.fetches[[2]string{cred, result}]++
	m.mu.Unlock()
}

func (m *Metrics) published(cred string, _ tokenstore.Record) {
	m.mu.Lock()
	delete(m.blocked, cred)
	m.mu.Unlock()
}

func (m *Metrics) state(st tokenstore.State) {
	m.mu.Lock()
	if st.Blocked != "" {
		m.blocked[st.Cred] = st.Blocked
	} else {
		delete(m.blocked, st.Cred)
	}
	m.mu.Unlock()
}

func (m *Metrics) foreignFetch(cred string) {
	m.mu.Lock()
	m.foreign[cred]++
	m.mu.Unlock()
}

// ForeignFetches is how many tokens of cred something outside the cluster
// killed, as this replica found.
func (m *Metrics) ForeignFetches(cred string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.foreign[cred]
}

func (m *Metrics) ambiguousCall(cred string) {
	m.mu.Lock()
	m.ambiguous[cred]++
	m.mu.Unlock()
}

func (m *Metrics) refused(cred, node string, on bool) {
	m.mu.Lock()
	if on {
		m.refusals[[2]string{cred, node}] = true
	} else {
		delete(m.refusals, [2]string{cred, node})
	}
	m.mu.Unlock()
}

func (m *Metrics) budget(cred string, today, limit int) {
	m.mu.Lock()
	m.budgets[cred] = [2]int{today, limit}
	m.mu.Unlock()
}

// WritePrometheus writes the metrics in Prometheus text format.
func (m *Metrics) WritePrometheus(w io.Writer) {
	fmt.Fprintf(w, "# HELP wxtoken_leader 1 while this replica leads.\n# TYPE wxtoken_leader gauge\nwxtoken_leader %d\n", m.leader.Load())
	fmt.Fprintf(w, "# HELP wxtoken_budget_refusals_total Fetches refused because the daily budget was used up.\n# TYPE wxtoken_budget_refusals_total counter\nwxtoken_budget_refusals_total %d\n", m.budgetRefusals.Load())
	fmt.Fprintf(w, "# HELP wxtoken_host_refusals_total Times WeChat refused this host (40164, 8950x) and it stepped down.\n# TYPE wxtoken_host_refusals_total counter\nwxtoken_host_refusals_total %d\n", m.hostRefusals.Load())
	fmt.Fprintf(w, "# HELP wxtoken_dangling_intents_total Unfinished fetches (a previous leader's, or an unanswered call) waited out.\n# TYPE wxtoken_dangling_intents_total counter\nwxtoken_dangling_intents_total %d\n", m.danglingIntents.Load())
	fmt.Fprintf(w, "# HELP wxtoken_reports_rejected_total Reports of a token that WeChat still accepted.\n# TYPE wxtoken_reports_rejected_total counter\nwxtoken_reports_rejected_total %d\n", m.reportsRejected.Load())
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprint(w, "# HELP wxtoken_fetches_total WeChat fetches by credential and result.\n# TYPE wxtoken_fetches_total counter\n")
	keys := make([][2]string, 0, len(m.fetches))
	for k := range m.fetches {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	for _, k := range keys {
		fmt.Fprintf(w, "wxtoken_fetches_total{cred=%q,result=%q} %d\n", k[0], k[1], m.fetches[k])
	}
	fmt.Fprint(w, "# HELP wxtoken_credential_blocked 1 while fetching a credential is stopped, by reason.\n# TYPE wxtoken_credential_blocked gauge\n")
	creds := make([]string, 0, len(m.blocked))
	for c := range m.blocked {
		creds = append(creds, c)
	}
	sort.Strings(creds)
	for _, c := range creds {
		fmt.Fprintf(w, "wxtoken_credential_blocked{cred=%q,reason=%q} 1\n", c, m.blocked[c])
	}
	fmt.Fprint(w, "# HELP wxtoken_foreign_fetches_total Tokens killed by a fetch from outside the cluster.\n# TYPE wxtoken_foreign_fetches_total counter\n")
	for c, n := range m.foreign {
		fmt.Fprintf(w, "wxtoken_foreign_fetches_total{cred=%q} %d\n", c, n)
	}
	fmt.Fprint(w, "# HELP wxtoken_ambiguous_calls_total WeChat calls given up without a complete answer.\n# TYPE wxtoken_ambiguous_calls_total counter\n")
	for c, n := range m.ambiguous {
		fmt.Fprintf(w, "wxtoken_ambiguous_calls_total{cred=%q} %d\n", c, n)
	}
}

// HostRefusals is how often WeChat refused this host and it stepped down.
func (m *Metrics) HostRefusals() int64 { return m.hostRefusals.Load() }
