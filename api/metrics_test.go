package api_test

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wxtoken/wxtoken/api"
	"github.com/wxtoken/wxtoken/internal/replicatest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// TestRequestMetrics checks that every request is timed once under its
// route and status class, on the fast path and through the mux, and that
// GET /metrics serves the registry it was given.
func TestRequestMetrics(t *testing.T) {
	env := replicatest.Start(t, replicatest.Options{})
	reg := prometheus.NewPedanticRegistry()
	a, err := api.New(api.Config{
		Cache: env.Replica.Cache(), Store: tokenstore.New(nil, env.Config.Etcd.Prefix),
		Apps:   []api.App{{Name: replicatest.App, Kind: "classic", AppID: replicatest.AppID, Tickets: []string{"jsapi"}, ExposeTicket: true}},
		Margin: env.Config.Refresh.Margin, Overlap: env.Config.Refresh.Overlap,
		Registerer: reg, Gatherer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	a.Mount(api.Route{Pattern: "GET /ui/", Label: "ui", Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})}, api.Route{Pattern: "GET /unlabelled", Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("implicit 200"))
	})})
	for _, target := range []string{
		"/v1/apps/demo/token", "/v1/apps/demo/token", // fast path
		"/v1/apps/de%6do/token", // the mux's token route
		"/v1/apps/nope/token",   // fast path, 404
		"/v1/apps/demo/ticket/jsapi", "/healthz", "/ui/page", "/unlabelled", "/nothing/here",
	} {
		serve(a, http.MethodGet, target)
	}
	w := serve(a, http.MethodGet, "/metrics")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "wxtoken_token_reads_total 4\n") {
		t.Errorf("GET /metrics: %d\n%s", w.Code, w.Body)
	}
	want := map[string]uint64{
		"token 2xx": 3, "token 4xx": 1, "ticket 2xx": 1, "healthz 2xx": 1,
		"ui 4xx": 1, "other 2xx": 1, "other 4xx": 1, "metrics 2xx": 1,
	}
	if got := requests(t, reg); !maps.Equal(got, want) {
		t.Errorf("requests by route and status class:\n got %v\nwant %v", got, want)
	}
}

// requests returns the sample counts of the request histogram by "route
// status_class".
func requests(t *testing.T, g prometheus.Gatherer) map[string]uint64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "wxtoken_http_request_duration_seconds" {
			continue
		}
		if mf.GetType() != dto.MetricType_HISTOGRAM {
			t.Errorf("type %v, want histogram", mf.GetType())
		}
		for _, m := range mf.GetMetric() {
			l := m.GetLabel() // sorted: route, status_class
			got[l[0].GetValue()+" "+l[1].GetValue()] = m.GetHistogram().GetSampleCount()
		}
	}
	return got
}

// TestCredentialMetrics checks the gauges computed from the cache at
// scrape time.
func TestCredentialMetrics(t *testing.T) {
	env := replicatest.Start(t, replicatest.Options{})
	reg := prometheus.NewPedanticRegistry()
	now := time.Now()
	_, err := api.New(api.Config{
		Cache: env.Replica.Cache(), Store: tokenstore.New(nil, env.Config.Etcd.Prefix),
		Apps: []api.App{{Name: replicatest.App, Kind: "classic", AppID: replicatest.AppID, Tickets: []string{"jsapi"}},
			{Name: "none", Kind: "classic", AppID: "wxnone"}},
		Margin: env.Config.Refresh.Margin, Overlap: env.Config.Refresh.Overlap,
		Registerer: reg, Gatherer: reg, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	tok := env.Current(t, replicatest.App, "token")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += " " + l.GetValue()
			}
			got[key] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	for key, want := range map[string]float64{
		"wxtoken_credential_usable demo/token":             1,
		"wxtoken_credential_usable demo/jsapi":             1,
		"wxtoken_credential_usable none/token":             0,
		"wxtoken_credential_seq demo/token":                float64(tok.Seq),
		"wxtoken_credential_expires_in_seconds demo/token": tok.ExpiresAt.Sub(now).Seconds(),
		"wxtoken_token_reads_total":                        0,
		"wxtoken_token_misses_total":                       0,
		"wxtoken_invalidations_total":                      0,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (found %v), want %v", key, v, ok, want)
		}
	}
	if _, ok := got["wxtoken_credential_seq none/token"]; ok {
		t.Error("a seq for a credential never published")
	}
	if _, ok := got["wxtoken_ready"]; !ok {
		t.Error("no wxtoken_ready")
	}
}

// TestServeTokenAllocs guards the hot route: timing it allocates nothing.
func TestServeTokenAllocs(t *testing.T) {
	env := replicatest.Start(t, replicatest.Options{})
	a := newAPI(t, env, nil)
	req := httptest.NewRequest(http.MethodGet, "/v1/apps/"+replicatest.App+"/token", nil)
	w := &discard{h: http.Header{}}
	a.ServeHTTP(w, req) // the first read encodes the body and makes the series
	if allocs := testing.AllocsPerRun(100, func() { clear(w.h); a.ServeHTTP(w, req) }); allocs != 0 {
		t.Errorf("token read: %v allocations, want 0", allocs)
	}
}
