package replica_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/refresher"
)

// from builds a fetcher whose calls leave from ip, standing in for a host
// with its own egress address.
func from(t *testing.T, simURL, ip string) func(refresher.Fetcher) refresher.Fetcher {
	return func(refresher.Fetcher) refresher.Fetcher {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
		}}
		f, err := fetcher.New(fetcher.Config{BaseURL: simURL, WeComBaseURL: simURL, HTTPClient: hc})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
}

// TestWhoMayLead: a leader whose host WeChat refuses (40164) steps down
// and stays out, so a candidate whose IP is allowed takes over; a replica
// with candidate: false serves but never calls WeChat.
func TestWhoMayLead(t *testing.T) {
	e := newEnv(t, 1, wechattest.Config{TokenTTL: time.Hour})
	e.sim.SetAllowIPs([]string{"127.0.0.3"})

	refused := e.start(e.testConfig("refused"), from(t, e.sim.URL, "127.0.0.2"))
	waitFor(t, 10*time.Second, "the refused host to step down", func() bool {
		return refused.Refresher().Metrics().HostRefusals() == 1
	})
	watcherCfg := e.testConfig("watcher")
	watcherCfg.Election.Candidate = false
	watcher := e.start(watcherCfg, nil) // would call from 127.0.0.1
	allowed := e.start(e.testConfig("allowed"), from(t, e.sim.URL, "127.0.0.3"))
	waitFor(t, 10*time.Second, "a token on the watcher", func() bool {
		_, code, _ := getToken(watcher.URL(), "shop")
		return code == http.StatusOK
	})
	// The refused host may go on leading (for every other credential); the
	// app it is refused for is fetched by the allowed candidate.
	waitFor(t, 10*time.Second, "the token on allowed", func() bool { return len(allowed.Cache().Records()) == 1 })
	if rec := allowed.Cache().Records(); rec[0].Node != "allowed" {
		t.Errorf("records %+v, want shop's published by allowed", rec)
	}
	var refusals, others int
	for _, f := range e.sim.Ledger() {
		switch {
		case f.Caller == "127.0.0.2" && f.Errcode == 40164:
			refusals++
		case f.Caller != "127.0.0.3":
			others++
		}
	}
	if refusals != 1 || others != 0 {
		t.Errorf("ledger: %d refusals of the refused host (want 1), %d calls from other hosts (want 0)", refusals, others)
	}
	if watcher.Refresher().Metrics().Leader() {
		t.Error("the watcher leads")
	}
}
