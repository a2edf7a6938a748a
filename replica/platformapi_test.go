package replica_test

import (
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/seal"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// TestPlatformRoutes: a replica serves a platform's component token,
// authorizers and authorizer tokens from its cache, a serve-only replica
// too (it follows the platform's credentials as it follows its apps'),
// to the clients whose scopes name the platform as an app.
func TestPlatformRoutes(t *testing.T) {
	e := newEnv(t, 1, wechattest.Config{})
	cfg := e.testConfig("papi1")
	cfg.Election.Candidate = false // no leader: the test publishes
	key := platformConfig(t, cfg)
	const (
		saasReader = "saas-reader-0123456789abcdef0123"
		shopAll    = "shop-all-0123456789abcdef0123456"
	)
	sha := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	cfg.Clients = []config.Client{
		{Name: "saas-reader", TokenSHA256: sha(saasReader), Apps: []string{"saas"}, Allow: []string{"read"}},
		{Name: "shop-all", TokenSHA256: sha(shopAll), Apps: []string{"shop"}, Allow: config.Actions},
	}
	r := e.start(cfg, nil)

	ring, err := seal.NewRing(key)
	if err != nil {
		t.Fatal(err)
	}
	store := tokenstore.New(e.clus.Client(0), "/wxtoken")
	store.SetSealing(tokenstore.Sealing{Sealer: ring})
	now := time.Now()
	for _, rec := range []tokenstore.Record{
		{Cred: tokenstore.ComponentCred("saas"), Value: "component-token-a1", Seq: 1},
		{Cred: tokenstore.AuthorizerCred("saas", platAuthzID), Value: "authorizer-token-b1", Seq: 1},
	} {
		rec.FetchedAt, rec.ExpiresAt, rec.RefreshAt = now, now.Add(2*time.Hour), now.Add(time.Hour)
		if err := store.PublishUnfenced(tctx(t), rec); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.PutAuthorizerState(tctx(t), "saas", tokenstore.AuthorizerState{AppID: platAuthzID, State: tokenstore.AuthorizerAuthorized, At: now}); err != nil {
		t.Fatal(err)
	}

	get := func(method, url, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(`{"redirect_uri":"https://example.com/cb"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	token := func(base, path string) string {
		t.Helper()
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		waitFor(t, 10*time.Second, "the token at "+base+path, func() bool {
			status, body := get("GET", base+path, saasReader)
			return status == http.StatusOK && json.Unmarshal([]byte(body), &tok) == nil
		})
		return tok.AccessToken
	}
	side := e.testConfig("papi2")
	side.Election.Candidate = false
	side.Encryption, side.Platforms, side.Clients = cfg.Encryption, cfg.Platforms, cfg.Clients
	side.Apps = nil // a sidecar of the platform alone
	r2 := e.start(side, nil)
	for _, base := range []string{r.URL(), r2.URL()} {
		if got := token(base, "/v1/platforms/saas/token"); got != "component-token-a1" {
			t.Errorf("%s: component token %q", base, got)
		}
		if got := token(base, "/v1/platforms/saas/authorizers/"+platAuthzID+"/token"); got != "authorizer-token-b1" {
			t.Errorf("%s: authorizer token %q", base, got)
		}
		if status, body := get("GET", base+"/v1/platforms/saas/authorizers", saasReader); status != http.StatusOK || !strings.Contains(body, platAuthzID) {
			t.Errorf("%s: authorizers: %d %s", base, status, body)
		}
	}
	for _, c := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/v1/platforms/saas/token", shopAll, http.StatusForbidden},
		{"GET", "/v1/platforms/saas/authorizers", shopAll, http.StatusForbidden},
		{"GET", "/v1/platforms/saas/authorizers/" + platAuthzID + "/token", shopAll, http.StatusForbidden},
		{"POST", "/v1/platforms/saas/authorizers/" + platAuthzID + "/token/invalidate", saasReader, http.StatusForbidden},
		{"POST", "/v1/platforms/saas/preauth", saasReader, http.StatusForbidden},
		{"GET", "/v1/platforms/saas/token", "not-a-client-token-0123456789", http.StatusUnauthorized},
		{"GET", "/v1/platforms/nope/token", saasReader, http.StatusForbidden}, // scopes first: nothing said of other names
	} {
		if status, body := get(c.method, r.URL()+c.path, c.token); status != c.want {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, status, body, c.want)
		}
	}
	if strings.Contains(e.logs.String(), "component-token-a1") || strings.Contains(e.logs.String(), "authorizer-token-b1") {
		t.Error("a token is in the logs")
	}
}
