package main

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// at is an instant ms milliseconds after a fixed origin.
func at(ms int) time.Time {
	return time.Unix(1_800_000_000, 0).Add(time.Duration(ms) * time.Millisecond)
}

func TestExchangesOf(t *testing.T) {
	ledger := []wechattest.Fetch{
		{Kind: wechattest.KindQueryAuth, Code: "a", Start: at(0), At: at(100)},
		{Kind: wechattest.KindQueryAuth, Code: "b", Start: at(50), At: at(150)},
		{Kind: wechattest.KindQueryAuth, Code: "b", Start: at(200), At: at(300)}, // b again
		{Kind: wechattest.KindQueryAuth, Code: "b", Start: at(400), At: at(500)}, // and again: still one code
		{Kind: wechattest.KindQueryAuth, Code: "c", Start: at(600), At: at(700), Errcode: 61010},
		{Kind: wechattest.KindAuthorizer, Start: at(800), At: at(900)},
	}
	s := exchangesOf(ledger)
	if s.ok != 4 || s.failed != 1 || s.twice != 1 {
		t.Errorf("ok, failed, twice: got %d, %d, %d, want 4, 1, 1", s.ok, s.failed, s.twice)
	}
	if got, want := s.rate(), 4/0.5; got != want { // first start 0 ms, last success 500 ms
		t.Errorf("rate: got %v, want %v", got, want)
	}
}

func TestRefreshesOf(t *testing.T) {
	ledger := []wechattest.Fetch{
		{Kind: wechattest.KindAuthorizer, AppID: "x", Start: at(-1)}, // before the window
		{Kind: wechattest.KindAuthorizer, AppID: "x", Start: at(0)},
		{Kind: wechattest.KindAuthorizer, AppID: "y", Start: at(300)},
		{Kind: wechattest.KindAuthorizer, AppID: "z", Start: at(999)},
		{Kind: wechattest.KindAuthorizer, AppID: "x", Start: at(1500)}, // x again
		{Kind: wechattest.KindAuthorizer, AppID: "w", Start: at(2100), Errcode: 61023},
		{Kind: wechattest.KindAuthorizer, AppID: "w", Start: at(2200)},
		{Kind: wechattest.KindQueryAuth, AppID: "v", Start: at(2300)},
		{Kind: wechattest.KindAuthorizer, AppID: "u", Start: at(3000)}, // at the window's end
	}
	s := refreshesOf(ledger, at(0), at(3000))
	if s.ok != 4 || s.failed != 1 || s.again != 1 {
		t.Errorf("ok, failed, again: got %d, %d, %d, want 4, 1, 1", s.ok, s.failed, s.again)
	}
	if got, want := fmt.Sprint(s.perSecond), "[3 0 1]"; got != want {
		t.Errorf("perSecond: got %s, want %s", got, want)
	}
	if peak, median := s.busiest(); peak != 3 || median != 3 {
		t.Errorf("busiest: got %d, %d, want 3, 3", peak, median)
	}
	if got, want := s.histogram(2), "0-1: 2 s, 2-3: 1 s"; got != want {
		t.Errorf("histogram: got %q, want %q", got, want)
	}
}

// validUntil is an oracle: each token is valid until its instant.
type validUntil map[string]time.Time

func (v validUntil) Valid(token string, t time.Time) bool { return t.Before(v[token]) }

var _ oracle = validUntil(nil)

func TestAuthTracker(t *testing.T) {
	tr := newAuthTracker("saas")
	cred := func(id string) string { return tokenstore.AuthorizerCred("saas", id) }
	// Records live 10 s (margin 1 s) and plan their refresh at 8 s.
	rec := func(id string, seq uint64, value string, fetched int) tokenstore.Record {
		return tokenstore.Record{Cred: cred(id), Seq: seq, Value: value, FetchedAt: at(fetched),
			ExpiresAt: at(fetched + 10000), RefreshAt: at(fetched + 8000)}
	}
	tr.apply(tokenstore.Record{Cred: tokenstore.ComponentCred("saas"), Seq: 1, Value: "comp"}, at(0))
	tr.apply(tokenstore.Record{Cred: "app/token", Seq: 1, Value: "other"}, at(0)) // not the platform's
	tr.apply(rec("a", 1, "a1", 0), at(10))
	tr.apply(rec("b", 1, "b1", 0), at(10))
	tr.apply(rec("c", 1, "c1", 0), at(10))
	tr.apply(rec("a", 2, "a2", 8000), at(8100))   // on time
	tr.apply(rec("a", 1, "a1", 0), at(8200))      // an older record arriving late: ignored
	tr.apply(rec("b", 2, "b2", 9500), at(9500))   // after the margin (9 s): a gap, token alive
	tr.apply(rec("c", 2, "c2", 10500), at(10500)) // after expiry, the token died at 9.5 s
	if tr.comp == nil || tr.comp.Value != "comp" {
		t.Errorf("component: got %+v", tr.comp)
	}
	if served, refreshed := tr.counts(); served != 3 || refreshed != 3 {
		t.Errorf("counts: got %d served, %d refreshed, want 3, 3", served, refreshed)
	}
	sim := validUntil{"a1": at(10000), "b1": at(10000), "c1": at(8500), "a2": at(20000), "b2": at(20000), "c2": at(20000)}
	c := tr.checkExpiry(sim, time.Second)
	if c.replaced != 3 || c.late != 2 || c.dead != 1 {
		t.Errorf("replaced, late, dead: got %d, %d, %d, want 3, 2, 1", c.replaced, c.late, c.dead)
	}
	if c.worstGap != 1500*time.Millisecond || c.minLeft != -500*time.Millisecond {
		t.Errorf("worst gap, least left: got %v, %v, want 1.5s, -0.5s", c.worstGap, c.minLeft)
	}
	if got, want := c.delays, []time.Duration{100 * time.Millisecond, 1500 * time.Millisecond, 2500 * time.Millisecond}; len(got) != 3 || got[0] != want[0] || got[2] != want[2] {
		t.Errorf("delays: got %v, want %v", got, want)
	}
	if valid, usable := tr.validNow(sim, at(11000), time.Second); valid != 3 || usable != 3 {
		t.Errorf("validNow: got %d valid, %d usable, want 3, 3", valid, usable)
	}
	if got := tr.earliestRefresh(); !got.Equal(at(16000)) {
		t.Errorf("earliestRefresh: got %v, want %v", got, at(16000))
	}
}

func TestPerMethod(t *testing.T) {
	before := map[string]float64{"Range": 10, "Txn": 5, "Put": 1}
	after := map[string]float64{"Range": 40, "Txn": 25, "Put": 1, "LeaseGrant": 1}
	total, text := perMethod(before, after, 10)
	if math.Abs(total-5.1) > 1e-9 || text != "Range 3.0, Txn 2.0, LeaseGrant 0.1" {
		t.Errorf("perMethod: got %v %q, want 5.1 \"Range 3.0, Txn 2.0, LeaseGrant 0.1\"", total, text)
	}
}
