package wechatproxy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/internal/replicatest"
)

// TestProxyAgainstReplica: raw HTTP callers, in no particular language,
// call WeChat through the replica while the token the replica serves has
// been killed by another host. Every call succeeds after one retry, and the
// leader fetches exactly one new token.
func TestProxyAgainstReplica(t *testing.T) {
	env := replicatest.Start(t, replicatest.Options{})
	before := env.Current(t, replicatest.App, "token")
	env.KillToken(t, replicatest.App)
	fetches := env.Fetches(replicatest.AppID, wechattest.KindClassic)

	const callers = 64
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			// Callers' own tokens are stripped, whatever they send.
			resp, err := http.Get(fmt.Sprintf("%s/wechat/demo/cgi-bin/getcallbackip?access_token=stale-%d", env.URL, i))
			if err != nil {
				t.Errorf("Get: %v", err)
				return
			}
			defer resp.Body.Close()
			var ans struct {
				Errcode int      `json:"errcode"`
				IPList  []string `json:"ip_list"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != http.StatusOK || ans.Errcode != 0 || len(ans.IPList) == 0 {
				t.Errorf("getcallbackip via the proxy: got status %d, errcode %d, %d IPs (err %v); want a success", resp.StatusCode, ans.Errcode, len(ans.IPList), err)
			}
		})
	}
	wg.Wait()
	if got := env.Fetches(replicatest.AppID, wechattest.KindClassic) - fetches; got != 1 {
		t.Errorf("new classic fetches by the replica: got %d, want 1", got)
	}
	if after := env.Current(t, replicatest.App, "token"); after.Seq != before.Seq+1 {
		t.Errorf("served seq: got %d, want %d", after.Seq, before.Seq+1)
	}
	// Dead uses: the callers' first tries, and the leader's check that the
	// reported token is really dead.
	if ok, dead := env.Sim.Uses(); ok != callers || dead < 2 || dead > callers+1 {
		t.Errorf("uses: got %d ok and %d dead, want %d ok and 2..%d dead", ok, dead, callers, callers+1)
	}
}

func TestProxyBadInputAgainstReplica(t *testing.T) {
	env := replicatest.Start(t, replicatest.Options{})
	tests := []struct {
		name       string
		method     string
		path       string
		body       []byte
		wantStatus int
		wantCode   string
	}{
		{"unknown app", http.MethodGet, "/wechat/nope/cgi-bin/getcallbackip", nil, http.StatusNotFound, "unknown_app"},
		{"body too large", http.MethodPost, "/wechat/demo/cgi-bin/media/upload", make([]byte, 1<<20+1), http.StatusRequestEntityTooLarge, "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, env.URL+tt.path, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			defer resp.Body.Close()
			var e struct{ Code, Message string }
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if resp.StatusCode != tt.wantStatus || e.Code != tt.wantCode {
				t.Errorf("got %d %q (%s), want %d %q", resp.StatusCode, e.Code, e.Message, tt.wantStatus, tt.wantCode)
			}
		})
	}
}
