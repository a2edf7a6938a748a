package sdktest

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/silenceper/wechat/v2"
	"github.com/silenceper/wechat/v2/cache"
	"github.com/silenceper/wechat/v2/credential"
	miniConfig "github.com/silenceper/wechat/v2/miniprogram/config"
	"github.com/silenceper/wechat/v2/officialaccount"
	offConfig "github.com/silenceper/wechat/v2/officialaccount/config"
	"github.com/silenceper/wechat/v2/util"

	"github.com/wxtoken/wxtoken/client"
	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/internal/replicatest"
)

// The adapter satisfies the SDK's own interfaces.
var (
	_ credential.AccessTokenHandle        = (*client.AppToken)(nil)
	_ credential.AccessTokenContextHandle = (*client.AppToken)(nil)
)

// silenceper sends every call with the package-level util.DefaultHTTPClient
// to its fixed https://api.weixin.qq.com URLs; util.SetURIModifier is how
// an app points it elsewhere. Both are global, so these tests do not run
// in parallel and put them back when they end.
func pointAt(t *testing.T, simURL string, hc *http.Client) {
	t.Helper()
	util.SetURIModifier(func(uri string) string { return strings.Replace(uri, "https://api.weixin.qq.com", simURL, 1) })
	prev := util.DefaultHTTPClient
	if hc != nil {
		util.DefaultHTTPClient = hc
	}
	t.Cleanup(func() { util.SetURIModifier(nil); util.DefaultHTTPClient = prev })
}

// officialAccount is silenceper's official account for the replica's demo
// app with its token from the replica. It is given no secret: it never
// fetches a token itself.
func officialAccount(t *testing.T, c *client.Client) *officialaccount.OfficialAccount {
	t.Helper()
	oa := wechat.NewWechat().GetOfficialAccount(&offConfig.Config{AppID: replicatest.AppID, Cache: cache.NewMemory()})
	oa.SetAccessTokenHandle(c.AppToken(replicatest.App))
	return oa
}

