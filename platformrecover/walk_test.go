package platformrecover_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/platformrecover"
)

// countingLister counts the pages asked of the Lister it wraps.
type countingLister struct {
	next  platformrecover.Lister
	pages atomic.Int32
}

func (c *countingLister) AuthorizerList(ctx context.Context, tok, comp string, offset, count int) (fetcher.AuthorizerPage, error) {
	c.pages.Add(1)
	return c.next.AuthorizerList(ctx, tok, comp, offset, count)
}

// TestWalk: every listed account once, in pages of 500 (the most WeChat
// gives); a stop or an error of fn ends the walk at once; Find finds an
// account on the last page and says when one is not listed.
func TestWalk(t *testing.T) {
	sim, fc := newSim(t, wechattest.Platform{})
	const n = 1203
	want := map[string]string{}
	for i := range n {
		id := fmt.Sprintf("wxauth%010d", i)
		rt, err := sim.SeedAuthorizer(compID, id)
		if err != nil {
			t.Fatal(err)
		}
		want[id] = rt
	}
	push, _ := sim.PushTicket(ctx(t), compID)
	tok, err := fc.ComponentToken(ctx(t), compID, compSecret, push.Ticket)
	if err != nil {
		t.Fatal(err)
	}

	l := &countingLister{next: fc}
	got := map[string]string{}
	err = platformrecover.Walk(ctx(t), l, tok.Value, compID, func(en fetcher.AuthorizerEntry) (bool, error) {
		if _, dup := got[en.AppID]; dup {
			t.Errorf("%s listed twice", en.AppID)
		}
		got[en.AppID] = en.RefreshToken
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n || l.pages.Load() != 3 {
		t.Fatalf("walk: %d accounts in %d pages, want %d in 3", len(got), l.pages.Load(), n)
	}
	for id, rt := range want {
		if got[id] != rt {
			t.Errorf("%s: not listed with its refresh token", id)
		}
	}

	l.pages.Store(0)
	seen := 0
	if err := platformrecover.Walk(ctx(t), l, tok.Value, compID, func(fetcher.AuthorizerEntry) (bool, error) {
		seen++
		return seen == 10, nil
	}); err != nil || seen != 10 || l.pages.Load() != 1 {
		t.Errorf("stop at 10: %d seen, %d pages, %v; want 10, 1, nil", seen, l.pages.Load(), err)
	}
	boom := errors.New("boom")
	if err := platformrecover.Walk(ctx(t), l, tok.Value, compID, func(fetcher.AuthorizerEntry) (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Errorf("fn's error: got %v", err)
	}

	last := fmt.Sprintf("wxauth%010d", n-1)
	en, ok, err := platformrecover.Find(ctx(t), fc, tok.Value, compID, last)
	if err != nil || !ok || en.RefreshToken != want[last] {
		t.Errorf("Find(%s): %v, %v, %v", last, en, ok, err)
	}
	if _, ok, err := platformrecover.Find(ctx(t), fc, tok.Value, compID, "wxnotlisted"); ok || err != nil {
		t.Errorf("Find of an account not listed: %v, %v", ok, err)
	}
	if err := platformrecover.Walk(ctx(t), fc, "dead-token", compID, func(fetcher.AuthorizerEntry) (bool, error) { return false, nil }); fetcher.ClassOf(err) != fetcher.TokenDead {
		t.Errorf("walk with a dead component token: %v, want TokenDead", err)
	}
}
