package replica_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
)

// TestCredentialKinds: classic with tickets, stable and WeCom tokens are
// all fetched and served; a report of the stable token forces a refresh;
// WeCom, which hands back the same token while it lives, is not asked in
// a loop and never served dead.
func TestCredentialKinds(t *testing.T) {
	e := newEnv(t, 1, wechattest.Config{TokenTTL: 6 * time.Second, Overlap: 2 * time.Second})
	e.sim.AddApp("wxmini0000000001", "mini-secret-0001")
	e.sim.AddCorp("ww00000000000001", "corp-secret-0001")
	cfg := e.testConfig("r0")
	cfg.Refresh.Overlap = 2 * time.Second
	cfg.Apps[0].Tickets = []string{config.TicketJSAPI, config.TicketWxCard}
	cfg.Apps[0].ExposeTicket = true
	cfg.Apps = append(cfg.Apps,
		config.App{Name: "mini", Kind: config.KindStable, AppID: "wxmini0000000001", Secret: config.NewSecret("mini-secret-0001"), DailyBudget: 1000},
		config.App{Name: "crm", Kind: config.KindWeCom, AppID: "ww00000000000001", Secret: config.NewSecret("corp-secret-0001"), DailyBudget: 1000},
	)
	r := e.start(cfg, nil)
	for _, path := range []string{"/v1/apps/shop/token", "/v1/apps/shop/ticket/jsapi", "/v1/apps/shop/ticket/wx_card", "/v1/apps/mini/token", "/v1/apps/crm/token"} {
		waitFor(t, 10*time.Second, path, func() bool { return status(r.URL()+path) == http.StatusOK })
	}
	mini, _, err := getToken(r.URL(), "mini")
	if err != nil {
		t.Fatal(err)
	}
	// A live stable token reported dead is left alone ...
	if same, _, err := invalidate(r.URL(), "mini", mini.AccessToken); err != nil || same.AccessToken != mini.AccessToken {
		t.Fatalf("report of a live stable token: %+v, %v; want it back", same, err)
	}
	// ... a dead one (another system forced a refresh) is force-refreshed.
	resp, err := http.Post(e.sim.URL+"/cgi-bin/stable_token", "application/json", strings.NewReader(
		`{"grant_type":"client_credential","appid":"wxmini0000000001","secret":"mini-secret-0001","force_refresh":true}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	fresh, _, err := invalidate(r.URL(), "mini", mini.AccessToken)
	if err != nil || fresh.AccessToken == mini.AccessToken || !e.sim.Valid(fresh.AccessToken, time.Now()) {
		t.Fatalf("stable invalidate: %+v, %v; want a new, valid token", fresh, err)
	}
	// Two lifetimes of every kind; then check the ledger.
	start := time.Now()
	cons := e.consume("crm")
	waitFor(t, 30*time.Second, "two WeCom lifetimes", func() bool { return time.Since(start) > 12*time.Second })
	cons.check(t, e.sim)
	var wecom, forced int
	for _, f := range e.sim.Ledger() {
		switch {
		case f.Kind == "wecom":
			wecom++
		case f.Kind == "stable" && f.Forced:
			forced++
		}
	}
	if forced != 2 { // the other system's and ours
		t.Errorf("forced stable refreshes: %d, want 2", forced)
	}
	// A 6 s WeCom token is asked for at most twice a lifetime.
	if wecom > 2*int(time.Since(start)/(6*time.Second))+4 {
		t.Errorf("%d WeCom calls in %v: a loop", wecom, time.Since(start))
	}
	// WeCom hands back the same token until it expires, so its served
	// life ends margin early each cycle: only the others are always up.
	for _, path := range []string{"/v1/apps/shop/ticket/jsapi", "/v1/apps/mini/token"} {
		if code := status(r.URL() + path); code != http.StatusOK {
			t.Errorf("%s: status %d after two lifetimes", path, code)
		}
	}
}
