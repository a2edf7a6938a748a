package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/wxtoken/wxtoken/client"
	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/internal/replicatest"
	"github.com/wxtoken/wxtoken/jssdk"
)

// callbackIP makes the simulator's cheap "API call" through hc and returns
// its errcode.
func callbackIP(ctx context.Context, hc *http.Client, simURL string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, simURL+"/cgi-bin/getcallbackip", nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var ans struct {
		Errcode int      `json:"errcode"`
		IPList  []string `json:"ip_list"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return 0, err
	}
	if ans.Errcode == 0 && len(ans.IPList) == 0 {
		return 0, fmt.Errorf("no ip_list in a success")
	}
	return ans.Errcode, nil
}

// TestTransportAgainstReplica: many callers, on several clients, hold a
// token that another host's fetch has killed. Each call fails once with
// 40001, is retried with the new token and succeeds, and the replica's
// leader fetches exactly one new token.
func TestTransportAgainstReplica(t *testing.T) {
	env := replicatest.Start(t, replicatest.Options{})
	ctx := context.Background()
	const clients, callersEach = 4, 16
	var hcs []*http.Client
	for range clients {
		c, err := client.New(client.Config{BaseURL: env.URL})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if _, err := c.Token(ctx, replicatest.App); err != nil { // cache the token about to die
			t.Fatalf("Token: %v", err)
		}
		hcs = append(hcs, &http.Client{Transport: c.Transport(replicatest.App, nil)})
	}
	before := env.Current(t, replicatest.App, "token")
	env.KillToken(t, replicatest.App)
	fetches := env.Fetches(replicatest.AppID, wechattest.KindClassic)

	var wg sync.WaitGroup
	for _, hc := range hcs {
		for range callersEach {
			wg.Go(func() {
				code, err := callbackIP(ctx, hc, env.Sim.URL)
				if err != nil || code != 0 {
					t.Errorf("getcallbackip: got errcode %d, err %v; want a success", code, err)
				}
			})
		}
	}
	wg.Wait()
	if got := env.Fetches(replicatest.AppID, wechattest.KindClassic) - fetches; got != 1 {
		t.Errorf("new classic fetches by the replica: got %d, want 1", got)
	}
	after := env.Current(t, replicatest.App, "token")
	if after.Seq != before.Seq+1 {
		t.Errorf("served seq: got %d, want %d", after.Seq, before.Seq+1)
	}
	// Dead uses: the callers' first tries, and the leader's check that the
	// reported token is really dead.
	if ok, dead := env.Sim.Uses(); ok != clients*callersEach || dead < 2 || dead > clients*callersEach+1 {
		t.Errorf("uses: got %d ok and %d dead, want %d ok and 2..%d dead", ok, dead, clients*callersEach, clients*callersEach+1)
	}
}

func TestClientAgainstReplica(t *testing.T) {
	env := replicatest.Start(t, replicatest.Options{Edit: func(c *config.Config) {
		c.Apps[0].JSSDKDomains = []string{"shop.example.com"}
	}})
	ctx := context.Background()
	c, err := client.New(client.Config{BaseURL: env.URL})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tok, err := c.Token(ctx, replicatest.App)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	cur := env.Current(t, replicatest.App, "token")
	if tok.AccessToken != cur.Value || tok.Seq != cur.Seq || tok.Kind != "classic" || tok.ExpiresIn <= 0 {
		t.Errorf("Token: got %+v, want seq %d of kind classic with a positive expires_in", tok, cur.Seq)
	}
	if same, err := c.Invalidate(ctx, replicatest.App, tok.AccessToken); err != nil || same.AccessToken != tok.AccessToken {
		t.Fatalf("Invalidate of a token WeChat still accepts: %+v, %v; want it back", same, err)
	}
	env.KillToken(t, replicatest.App)
	next, err := c.Invalidate(ctx, replicatest.App, tok.AccessToken)
	if err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	if next.Seq != tok.Seq+1 || next.AccessToken == tok.AccessToken {
		t.Errorf("Invalidate: got seq %d, want a new token with seq %d", next.Seq, tok.Seq+1)
	}
	if !env.Sim.Valid(next.AccessToken, env.Clock.Now()) {
		t.Errorf("Invalidate: the new token is not valid at WeChat")
	}

	_, err = c.Token(ctx, "nope")
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Code != client.CodeUnknownApp || ae.Status != http.StatusNotFound {
		t.Errorf("Token(nope): got %v, want a 404 unknown_app *Error", err)
	}

	sig, err := c.Signature(ctx, replicatest.App, "https://shop.example.com/pay?item=1&n=2")
	if err != nil {
		t.Fatalf("Signature: %v", err)
	}
	ticket := env.Current(t, replicatest.App, "jsapi").Value
	if want := jssdk.Sign(ticket, sig.NonceStr, sig.Timestamp, "https://shop.example.com/pay?item=1&n=2"); sig.Signature != want || sig.AppID != replicatest.AppID {
		t.Errorf("Signature: got %+v, want signature %s for appId %s", sig, want, replicatest.AppID)
	}
	_, err = c.Signature(ctx, replicatest.App, "https://shop.example.com/pay#frag")
	if !errors.As(err, &ae) || ae.Code != client.CodeBadURL {
		t.Errorf("Signature(fragment): got %v, want bad_url", err)
	}
	_, err = c.Signature(ctx, replicatest.App, "https://evil.example/pay")
	if !errors.As(err, &ae) || ae.Code != client.CodeForbiddenURL || ae.Status != http.StatusForbidden {
		t.Errorf("Signature(foreign host): got %v, want 403 forbidden_url", err)
	}

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Leader != "test-replica" || len(st.Replicas) != 1 || len(st.Credentials) != 2 {
		t.Errorf("Status: got leader %q, %d replicas, %d credentials; want test-replica, 1, 2", st.Leader, len(st.Replicas), len(st.Credentials))
	}
	for _, cs := range st.Credentials {
		if cs.Budget != 1000 || cs.FetchesToday < 1 {
			t.Errorf("Status %s: got budget %d, %d fetches today; want 1000 and at least 1", cs.Cred, cs.Budget, cs.FetchesToday)
		}
	}
}

func TestTransportUnknownApp(t *testing.T) {
	env := replicatest.Start(t, replicatest.Options{})
	c, err := client.New(client.Config{BaseURL: env.URL})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	hc := &http.Client{Transport: c.Transport("nope", nil)}
	resp, err := hc.Get(env.Sim.URL + "/cgi-bin/getcallbackip")
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Fatal("Get: got an answer, want an error")
	}
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Code != client.CodeUnknownApp {
		t.Errorf("Get: got %v, want unknown_app", err)
	}
}
