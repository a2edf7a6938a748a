package tokenstore_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/internal/etcdtest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

func TestAuthorizerCredNames(t *testing.T) {
	cred := tokenstore.AuthorizerCred("saas", "wx0123456789abcdef")
	if p, a, ok := tokenstore.ParseAuthorizerCred(cred); !ok || p != "saas" || a != "wx0123456789abcdef" {
		t.Fatalf("ParseAuthorizerCred(%q) = %q, %q, %v", cred, p, a, ok)
	}
	for _, bad := range []string{"saas/component", "saas/token", "a/b/authorizer/wx1", "/authorizer/wx1", "saas/authorizer/", "saas/authorizer/wx 1"} {
		if _, _, ok := tokenstore.ParseAuthorizerCred(bad); ok {
			t.Errorf("ParseAuthorizerCred(%q) accepted", bad)
		}
	}
}

// TestExchangeClaimsCodeOnce: the intent of a code's exchange deletes the
// code in its transaction, so a second exchange of the same code (a
// successor, or a retry on the same snapshot) is fenced out; the refresh
// token is published with the token, sealed, in one transaction.
func TestExchangeClaimsCodeOnce(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	s := platformStore(t, c)
	g := leaderKey(t, c, "/w/election/1")
	now := time.Now()
	cred := tokenstore.AuthorizerCred("saas", "wxauth1")
	if _, err := s.PutCode(ctx(t), "saas", tokenstore.AuthCode{Authorizer: "wxauth1", Code: "code-secret-1", ExpiresAt: now.Add(time.Hour), CreateTime: now}); err != nil {
		t.Fatal(err)
	}
	codes, _, err := s.AuthorizerCodes(ctx(t), "saas", "wxauth1")
	if err != nil || len(codes) != 1 {
		t.Fatalf("AuthorizerCodes = %d codes, %v", len(codes), err)
	}
	snap, err := s.Load(ctx(t), cred, tokenstore.Day(now))
	if err != nil {
		t.Fatal(err)
	}
	in := tokenstore.Intent{Seq: 1, Node: "n1", Started: now, Since: now, Reason: "authorization code"}
	rev, err := s.BeginExchange(ctx(t), g, snap, in, codes[0])
	if err != nil {
		t.Fatalf("BeginExchange: %v", err)
	}
	if left, _, _ := s.AuthorizerCodes(ctx(t), "saas", "wxauth1"); len(left) != 0 {
		t.Fatal("the code is still stored after its exchange began")
	}
	// A successor that read the code before the claim (same snapshot
	// revisions but for the intent it now sees) cannot claim it again.
	snap2, err := s.Load(ctx(t), cred, tokenstore.Day(now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.BeginExchange(ctx(t), g, snap2, in, codes[0]); !errors.Is(err, tokenstore.ErrFenced) {
		t.Fatalf("second claim of the same code: %v, want ErrFenced", err)
	}

	rec := tokenstore.Record{Cred: cred, Value: "authorizer-token-1", Seq: 1, Node: "n1", FetchedAt: now, ExpiresAt: now.Add(2 * time.Hour), RefreshAt: now.Add(time.Hour)}
	rt := tokenstore.RefreshToken{Value: "refreshtoken@@@secret", Source: tokenstore.RefreshFromQueryAuth, UpdatedAt: now}
	if err := s.PublishAuthorizer(ctx(t), g, snap, rev, rec, rt); err != nil {
		t.Fatalf("PublishAuthorizer: %v", err)
	}
	got, ok, err := s.RefreshToken(ctx(t), cred)
	if err != nil || !ok || got.Value != rt.Value || got.Source != tokenstore.RefreshFromQueryAuth {
		t.Fatalf("RefreshToken = %v, %v, %v", got, ok, err)
	}
	raw, err := c.Get(ctx(t), s.Keys().Refresh(cred))
	if err != nil || len(raw.Kvs) != 1 || strings.Contains(string(raw.Kvs[0].Value), "secret") {
		t.Fatal("the refresh token is not sealed in etcd")
	}
	if strings.Contains(got.String(), rt.Value) {
		t.Fatal("RefreshToken.String shows the token")
	}
	// A publish that the fence refuses writes no refresh token either.
	rt2 := tokenstore.RefreshToken{Value: "other-refresh", Source: tokenstore.RefreshFromRefresh, UpdatedAt: now}
	rec.Seq = 2
	if err := s.PublishAuthorizer(ctx(t), g, snap, rev, rec, rt2); !errors.Is(err, tokenstore.ErrFenced) {
		t.Fatalf("stale PublishAuthorizer: %v, want ErrFenced", err)
	}
	if got, _, _ := s.RefreshToken(ctx(t), cred); got.Value != rt.Value {
		t.Fatal("a refused publish changed the refresh token")
	}
	// PutRefreshToken is a compare-and-swap on the key's revision.
	if err := s.PutRefreshToken(ctx(t), nil, cred, rt2, got.Rev-1); !errors.Is(err, tokenstore.ErrFenced) {
		t.Fatalf("PutRefreshToken on an old revision: %v, want ErrFenced", err)
	}
	if err := s.PutRefreshToken(ctx(t), g, cred, rt2, got.Rev); err != nil {
		t.Fatalf("PutRefreshToken: %v", err)
	}
}

// TestRevokeDropsRefreshToken: revoking publishes a valueless tombstone
// above the current seq and deletes the refresh token and info.
func TestRevokeDropsRefreshToken(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	s := platformStore(t, c)
	g := leaderKey(t, c, "/w/election/1")
	now := time.Now()
	cred := tokenstore.AuthorizerCred("saas", "wxauth2")
	snap, _ := s.Load(ctx(t), cred, tokenstore.Day(now))
	rev, err := s.BeginFetch(ctx(t), g, snap, tokenstore.Intent{Seq: 1, Node: "n1", Started: now, Since: now}, 0)
	if err != nil {
		t.Fatal(err)
	}
	rec := tokenstore.Record{Cred: cred, Value: "tok", Seq: 1, Node: "n1", FetchedAt: now, ExpiresAt: now.Add(time.Hour), RefreshAt: now.Add(time.Minute)}
	if err := s.PublishAuthorizer(ctx(t), g, snap, rev, rec, tokenstore.RefreshToken{Value: "rt", Source: "query_auth"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAuthorizerInfo(ctx(t), g, "saas", tokenstore.AuthorizerInfo{AppID: "wxauth2", FuncInfo: []int{1}}); err != nil {
		t.Fatal(err)
	}
	snap, _ = s.Load(ctx(t), cred, tokenstore.Day(now))
	if err := s.Revoke(ctx(t), g, snap, "n1", now); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	after, _ := s.Load(ctx(t), cred, tokenstore.Day(now))
	if after.Record == nil || !after.Record.Revoked || after.Record.Value != "" || after.Record.Seq != 2 || after.Record.Usable(now, 0) {
		t.Fatalf("record after Revoke = %+v", after.Record)
	}
	if _, ok, _ := s.RefreshToken(ctx(t), cred); ok {
		t.Fatal("refresh token kept after Revoke")
	}
	if resp, _ := c.Get(ctx(t), s.Keys().AuthorizerInfo("saas", "wxauth2")); len(resp.Kvs) != 0 {
		t.Fatal("info kept after Revoke")
	}
	if err := s.Revoke(ctx(t), g, snap, "n1", now); !errors.Is(err, tokenstore.ErrFenced) {
		t.Fatalf("Revoke on a stale snapshot: %v, want ErrFenced", err)
	}
}
