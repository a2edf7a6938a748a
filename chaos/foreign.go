package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/chaos/checker"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// foreignFetch fetches a classic app's token straight from the simulator
// with the app's secret, from outside the cluster (127.0.0.1, no
// replica's address), a few seconds after a planned refresh: WeChat kills
// the published token one overlap later, long before the next planned
// refresh. Consumers meet the dead token and report it; the cluster must
// confirm it dead, count a foreign fetch and publish a new token. The
// fault ends once a newer record is published and counted (bounded).
func (h *harness) foreignFetch(ctx context.Context, s Step, f *checker.Fault) error {
	a := h.cfg.apps[s.App]
	t := h.cfg.Timing
	f.App, f.Target = a.name, "app "+a.name+", fetched outside the cluster"
	cur, err := h.record(ctx, a.name)
	if err != nil {
		return err
	}
	rec, err := h.nextRecord(ctx, a, cur.Seq)
	if err != nil {
		return err
	}
	if err := sleep(ctx, s.Param); err != nil {
		return err
	}
	cred := tokenstore.CredName(a.name, "token")
	before, err := h.foreignCount(ctx, cred)
	if err != nil {
		return err
	}
	if _, err := h.sim.classicToken(ctx, a.appID, a.secret); err != nil {
		return err
	}
	f.Start, f.Token = time.Now(), rec.Value
	dies := f.Start.Add(t.Overlap)
	bound := t.Overlap + 2*(t.FetchTimeout+t.Margin) + 10*time.Second
	var next uint64
	err = poll(ctx, bound, func(ctx context.Context) bool {
		r, err := h.record(ctx, a.name)
		next = r.Seq
		return err == nil && r.Seq > rec.Seq
	})
	if err != nil {
		f.End = time.Now()
		f.Counted = -1
		f.Detail = fmt.Sprintf("seq %d dies at %s; no newer record within %v", rec.Seq, clock(dies), bound)
		return nil
	}
	replaced := time.Now()
	// The count may follow the publish by a moment.
	after := before
	_ = poll(ctx, t.FetchTimeout+t.Margin, func(ctx context.Context) bool {
		n, err := h.foreignCount(ctx, cred)
		after = n
		return err == nil && n > before
	})
	f.End = time.Now()
	f.Counted = after - before
	f.Detail = fmt.Sprintf("seq %d dies at %s; seq %d published at %s (%+v from the death); %d counted",
		rec.Seq, clock(dies), next, clock(replaced), replaced.Sub(dies).Round(10*time.Millisecond), f.Counted)
	return nil
}

func clock(t time.Time) string { return t.Format("15:04:05.000") }

// foreignCount sums what the running replicas count of cred's foreign
// fetches: wxtoken_foreign_fetches_total{cred} on /metrics (the leader
// counts), or, if no replica shows that metric, the largest
// "foreign_fetches" of cred in /v1/status.
func (h *harness) foreignCount(ctx context.Context, cred string) (int, error) {
	total, seen, asked := 0, false, 0
	for _, r := range h.replicas {
		if !r.proc.running() {
			continue
		}
		n, ok, err := metricValue(ctx, r.url()+"/metrics", "wxtoken_foreign_fetches_total", `cred="`+cred+`"`)
		if err != nil {
			continue
		}
		asked++
		total += n
		seen = seen || ok
	}
	if asked == 0 {
		return 0, fmt.Errorf("no replica answered /metrics")
	}
	if seen {
		return total, nil
	}
	best := 0
	for _, r := range h.replicas {
		if r.proc.running() {
			best = max(best, statusForeign(ctx, r.url(), cred))
		}
	}
	return best, nil
}

// metricValue sums the samples of metric whose labels contain label, in
// the Prometheus text at url; ok says whether any sample matched.
func metricValue(ctx context.Context, url, metric, label string) (int, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	sum, ok := 0, false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric+"{") || !strings.Contains(line, label) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err == nil {
			sum += int(v)
			ok = true
		}
	}
	return sum, ok, sc.Err()
}

// statusForeign is cred's "foreign_fetches" in the replica's /v1/status,
// 0 if absent.
func statusForeign(ctx context.Context, base, cred string) int {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var st struct {
		Credentials []struct {
			Cred           string `json:"cred"`
			ForeignFetches int    `json:"foreign_fetches"`
		} `json:"credentials"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return 0
	}
	for _, c := range st.Credentials {
		if c.Cred == cred {
			return c.ForeignFetches
		}
	}
	return 0
}
