package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/internal/replicatest"
)

// prometheusNames are series Prometheus makes itself, not the binary.
var prometheusNames = map[string]bool{"up": true, "scrape_duration_seconds": true, "scrape_samples_scraped": true}

// exported collects the metric names a replica's GET /metrics has shown:
// sample names (with _bucket, _sum, _count of histograms) and family names.
type exported map[string]bool

// scrape adds the names of one GET /metrics to e.
func (e exported) scrape(ctx context.Context, t *testing.T, url string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	for name, mf := range families {
		e[name] = true
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			e[name+"_bucket"], e[name+"_sum"], e[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			e[name+"_sum"], e[name+"_count"] = true, true
		}
	}
}

// missing returns the names of used that e lacks.
func (e exported) missing(used map[string][]string) []string {
	var out []string
	for name := range used {
		if !e[name] && !prometheusNames[name] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// usedNames maps every metric name that the dashboard and the alert rules
// query (recording rules' own names aside) to where.
func usedNames(t *testing.T) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	qs := append(dashboardQueries(t, readDashboard(t)), alertQueries(t)...)
	for _, q := range qs {
		for _, name := range promqlNames(q.expr) {
			if !strings.Contains(name, ":") {
				used[name] = append(used[name], q.where)
			}
		}
	}
	return used
}

// TestQueriedMetricsAreExported runs a real replica (embedded etcd, the
// WeChat simulator), drives it through the events that create labelled
// series (reads, a rejected report, a foreign fetch with an unanswered
// WeChat call, WeChat refusing the host), scrapes GET /metrics along the
// way, and checks that every metric the dashboard and the alert rules
// query is one the replica exports.
func TestQueriedMetricsAreExported(t *testing.T) {
	used := usedNames(t)
	env := replicatest.Start(t, replicatest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	got := exported{}
	got.scrape(ctx, t, env.URL)

	// A read, and a report of a token WeChat still accepts: rejected.
	if code := call(ctx, t, http.MethodGet, env.URL+"/v1/apps/"+replicatest.App+"/token", ""); code != http.StatusOK {
		t.Fatalf("GET token: %d", code)
	}
	if code := report(ctx, t, env); code != http.StatusOK {
		t.Fatalf("report of a live token: %d, want 200 (rejected, the same token back)", code)
	}
	got.scrape(ctx, t, env.URL)

	// A foreign fetch kills the served token; the report of it is
	// confirmed, and the leader's next call gets no complete answer
	// (HTTP 502): it is waited out, then fetched again.
	before := env.Current(t, replicatest.App, "token").Seq
	env.KillToken(t, replicatest.App)
	env.Sim.SetFault(wechattest.Fault{Mode: wechattest.Fault5xx, Count: 1, AppID: replicatest.AppID})
	report(ctx, t, env) // may answer refresh_pending: the call is ambiguous and waited out
	if !waitUntil(ctx, func() bool {
		got.scrape(ctx, t, env.URL)
		return env.Current(t, replicatest.App, "token").Seq > before
	}) {
		t.Fatalf("no new token after the unanswered call; the simulator's ledger:\n%s", ledger(env.Sim))
	}

	// WeChat refuses this host (IP whitelist, 40164) on the next fetch.
	env.KillToken(t, replicatest.App)
	env.Sim.SetAllowIPs([]string{"192.0.2.1"})
	report(ctx, t, env)
	refusedCtx, refusedCancel := context.WithTimeout(ctx, time.Minute)
	defer refusedCancel()
	if !waitUntil(refusedCtx, func() bool {
		got.scrape(ctx, t, env.URL)
		for _, f := range env.Sim.Ledger() {
			if f.Errcode == 40164 {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("WeChat's refusal (40164) of a fetch did not happen within a minute; the simulator's ledger:\n%s", ledger(env.Sim))
	}

	// Series may lag the events a little: scrape until nothing is
	// missing, or give up and name what is.
	var missing []string
	lagCtx, lagCancel := context.WithTimeout(ctx, 20*time.Second)
	defer lagCancel()
	waitUntil(lagCtx, func() bool {
		got.scrape(ctx, t, env.URL)
		missing = got.missing(used)
		return len(missing) == 0
	})
	for _, name := range missing {
		t.Errorf("%s is queried (%s) but the replica never exported it", name, strings.Join(used[name], "; "))
	}
}

// call sends a request with an optional JSON body to url and returns the
// status.
func call(ctx context.Context, t *testing.T, method, url, body string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// report reports the token the replica serves as dead (straight to the
// API: the Go client would answer from its own cache).
func report(ctx context.Context, t *testing.T, env *replicatest.Env) int {
	t.Helper()
	body, err := json.Marshal(map[string]string{"access_token": env.Current(t, replicatest.App, "token").Value})
	if err != nil {
		t.Fatal(err)
	}
	return call(ctx, t, http.MethodPost, env.URL+"/v1/apps/"+replicatest.App+"/token/invalidate", string(body))
}

// waitUntil polls cond every 200ms until it holds (true) or ctx ends
// (false).
func waitUntil(ctx context.Context, cond func() bool) bool {
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(200 * time.Millisecond):
		}
	}
	return true
}

// ledger renders the simulator's token and ticket calls, one a line.
func ledger(sim *wechattest.Server) string {
	var b strings.Builder
	for _, f := range sim.Ledger() {
		fmt.Fprintf(&b, "  %s %s %s errcode %d issued %v from %s\n", f.At.Format("15:04:05.000"), f.Kind, f.AppID, f.Errcode, f.Issued, f.Caller)
	}
	return b.String()
}
