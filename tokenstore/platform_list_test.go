package tokenstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/internal/etcdtest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// TestAuthorizersPaging: pages of the authorizer list go on past values
// that do not decode (next is the last key read, not the last listed);
// RefreshStates tells a stored token rejected or unreadable without its
// value; Record reads a sealed record and says when one does not open.
func TestAuthorizersPaging(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	s := platformStore(t, c)
	k := s.Keys()
	at := time.Unix(1_800_000_000, 0).UTC()
	for _, id := range []string{"wxa", "wxd"} {
		if _, err := s.PutAuthorizerState(ctx(t), "saas", tokenstore.AuthorizerState{AppID: id, State: tokenstore.AuthorizerAuthorized, At: at}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"wxb", "wxc"} { // damaged
		if _, err := c.Put(ctx(t), k.PlatformAuthorizer("saas", id), "{"); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	after := ""
	for range 10 {
		page, next, err := s.Authorizers(ctx(t), "saas", after, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page {
			got = append(got, a.State.AppID)
		}
		if next == "" {
			break
		}
		after = next
	}
	if len(got) != 2 || got[0] != "wxa" || got[1] != "wxd" {
		t.Errorf("pages of 1: got %v, want [wxa wxd]", got)
	}

	cred := func(id string) string { return tokenstore.AuthorizerCred("saas", id) }
	if err := s.PutRefreshToken(ctx(t), nil, cred("wxa"), tokenstore.RefreshToken{Value: "rt-a", Source: "refresh"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRefreshToken(ctx(t), nil, cred("wxb"), tokenstore.RefreshToken{Value: "rt-b", Rejected: true, Source: "refresh"}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx(t), k.Refresh(cred("wxc")), "not sealed"); err != nil {
		t.Fatal(err)
	}
	states, err := s.RefreshStates(ctx(t), "saas")
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 3 || states["wxa"].Rejected || states["wxa"].Unreadable || !states["wxb"].Rejected || !states["wxc"].Unreadable || states["wxa"].Rev == 0 {
		t.Errorf("refresh states: got %+v", states)
	}

	if _, ok, err := s.Record(ctx(t), "saas/component"); ok || err != nil {
		t.Errorf("Record of none: %v, %v", ok, err)
	}
	if err := s.PublishUnfenced(ctx(t), tokenstore.Record{Cred: "saas/component", Value: "v", Seq: 1, ExpiresAt: at}); err != nil {
		t.Fatal(err)
	}
	if rec, ok, err := s.Record(ctx(t), "saas/component"); !ok || err != nil || rec.Value != "v" {
		t.Errorf("Record: %v, %v, %v", rec.Seq, ok, err)
	}
	if _, err := c.Put(ctx(t), k.Cred("saas/component"), "forged"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Record(ctx(t), "saas/component"); !errors.Is(err, tokenstore.ErrRecordUnreadable) {
		t.Errorf("Record of a forged value: %v, want ErrRecordUnreadable", err)
	}
}
