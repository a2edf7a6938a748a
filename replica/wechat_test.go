package replica

import (
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
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
	hc := wechatClient(calls, 8)
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

// TestWeChatClientKeepsConnections: a leader with 8 calls in flight keeps
// its 8 connections between rounds (each a TLS handshake against WeChat);
// net/http's default of 2 idle connections per host opened 6 new ones
// every round.
func TestWeChatClientKeepsConnections(t *testing.T) {
	const inFlight, rounds = 8, 5
	var mu sync.Mutex
	arrived, conns := 0, 0
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ch := release
		arrived++
		if arrived == inFlight { // the round is complete: answer them all
			arrived = 0
			close(ch)
			release = make(chan struct{})
		}
		mu.Unlock()
		<-ch
		_, _ = w.Write([]byte(`{"access_token":"x","expires_in":7200}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()
	hc := wechatClient(prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "calls"}, []string{"kind", "outcome"}), inFlight)
	for range rounds {
		var wg sync.WaitGroup
		for range inFlight {
			wg.Go(func() {
				resp, err := hc.Get(srv.URL + "/cgi-bin/token")
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		}
		wg.Wait()
	}
	mu.Lock()
	defer mu.Unlock()
	if conns > inFlight {
		t.Fatalf("%d connections for %d rounds of %d calls in flight, want at most %d", conns, rounds, inFlight, inFlight)
	}
}
