package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/wxtoken/wxtoken/api"
	"github.com/wxtoken/wxtoken/internal/replicatest"
)

func get(t *testing.T, hc *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, string(b)
}

// TestUIOnReplica reads the status page of a running replica: it is a
// self-contained HTML page that reloads itself, shows what /v1/status
// shows, and holds no token, ticket or secret.
func TestUIOnReplica(t *testing.T) {
	env := replicatest.Start(t, replicatest.Options{})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	for _, path := range []string{"/", "/ui"} {
		resp, _ := get(t, noRedirect, env.URL+path)
		if loc := resp.Header.Get("Location"); resp.StatusCode/100 != 3 || loc != "/ui/" {
			t.Errorf("GET %s: got %d to %q, want a redirect to /ui/", path, resp.StatusCode, loc)
		}
	}
	if resp, _ := get(t, http.DefaultClient, env.URL+"/ui/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ui/nope: got %d, want 404", resp.StatusCode)
	}

	_, body := get(t, http.DefaultClient, env.URL+"/v1/status")
	var st api.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("status: %v", err)
	}
	resp, page := get(t, http.DefaultClient, env.URL+"/ui/")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /ui/: got %d %q, want 200 text/html; charset=utf-8", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control: got %q, want no-store", got)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy: got %q, want default-src 'none'", csp)
	}
	for _, want := range []string{
		`<meta http-equiv="refresh" content="5">`,
		`<meta name="viewport" content="width=device-width, initial-scale=1">`,
		`<dd id="leader">` + st.Leader + `</dd>`,
		`<dd id="node">` + st.Node + `</dd>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if st.Leader != "test-replica" || len(st.Credentials) != 2 {
		t.Fatalf("status: got leader %q and %d credentials, want test-replica and 2", st.Leader, len(st.Credentials))
	}
	for _, cs := range st.Credentials {
		if !strings.Contains(page, `data-cred="`+cs.Cred+`"`) {
			t.Errorf("page lacks credential %s", cs.Cred)
		}
	}
	// Self-contained: no scripts, no external stylesheets, images or links.
	if m := regexp.MustCompile(`(?i)<script|<link|<img|<iframe|\bsrc=|\bhref=|url\(`).FindString(page); m != "" {
		t.Errorf("page loads something: found %q", m)
	}
	for what, secret := range map[string]string{
		"token":  env.Current(t, replicatest.App, "token").Value,
		"ticket": env.Current(t, replicatest.App, "jsapi").Value,
		"secret": replicatest.Secret,
	} {
		if strings.Contains(page, secret) {
			t.Errorf("page shows the %s", what)
		}
	}
}
