package client_test

import (
	"context"
	"errors"
	"testing"

	"github.com/wxtoken/wxtoken/client"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/internal/replicatest"
)

// TestAppTokenAgainstReplica checks the SDK adapters' contracts against a
// running replica. The SDKs themselves are exercised in the sdktest module.
func TestAppTokenAgainstReplica(t *testing.T) {
	env := replicatest.Start(t, replicatest.Options{})
	ctx := context.Background()
	c, err := client.New(client.Config{BaseURL: env.URL})
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	at := c.AppToken(replicatest.App)
	at.OnError = func(err error) { errs = append(errs, err) }
	cur := env.Current(t, replicatest.App, "token")

	if tok, err := at.GetAccessToken(); err != nil || tok != cur.Value {
		t.Errorf("GetAccessToken: got %q, %v; want the served token", tok, err)
	}
	if tok, err := at.GetAccessTokenContext(ctx); err != nil || tok != cur.Value {
		t.Errorf("GetAccessTokenContext: got %q, %v; want the served token", tok, err)
	}
	m := at.PowerWeChatToken("powerwechat.access_token.x", false)
	if m["access_token"] != cur.Value || m["expires_in"].(float64) <= 0 {
		t.Errorf("PowerWeChatToken(refresh false): got %v, want the served token and a positive float64 expires_in", m)
	}

	// PowerWeChat asks with refresh true after a dead-token answer: the
	// token is reported and the answer is the new one.
	env.KillToken(t, replicatest.App)
	m = at.PowerWeChatToken("powerwechat.access_token.x", true)
	next := env.Current(t, replicatest.App, "token")
	if next.Seq != cur.Seq+1 || m["access_token"] != next.Value || !env.Sim.Valid(next.Value, env.Clock.Now()) {
		t.Errorf("PowerWeChatToken(refresh true): got %v, seq %d; want the new token of seq %d, valid at WeChat", m, next.Seq, cur.Seq+1)
	}
	if m := at.PowerWeChatToken("k", false); m["access_token"] != next.Value {
		t.Errorf("PowerWeChatToken after the refresh: got %v, want the new token", m)
	}
	fetches := env.Fetches(replicatest.AppID, wechattest.KindClassic)
	// A report of a token that is no longer current refreshes nothing.
	if tok, err := at.Invalidate(ctx, cur.Value); err != nil || tok != next.Value {
		t.Errorf("Invalidate(old token): got %q, %v; want the current token", tok, err)
	}
	if got := env.Fetches(replicatest.AppID, wechattest.KindClassic); got != fetches {
		t.Errorf("fetches after reporting an old token: got %d, want %d", got, fetches)
	}
	if len(errs) != 0 {
		t.Errorf("OnError: got %v, want no call", errs)
	}

	// Errors: the SDK interfaces' own way, or OnError for PowerWeChat.
	bad := c.AppToken("nope")
	var ae *client.Error
	if _, err := bad.GetAccessToken(); !errors.As(err, &ae) || ae.Code != client.CodeUnknownApp {
		t.Errorf("GetAccessToken(nope): got %v, want unknown_app", err)
	}
	bad.OnError = func(err error) { errs = append(errs, err) }
	m = bad.PowerWeChatToken("k", false)
	if _, ok := m["access_token"]; ok || m["expires_in"] != float64(0) {
		t.Errorf("PowerWeChatToken(nope): got %v, want no access_token and expires_in 0.0", m)
	}
	if len(errs) != 1 || !errors.As(errs[0], &ae) || ae.Code != client.CodeUnknownApp {
		t.Errorf("OnError: got %v, want one unknown_app", errs)
	}
}