func newClient(t *testing.T, env *replicatest.Env) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{BaseURL: env.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSilenceperOfficialAccount: the SDK's getcallbackip call succeeds at
// the simulator with the replica's token, and the SDK fetches no token.
func TestSilenceperOfficialAccount(t *testing.T) {
	env := replicatest.Start(t, replicatest.Options{})
	pointAt(t, env.Sim.URL, nil)
	oa := officialAccount(t, newClient(t, env))
	fetches := len(env.Sim.Ledger())
	okBefore, _ := env.Sim.Uses()

	ips, err := oa.GetBasic().GetCallbackIP()
	if err != nil || len(ips) == 0 {
		t.Fatalf("GetCallbackIP: got %v, %v; want WeChat's IP list", ips, err)
	}
	if tok, err := oa.GetContext().GetAccessToken(); err != nil || tok != env.Current(t, replicatest.App, "token").Value {
		t.Errorf("the SDK's token: got %q, %v; want the replica's", tok, err)
	}
	if ok, _ := env.Sim.Uses(); ok != okBefore+1 {
		t.Errorf("successful uses at WeChat: got %d, want %d", ok, okBefore+1)
	}
	if got := len(env.Sim.Ledger()); got != fetches {
		t.Errorf("token fetches at WeChat: got %d, want %d (none by the SDK)", got, fetches)
	}
}

// TestSilenceperDeadToken: silenceper hands a dead-token answer back to the
// app as a *util.CommonError. The app either reports the token with the
// adapter and calls again, or lets client.Transport (as the SDK's HTTP
// client) report it and retry, so that the call succeeds at once. Either
// way the replica's leader fetches one new token.
func TestSilenceperDeadToken(t *testing.T) {
	env := replicatest.Start(t, replicatest.Options{})
	c := newClient(t, env)
	ctx := context.Background()

	t.Run("adapter", func(t *testing.T) {
		pointAt(t, env.Sim.URL, nil)
		oa := officialAccount(t, c)
		if _, err := oa.GetBasic().GetCallbackIP(); err != nil { // cache the token about to die
			t.Fatalf("GetCallbackIP: %v", err)
		}
		before := env.Current(t, replicatest.App, "token")
		env.KillToken(t, replicatest.App)
		fetches := env.Fetches(replicatest.AppID, wechattest.KindClassic)

		_, err := oa.GetBasic().GetCallbackIP()
		var ce *util.CommonError
		if !errors.As(err, &ce) || !client.IsDeadToken(int(ce.ErrCode)) {
			t.Fatalf("GetCallbackIP with a dead token: got %v, want a dead-token *util.CommonError", err)
		}
		dead, _ := oa.GetContext().GetAccessToken()
		next, err := c.AppToken(replicatest.App).Invalidate(ctx, dead)
		if err != nil || next == dead {
			t.Fatalf("Invalidate: got %q, %v; want a new token", next, err)
		}
		if ips, err := oa.GetBasic().GetCallbackIP(); err != nil || len(ips) == 0 {
			t.Errorf("GetCallbackIP after the report: got %v, %v; want a success", ips, err)
		}
		if got := env.Fetches(replicatest.AppID, wechattest.KindClassic) - fetches; got != 1 {
			t.Errorf("new fetches by the replica: got %d, want 1", got)
		}
		if after := env.Current(t, replicatest.App, "token"); after.Seq != before.Seq+1 || after.Value != next {
			t.Errorf("served: seq %d, want %d with the token Invalidate answered", after.Seq, before.Seq+1)
		}
	})

	t.Run("transport", func(t *testing.T) {
		pointAt(t, env.Sim.URL, &http.Client{Transport: c.Transport(replicatest.App, nil)})
		oa := officialAccount(t, c)
		if _, err := oa.GetBasic().GetCallbackIP(); err != nil {
			t.Fatalf("GetCallbackIP: %v", err)
		}
		before := env.Current(t, replicatest.App, "token")
		env.KillToken(t, replicatest.App)
		fetches := env.Fetches(replicatest.AppID, wechattest.KindClassic)
		_, deadBefore := env.Sim.Uses()

		if ips, err := oa.GetBasic().GetCallbackIP(); err != nil || len(ips) == 0 {
			t.Fatalf("GetCallbackIP across a dead token: got %v, %v; want a success", ips, err)
		}
		if _, dead := env.Sim.Uses(); dead <= deadBefore {
			t.Errorf("dead uses at WeChat: got %d, want more than %d (the first try used the dead token)", dead, deadBefore)
		}
		if got := env.Fetches(replicatest.AppID, wechattest.KindClassic) - fetches; got != 1 {
			t.Errorf("new fetches by the replica: got %d, want 1", got)
		}
		if after := env.Current(t, replicatest.App, "token"); after.Seq != before.Seq+1 {
			t.Errorf("served seq: got %d, want %d", after.Seq, before.Seq+1)
		}
	})
}

// TestSilenceperMiniProgram: a mini program on a stable token takes it
// through the context handle, with the caller's ctx. (The simulator has no
// mini-program-only API to call; the token works wherever WeChat takes a
// stable token, as the official account test shows for classic ones.)
func TestSilenceperMiniProgram(t *testing.T) {
	env := replicatest.Start(t, replicatest.Options{Apps: []config.App{{Name: "mini", Kind: config.KindStable,
		AppID: "wx0000000000000002", Secret: config.NewSecret("mini-secret-0002"), DailyBudget: config.DefaultDailyBudget}}})
	pointAt(t, env.Sim.URL, nil)
	c := newClient(t, env)
	mp := wechat.NewWechat().GetMiniProgram(&miniConfig.Config{AppID: "wx0000000000000002", Cache: cache.NewMemory()})
	mp.SetAccessTokenContextHandle(c.AppToken("mini"))

	tok, err := mp.GetContext().GetAccessTokenContext(context.Background())
	if err != nil || tok != env.Current(t, "mini", "token").Value || !env.Sim.Valid(tok, env.Clock.Now()) {
		t.Fatalf("the SDK's token: got %q, %v; want the replica's, valid at WeChat", tok, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.AppToken("other").GetAccessTokenContext(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("GetAccessTokenContext with a cancelled ctx: got %v, want context.Canceled", err)
	}
}
