//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// prometheusImage is the monitoring profile's image the test builds
// (deploy/build-images.sh prometheus).
const prometheusImage = "wxtoken/prometheus:e2e"

// promResponse is the envelope of Prometheus's HTTP API.
type promResponse[T any] struct {
	Status string `json:"status"`
	Data   T      `json:"data"`
	Error  string `json:"error"`
}

type promTargets struct {
	ActiveTargets []struct {
		Labels    map[string]string `json:"labels"`
		Health    string            `json:"health"`
		LastError string            `json:"lastError"`
	} `json:"activeTargets"`
}

type promVector struct {
	Result []struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	} `json:"result"`
}

type promRules struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Name      string `json:"name"`
			Health    string `json:"health"`
			LastError string `json:"lastError"`
		} `json:"rules"`
	} `json:"groups"`
}

// promGet GETs path of the profile's Prometheus API into out.
func promGet[T any](ctx context.Context, base, path string, out *T) error {
	var r promResponse[T]
	if err := getJSON(ctx, http.DefaultClient, base+path, &r); err != nil {
		return err
	}
	if r.Status != "success" {
		return fmt.Errorf("GET %s: status %q: %s", path, r.Status, r.Error)
	}
	*out = r.Data
	return nil
}

// alertRuleCount is the number of rules in deploy/prometheus/alerts.yml.
func alertRuleCount(root string) (int, error) {
	data, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		return 0, err
	}
	var f struct {
		Groups []struct {
			Rules []yaml.Node `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		return 0, fmt.Errorf("alerts.yml: %w", err)
	}
	n := 0
	for _, g := range f.Groups {
		n += len(g.Rules)
	}
	return n, nil
}

// checkMonitoring waits until the monitoring profile's Prometheus scrapes
// every replica (health "up"), sees exactly one of them report
// wxtoken_leader 1, and has evaluated every alert rule without an error.
// It returns the leader Prometheus saw.
func (s *stack) checkMonitoring(ctx context.Context, timeout time.Duration) (string, error) {
	base := s.url("PROMETHEUS_PORT")
	want, err := alertRuleCount(s.root)
	if err != nil {
		return "", err
	}
	instances := map[string]bool{}
	for _, r := range replicas {
		instances[r+":8417"] = true
	}
	var leader string
	err = waitFor(ctx, timeout, func() (bool, string) {
		var tg promTargets
		if err := promGet(ctx, base, "/api/v1/targets?state=active", &tg); err != nil {
			return false, err.Error()
		}
		var up []string
		for _, t := range tg.ActiveTargets {
			inst := t.Labels["instance"]
			if !instances[inst] || t.Labels["job"] != "wxtoken" {
				return false, fmt.Sprintf("unexpected target %v", t.Labels)
			}
			if t.Health != "up" {
				return false, fmt.Sprintf("target %s is %s (%s)", inst, t.Health, t.LastError)
			}
			up = append(up, inst)
		}
		if len(up) != len(instances) {
			sort.Strings(up)
			return false, fmt.Sprintf("targets up: %v, want all of %d replicas", up, len(instances))
		}

		var leaders, all promVector
		if err := promGet(ctx, base, "/api/v1/query?query="+url.QueryEscape("wxtoken_leader == 1"), &leaders); err != nil {
			return false, err.Error()
		}
		if err := promGet(ctx, base, "/api/v1/query?query="+url.QueryEscape("wxtoken_leader"), &all); err != nil {
			return false, err.Error()
		}
		if len(all.Result) != len(instances) {
			return false, fmt.Sprintf("%d replicas report wxtoken_leader, want %d", len(all.Result), len(instances))
		}
		if len(leaders.Result) != 1 {
			var who []string
			for _, r := range leaders.Result {
				who = append(who, r.Metric["instance"])
			}
			return false, fmt.Sprintf("replicas reporting wxtoken_leader 1: %v, want exactly one", who)
		}
		leader = leaders.Result[0].Metric["instance"]

		var rules promRules
		if err := promGet(ctx, base, "/api/v1/rules", &rules); err != nil {
			return false, err.Error()
		}
		n := 0
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				n++
				if r.Health != "ok" {
					return false, fmt.Sprintf("rule %s of group %s: health %q %s", r.Name, g.Name, r.Health, r.LastError)
				}
			}
		}
		if n != want {
			return false, fmt.Sprintf("Prometheus has %d rules loaded, alerts.yml has %d", n, want)
		}
		return true, ""
	})
	if err != nil {
		return "", fmt.Errorf("monitoring profile: %w", err)
	}
	return strings.TrimSuffix(leader, ":8417"), nil
}
