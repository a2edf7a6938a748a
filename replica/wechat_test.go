package replica

import (
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestCallKind(t *testing.T) {
	for path, want := range map[string]string{
		"/cgi-bin/token":                "classic",
		"/egress/cgi-bin/token":         "classic",
		"/cgi-bin/stable_token":         "stable",
		"/cgi-bin/gettoken":             "wecom",
		"/cgi-bin/ticket/getticket":     "ticket",
		"/cgi-bin/getcallbackip":        "callbackip",
		"/cgi-bin/message/custom/send":  "other",
		"/cgi-bin/token/something-else": "other",
		"":                              "other",
	} {
		if got := callKind(path); got != want {
			t.Errorf("callKind(%q) = %q, want %q", path, got, want)
		}
	}
}

// TestWeChatClientOutcomes: each call is observed once under its kind and
// outcome, and the client refuses redirects like the fetcher's own.
func TestWeChatClientOutcomes(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/cgi-bin/token", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"errcode":40013,"errmsg":"invalid appid"}`)) // HTTP 200: ok
	})
	mux.HandleFunc("/cgi-bin/stable_token", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	})
	mux.HandleFunc("/cgi-bin/gettoken", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://elsewhere.example/", http.StatusFound)
	})
	mux.HandleFunc("/cgi-bin/ticket/getticket", func(w http.ResponseWriter, _ *http.Request) {
		// The request arrived; the answer never does.
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	// A port nobody listens on: the dial fails, nothing is sent.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	calls := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "calls"}, []string{"kind", "outcome"})
	hc := wechatClient(calls)
	for _, u := range []string{
		srv.URL + "/cgi-bin/token", srv.URL + "/cgi-bin/stable_token", srv.URL + "/cgi-bin/gettoken",
		srv.URL + "/cgi-bin/ticket/getticket", closed + "/cgi-bin/getcallbackip",
	} {
		resp, err := hc.Get(u)
		if err == nil {
			resp.Body.Close()
		}
		if u == srv.URL+"/cgi-bin/gettoken" && (err != nil || resp.StatusCode != http.StatusFound) {
			t.Errorf("redirect: got %v, %v; want the 302 itself", resp, err)
		}
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(calls)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, m := range mfs[0].GetMetric() {
		l := m.GetLabel() // sorted by name: kind, outcome
		got[l[0].GetValue()+" "+l[1].GetValue()] = m.GetHistogram().GetSampleCount()
	}
	want := map[string]uint64{"classic ok": 1, "stable http_5xx": 1, "wecom http_other": 1, "ticket ambiguous": 1, "callbackip unsent": 1}
	if !maps.Equal(got, want) {
		t.Errorf("observations:\n got %v\nwant %v", got, want)
	}
}
