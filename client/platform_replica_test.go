package client_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/client"
	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/internal/replicatest"
	"github.com/wxtoken/wxtoken/seal"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// The platform of TestPlatformAgainstReplica, as the simulator plays it.
const (
	platName    = "saas"
	platCompID  = "wxcomp0000000001"
	platSecret  = "comp-secret-7d1e"
	platToken   = "msg-token-4b2a"
	platAESKey  = "Q0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaMDEyMzQ1Njc"
	platAuthzID = "wxauth0000000001"
)

// waitFor polls cond until it holds, for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestPlatformAgainstReplica runs a platform on a replica against the
// simulator's Open Platform: after a ticket push the client reads the
// component token; its pre-auth code is the one an account authorizes
// with; the authorizer's token, read through the client, is valid at
// WeChat and listed with its scopes; once the account unauthorizes, a
// read and a report answer 404 unauthorized_authorizer.
func TestPlatformAgainstReplica(t *testing.T) {
	raw := make([]byte, seal.KeySize)
	_, _ = rand.Read(raw)
	key, err := seal.NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	env := replicatest.Start(t, replicatest.Options{Edit: func(c *config.Config) {
		c.Encryption = config.Encryption{Keys: []seal.Key{key}}
		c.Platforms = []config.Platform{{Name: platName, ComponentAppID: platCompID, ComponentSecret: config.NewSecret(platSecret),
			Token: config.NewSecret(platToken), EncodingAESKey: config.NewSecret(platAESKey), DailyBudget: 100}}
	}})
	if err := env.Sim.AddPlatform(wechattest.Platform{AppID: platCompID, Secret: platSecret, Token: platToken,
		EncodingAESKey: platAESKey, PushURL: env.URL + "/v1/platforms/" + platName + "/events", TicketEvery: -1}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cache := env.Replica.Cache()
	c, err := client.New(client.Config{BaseURL: env.URL})
	if err != nil {
		t.Fatal(err)
	}

	if p, err := env.Sim.PushTicket(ctx, platCompID); err != nil || !p.Accepted() {
		t.Fatalf("push ticket: %v (status %d)", err, p.Status)
	}
	rec, err := cache.Wait(ctx, tokenstore.ComponentCred(platName), 0)
	if err != nil {
		t.Fatalf("no component token: %v", err)
	}
	comp, err := c.ComponentToken(ctx, platName)
	if err != nil {
		t.Fatalf("ComponentToken: %v", err)
	}
	if comp.AccessToken != rec.Value || comp.Seq != rec.Seq || comp.App != platName || comp.Kind != "component" || comp.ExpiresIn <= 0 {
		t.Errorf("ComponentToken: got app %q kind %q seq %d expires_in %d, want seq %d of %s, kind component",
			comp.App, comp.Kind, comp.Seq, comp.ExpiresIn, rec.Seq, platName)
	}
	if !env.Sim.Valid(comp.AccessToken, env.Clock.Now()) {
		t.Error("ComponentToken: the token is not valid at WeChat")
	}

	pre, err := c.Preauth(ctx, platName, "https://saas.example.com/authorized")
	if err != nil {
		t.Fatalf("Preauth: %v", err)
	}
	if pre.ExpiresIn <= 0 || !strings.Contains(pre.AuthURL, "component_appid="+platCompID) ||
		!strings.Contains(pre.AuthURL, "pre_auth_code="+url.QueryEscape(pre.PreAuthCode)) {
		t.Errorf("Preauth: expires_in %d, auth_url without the component appid or the code", pre.ExpiresIn)
	}
	// The simulator takes only a live pre-auth code of the platform.
	if a, err := env.Sim.Authorize(ctx, platCompID, platAuthzID, wechattest.AuthorizeOptions{PreAuthCode: pre.PreAuthCode, FuncInfo: []int{1, 15}}); err != nil || !a.Push.Accepted() {
		t.Fatalf("authorize with the client's pre-auth code: %v (push %d)", err, a.Push.Status)
	}
	cred := tokenstore.AuthorizerCred(platName, platAuthzID)
	if rec, err = cache.Wait(ctx, cred, 0); err != nil {
		t.Fatalf("no authorizer token: %v", err)
	}
	tok, err := c.AuthorizerToken(ctx, platName, platAuthzID)
	if err != nil {
		t.Fatalf("AuthorizerToken: %v", err)
	}
	if tok.AccessToken != rec.Value || tok.App != platName || tok.Kind != "authorizer" || tok.AuthorizerAppID != platAuthzID || tok.ExpiresIn <= 0 {
		t.Errorf("AuthorizerToken: got app %q kind %q authorizer %q expires_in %d, want the record's token of %s",
			tok.App, tok.Kind, tok.AuthorizerAppID, tok.ExpiresIn, platAuthzID)
	}
	if !env.Sim.Valid(tok.AccessToken, env.Clock.Now()) {
		t.Error("AuthorizerToken: the token is not valid at WeChat")
	}
	// The scopes are stored just after the token.
	var list client.AuthorizerList
	waitFor(t, "the authorizer's scopes", func() bool {
		list, err = c.Authorizers(ctx, platName, "", 0)
		return err != nil || len(list.Authorizers) == 1 && len(list.Authorizers[0].Scopes) > 0
	})
	if err != nil || len(list.Authorizers) != 1 {
		t.Fatalf("Authorizers: %+v, %v", list, err)
	}
	if a := list.Authorizers[0]; a.AppID != platAuthzID || a.State != client.AuthorizerAuthorized || !slices.Equal(a.Scopes, []int{1, 15}) || a.AuthorizedAt.IsZero() {
		t.Errorf("Authorizers: got %+v, want %s authorized with scopes [1 15]", a, platAuthzID)
	}

	if p, err := env.Sim.Unauthorize(ctx, platCompID, platAuthzID); err != nil || !p.Accepted() {
		t.Fatalf("unauthorize: %v (status %d)", err, p.Status)
	}
	for !rec.Revoked {
		if rec, err = cache.Wait(ctx, cred, rec.Seq); err != nil {
			t.Fatalf("not revoked: %v", err)
		}
	}
	other, err := client.New(client.Config{BaseURL: env.URL})
	if err != nil {
		t.Fatal(err)
	}
	var ae *client.Error
	_, err = other.AuthorizerToken(ctx, platName, platAuthzID)
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || ae.Code != client.CodeUnauthorizedAuthorizer {
		t.Errorf("AuthorizerToken(revoked): got %v, want a 404 unauthorized_authorizer *Error", err)
	}
	// The first client still holds the token; its report learns the news.
	_, err = c.InvalidateAuthorizer(ctx, platName, platAuthzID, tok.AccessToken)
	if !errors.As(err, &ae) || ae.Code != client.CodeUnauthorizedAuthorizer {
		t.Errorf("InvalidateAuthorizer(revoked): got %v, want unauthorized_authorizer", err)
	}
	if err != nil && strings.Contains(err.Error(), tok.AccessToken) {
		t.Error("InvalidateAuthorizer: the error holds the token")
	}
	// ... and forgets the token: the next read asks, and is told.
	if got, err := c.AuthorizerToken(ctx, platName, platAuthzID); !errors.As(err, &ae) || ae.Code != client.CodeUnauthorizedAuthorizer {
		t.Errorf("AuthorizerToken after the report's 404: got seq %d, %v; want unauthorized_authorizer, not the revoked token from the cache", got.Seq, err)
	}
	if list, err = c.Authorizers(ctx, platName, "", 0); err != nil || len(list.Authorizers) != 1 || list.Authorizers[0].State != client.AuthorizerUnauthorized {
		t.Errorf("Authorizers after the unauthorization: %+v, %v; want %s unauthorized", list, err, platAuthzID)
	}
}
