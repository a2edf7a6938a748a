package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/fetcher/wechattest"
)

// env is what the sections share: the etcd cluster, a working directory,
// the wxtoken binary, and the options.
type env struct {
	opts options
	dir  string
	etcd *etcdCluster
	bin  string // wxtoken, built or given
}

// benchApp is one app of a generated configuration.
type benchApp struct {
	Name, AppID, Secret string
}

// benchApps returns n classic apps named prefix-00001 and so on.
func benchApps(prefix string, n int) []benchApp {
	apps := make([]benchApp, n)
	for i := range apps {
		apps[i] = benchApp{
			Name:   fmt.Sprintf("%s-%05d", prefix, i+1),
			AppID:  fmt.Sprintf("wx%s%08d", strings.ReplaceAll(prefix, "-", ""), i+1),
			Secret: fmt.Sprintf("secret-%s-%08d-4f9a2c", prefix, i+1),
		}
	}
	return apps
}

// addApps registers apps at the simulator.
func addApps(sim *wechattest.Server, apps []benchApp) {
	for _, a := range apps {
		sim.AddApp(a.AppID, a.Secret)
	}
}

// procConfig is the configuration of a `wxtoken serve` process.
type procConfig struct {
	Node        string
	Prefix      string
	Candidate   bool
	TTL         time.Duration
	Concurrency int
	SimURL      string
	Apps        []benchApp
	ListenUnix  string   // listen_unix, if set
	Env         []string // added to the process's environment ("GOMAXPROCS=1")
	// Timing, if set, replaces the refresh timing's defaults.
	Timing *refreshTiming
	// Extra is YAML appended to the file as it is (encryption:,
	// platforms:).
	Extra string
}

// refreshTiming is the refresh section's timing settings.
type refreshTiming struct {
	Before, Jitter, Margin, FetchTimeout, Overlap time.Duration
}

// writeConfig writes pc as a wxtoken YAML file at dir/<node>.yaml and
// returns its path.
func (e *env) writeConfig(pc procConfig) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "node: %s\nlisten: 127.0.0.1:0\ndata_dir: %s\nlog_level: warn\n", pc.Node, filepath.Join(e.dir, pc.Node+"-data"))
	if pc.ListenUnix != "" {
		fmt.Fprintf(&b, "listen_unix: %s\n", pc.ListenUnix)
	}
	fmt.Fprintf(&b, "etcd:\n  endpoints: [%s]\n  prefix: %s\n", strings.Join(e.etcd.endpoints, ", "), pc.Prefix)
	fmt.Fprintf(&b, "election:\n  ttl: %s\n  candidate: %t\n", pc.TTL, pc.Candidate)
	fmt.Fprintf(&b, "refresh:\n  concurrency: %d\n", pc.Concurrency)
	if t := pc.Timing; t != nil {
		fmt.Fprintf(&b, "  before: %s\n  jitter: %s\n  margin: %s\n  fetch_timeout: %s\n  overlap: %s\n",
			t.Before, t.Jitter, t.Margin, t.FetchTimeout, t.Overlap)
	}
	fmt.Fprintf(&b, "wechat:\n  base_url: %s\n  wecom_base_url: %s\n", pc.SimURL, pc.SimURL)
	if len(pc.Apps) > 1000 {
		// Thousands of apps go in an apps_file, as the README advises:
		// JSON reads several times faster than YAML.
		apps := make([]map[string]string, len(pc.Apps))
		for i, a := range pc.Apps {
			apps[i] = map[string]string{"name": a.Name, "kind": "classic", "appid": a.AppID, "secret": a.Secret}
		}
		js, err := json.Marshal(apps)
		if err != nil {
			return "", err
		}
		appsPath := filepath.Join(e.dir, pc.Node+"-apps.json")
		if err := os.WriteFile(appsPath, js, 0o600); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "apps_file: %s\n", appsPath)
	} else if len(pc.Apps) > 0 {
		b.WriteString("apps:\n")
		for _, a := range pc.Apps {
			fmt.Fprintf(&b, "  - {name: %s, kind: classic, appid: %s, secret: %s}\n", a.Name, a.AppID, a.Secret)
		}
	}
	b.WriteString(pc.Extra)
	path := filepath.Join(e.dir, pc.Node+".yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// startNode writes pc and starts a `wxtoken serve` process with it.
func (e *env) startNode(ctx context.Context, pc procConfig) (*wxtokenProc, error) {
	path, err := e.writeConfig(pc)
	if err != nil {
		return nil, err
	}
	return startWxtoken(ctx, e.bin, path, e.dir, pc.Node, pc.Env...)
}

// httpStatus GETs url and returns the status code and body.
func httpStatus(ctx context.Context, hc *http.Client, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitUntil polls cond every interval until it holds, d passes or ctx
// ends.
func waitUntil(ctx context.Context, d, interval time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", d, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
	return nil
}

// isLeader reports whether the process at url says it leads (/metrics).
func isLeader(ctx context.Context, hc *http.Client, url string) bool {
	code, body, err := httpStatus(ctx, hc, url+"/metrics")
	return err == nil && code == 200 && strings.Contains(body, "\nwxtoken_leader 1\n")
}
