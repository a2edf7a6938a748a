package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const dashboardPath = "grafana/wxtoken.json"

// query is one PromQL expression and where it is.
type query struct {
	where string
	expr  string
}

// grafanaPanel is the part of Grafana's panel model the checks read.
type grafanaPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []struct {
		Expr       string `json:"expr"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaDashboard struct {
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func readDashboard(t *testing.T) grafanaDashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	return d
}

// labelValues matches a template variable's label_values(METRIC..., LABEL).
var labelValues = regexp.MustCompile(`^label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)

// dashboardQueries returns every PromQL expression of the dashboard: the
// panels' targets and the query variables' metric selectors.
func dashboardQueries(t *testing.T, d grafanaDashboard) []query {
	t.Helper()
	var qs []query
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			for i, tg := range p.Targets {
				qs = append(qs, query{fmt.Sprintf("panel %q target %d", p.Title, i), tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q string
		switch vq := v.Query.(type) {
		case string:
			q = vq
		case map[string]any:
			q, _ = vq["query"].(string)
		}
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			t.Fatalf("variable %s: query %q, want label_values(METRIC, LABEL)", v.Name, q)
		}
		qs = append(qs, query{"variable " + v.Name, m[1]})
	}
	return qs
}

// alertQueries returns the expressions of deploy/prometheus/alerts.yml.
func alertQueries(t *testing.T) []query {
	t.Helper()
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Record, Expr string
			}
		}
	}
	readYAML(t, filepath.Join("prometheus", "alerts.yml"), &rules)
	var qs []query
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			qs = append(qs, query{"rule " + r.Alert + r.Record, r.Expr})
		}
	}
	if len(qs) == 0 {
		t.Fatal("no rules in prometheus/alerts.yml")
	}
	return qs
}

// TestDashboard checks the dashboard's model: a Prometheus datasource
// variable that every panel and query uses, unique ids, a layout inside
// Grafana's 24 columns, the panels the README promises, and PromQL that
// Prometheus parses (promtool checks each expression as a recording rule).
func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("uid %q, title %q, schemaVersion %d: want a uid, a title and schemaVersion 36 or later", d.UID, d.Title, d.SchemaVersion)
	}
	hasDS := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			hasDS = true
		}
	}
	if !hasDS {
		t.Error(`no templating variable "datasource" of type datasource for prometheus: importing the dashboard would not ask for one`)
	}
	ids := map[int]string{}
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if prev, dup := ids[p.ID]; dup || p.ID == 0 {
				t.Errorf("panel %q: id %d (also %q): want unique non-zero ids", p.Title, p.ID, prev)
			}
			ids[p.ID] = p.Title
			if g := p.GridPos; g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 {
				t.Errorf("panel %q: gridPos %+v outside Grafana's 24 columns", p.Title, g)
			}
			if p.Type != "row" {
				if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q: datasource %+v, want uid ${datasource}", p.Title, p.Datasource)
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no queries", p.Title)
				}
				for i, tg := range p.Targets {
					if tg.Expr == "" || tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
						t.Errorf("panel %q target %d: want an expr and datasource uid ${datasource}", p.Title, i)
					}
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)

	qs := dashboardQueries(t, d)
	all := strings.Builder{}
	for _, q := range qs {
		all.WriteString(q.expr + "\n")
	}
	for _, want := range []string{
		"wxtoken_leader", "wxtoken_ready", "wxtoken_credential_expires_in_seconds", "wxtoken_credential_usable",
		"wxtoken_fetches_total", "wxtoken_budget_fetches_today", "wxtoken_budget_limit",
		"histogram_quantile(0.99, sum by (le, kind) (rate(wxtoken_wechat_call_duration_seconds_bucket",
		"wxtoken_http_request_duration_seconds_bucket", "wxtoken_propagation_lag_seconds_bucket",
		"wxtoken_credential_blocked", "wxtoken_credential_refused", "wxtoken_refusals_total",
		"wxtoken_foreign_fetches_total", "process_resident_memory_bytes", "go_memstats_heap_inuse_bytes",
	} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no dashboard query contains %q", want)
		}
	}

	// Each expression, with Grafana's variables filled in, as a recording
	// rule for promtool.
	tool := promtool(t)
	vars := strings.NewReplacer("$__rate_interval", "1m", "${job}", ".*", "$job", ".*", "${cred}", ".*", "$cred", ".*")
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, q := range qs {
		rules = append(rules, rule{fmt.Sprintf("dashboard:query_%d:check", i), vars.Replace(q.expr)})
	}
	data, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard-queries.yml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	runTool(t, dir, tool, "check", "rules", "dashboard-queries.yml")
}
