package platformrecover_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/platformrecover"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// TestRecover: against the simulator, the refresh tokens etcd lacks, holds
// rejected (61023) or cannot open are restored from the list, sealed,
// with an authorized state at the listed auth_time where etcd has none; a
// readable token is left as it is, even if it differs from WeChat's (a
// leader's, perhaps newer); an account etcd says unauthorized since, and
// one whose code was never exchanged, are skipped. A second run changes
// nothing. No token is logged or stored in the clear.
func TestRecover(t *testing.T) {
	e := newEnv(t, wechattest.Platform{})
	const (
		missing    = "wxmissing0000001"
		rejected   = "wxrejected000001"
		unreadable = "wxunreadable0001"
		good       = "wxgood0000000001"
		unauth     = "wxunauth00000001"
		nocode     = "wxnocode00000001"
	)
	rts := map[string]string{}
	for _, id := range []string{missing, rejected, unreadable, good, unauth} {
		rts[id] = e.seed(id)
	}
	if _, err := e.sim.Authorize(ctx(t), compID, nocode, wechattest.AuthorizeOptions{}); err == nil {
		t.Fatal("Authorize without a push URL: want the push's error (the code is issued all the same)")
	}
	e.putRefresh(rejected, tokenstore.RefreshToken{Value: "refresh-token-dead", Rejected: true, Source: tokenstore.RefreshFromRefresh})
	if _, err := e.etcd.Put(ctx(t), e.store.Keys().Refresh(tokenstore.AuthorizerCred(plat, unreadable)), "sealed with another key"); err != nil {
		t.Fatal(err)
	}
	goodRev := e.putRefresh(good, tokenstore.RefreshToken{Value: "refresh-token-leaders", Source: tokenstore.RefreshFromRefresh})
	goodState := tokenstore.AuthorizerState{AppID: good, State: tokenstore.AuthorizerAuthorized, At: time.Unix(1_700_000_000, 0).UTC(), Node: "events"}
	later := tokenstore.AuthorizerState{AppID: unauth, State: tokenstore.AuthorizerUnauthorized, At: time.Now().Add(time.Hour).Truncate(time.Second).UTC(), Node: "events"}
	for _, st := range []tokenstore.AuthorizerState{goodState, later} {
		if _, err := e.store.PutAuthorizerState(ctx(t), plat, st); err != nil {
			t.Fatal(err)
		}
	}

	got, err := platformrecover.Recover(ctx(t), e.config(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := platformrecover.Counts{Listed: 6, Restored: 3, Fine: 1, Skipped: 2, NoRefreshToken: 1, Unauthorized: 1, States: 3}
	if got != want {
		t.Errorf("counts: got %+v, want %+v", got, want)
	}
	for _, id := range []string{missing, rejected, unreadable} {
		rt, ok := e.refresh(id)
		if !ok || rt.Value != rts[id] || rt.Rejected || rt.Source != tokenstore.RefreshFromRecover {
			t.Errorf("%s: stored %v (value is the listed one: %t), want the listed token from recover", id, rt, rt.Value == rts[id])
		}
		st, ok, err := e.store.Authorizer(ctx(t), plat, id)
		if err != nil || !ok || st.State != tokenstore.AuthorizerAuthorized || st.At.IsZero() || st.Node != "recover-test" {
			t.Errorf("%s: state %+v, %v, %v; want authorized by recover", id, st, ok, err)
		}
	}
	if rt, _ := e.refresh(good); rt.Value != "refresh-token-leaders" || rt.Rev != goodRev {
		t.Errorf("a readable token was touched: %v", rt)
	}
	if st, _, _ := e.store.Authorizer(ctx(t), plat, good); !st.At.Equal(goodState.At) || st.Node != "events" {
		t.Errorf("a stored state was rewritten: %+v", st)
	}
	if _, ok := e.refresh(unauth); ok {
		t.Error("an account unauthorized after its listed authorization was restored")
	}

	again, err := platformrecover.Recover(ctx(t), e.config(nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := (platformrecover.Counts{Listed: 6, Fine: 4, Skipped: 2, NoRefreshToken: 1, Unauthorized: 1}); again != want {
		t.Errorf("second run: got %+v, want %+v", again, want)
	}
	e.noSecrets(e.comp, rts[missing], rts[rejected], rts[unreadable], rts[good], rts[unauth])
}

// leaderLister plays a leader that refreshes an authorizer between
// Recover's read of the stored refresh token and its write: after WeChat
// answered the list (with the refresh token of that instant), the leader
// refreshes with it (WeChat rotates it) and publishes the new one. It does
// so on the first times list calls (every call: -1). With rejected, the
// leader instead marks what it stores rejected (a 61023 of its own).
type leaderLister struct {
	e        *env
	appID    string
	times    int
	rejected bool
	calls    int
	issued   []string // the refresh tokens the leader published
}

func (l *leaderLister) AuthorizerList(ctx context.Context, tok, comp string, offset, count int) (fetcher.AuthorizerPage, error) {
	page, err := l.e.fc.AuthorizerList(ctx, tok, comp, offset, count)
	if err != nil || (l.times >= 0 && l.calls >= l.times) {
		return page, err
	}
	l.calls++
	cred := tokenstore.AuthorizerCred(plat, l.appID)
	cur, _, _ := l.e.store.RefreshToken(ctx, cred)
	if l.rejected {
		v := fmt.Sprintf("refresh-token-rejected-%d", l.calls)
		l.issued = append(l.issued, v)
		return page, l.e.store.PutRefreshToken(ctx, nil, cred, tokenstore.RefreshToken{Value: v, Rejected: true, Source: tokenstore.RefreshFromRefresh}, cur.Rev)
	}
	listed := l.e.sim.RefreshToken(compID, l.appID) // what WeChat holds now: the leader recovered it, say
	at, err := l.e.fc.AuthorizerToken(ctx, l.e.comp, compID, l.appID, listed)
	if err != nil {
		return page, err
	}
	l.issued = append(l.issued, at.RefreshToken)
	if err := l.e.store.PutRefreshToken(ctx, nil, cred, tokenstore.RefreshToken{Value: at.RefreshToken, Source: tokenstore.RefreshFromRefresh}, cur.Rev); err != nil {
		return page, err
	}
	return page, nil
}

// TestRecoverLeaderPublishWins: a refresh token a leader publishes after
// Recover read the stored one, and after WeChat listed an older one, is
// never overwritten with the listed (now dead) token: the write is a
// compare-and-swap on the revision read before the list call; the account
// is read again and judged by another walk. When a writer keeps changing
// it, Recover gives up on it after its rounds, and says so.
func TestRecoverLeaderPublishWins(t *testing.T) {
	e := newEnv(t, wechattest.Platform{RotateRefresh: 1})
	const id = "wxauth0000000001"
	e.seed(id)
	e.putRefresh(id, tokenstore.RefreshToken{Value: "refresh-token-dead", Rejected: true, Source: tokenstore.RefreshFromRefresh})

	l := &leaderLister{e: e, appID: id, times: 1}
	got, err := platformrecover.Recover(ctx(t), e.config(l))
	if err != nil {
		t.Fatal(err)
	}
	rt, _ := e.refresh(id)
	if current := e.sim.RefreshToken(compID, id); rt.Value != current || rt.Value != l.issued[0] || rt.Source != tokenstore.RefreshFromRefresh {
		t.Fatalf("stored %v: the leader's token (WeChat's current one) is %t, want it kept", rt, rt.Value == current)
	}
	if want := (platformrecover.Counts{Listed: 1, Fine: 1, States: 1}); got != want {
		t.Errorf("counts: got %+v, want %+v", got, want)
	}

	// A writer that changes it before every write (to a token it finds
	// rejected): left to it.
	e.putRefresh(id, tokenstore.RefreshToken{Value: "refresh-token-dead-2", Rejected: true, Source: tokenstore.RefreshFromRefresh})
	l = &leaderLister{e: e, appID: id, times: -1, rejected: true}
	cfg := e.config(l)
	cfg.Rounds = 2
	got, err = platformrecover.Recover(ctx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := (platformrecover.Counts{Listed: 1, Skipped: 1, Changing: 1}); got != want {
		t.Errorf("counts with a writer at every walk: got %+v, want %+v", got, want)
	}
	if rt, _ := e.refresh(id); rt.Value != l.issued[len(l.issued)-1] {
		t.Errorf("with a writer at every walk: stored is not the writer's last token")
	}
	e.noSecrets(append(l.issued, e.comp)...)
}

// TestRecoverNeedsComponentToken: without a usable component token in etcd
// Recover calls nothing and says why.
func TestRecoverNeedsComponentToken(t *testing.T) {
	e := newEnv(t, wechattest.Platform{})
	cfg := e.config(nil)
	cfg.Platform = "other" // no component token stored
	if _, err := platformrecover.Recover(ctx(t), cfg); !errors.Is(err, platformrecover.ErrNoComponentToken) {
		t.Errorf("no component token: %v", err)
	}
	cfg = e.config(nil)
	cfg.Now = func() time.Time { return time.Now().Add(3 * time.Hour) }
	if _, err := platformrecover.Recover(ctx(t), cfg); !errors.Is(err, platformrecover.ErrNoComponentToken) {
		t.Errorf("an expired component token: %v", err)
	}
}
