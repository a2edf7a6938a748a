package wechattest

import (
	"testing"
	"time"
)

func TestStableNormal(t *testing.T) {
	e := newEnv(t, Config{})
	first := e.stable(false)
	tok1 := e.token(first)
	if first.ExpiresIn != 7200 {
		t.Errorf("first expires_in = %d, want 7200", first.ExpiresIn)
	}
	e.clock.Advance(1000 * time.Second)
	a := e.stable(false)
	if e.token(a) != tok1 || a.ExpiresIn != 6200 {
		t.Errorf("second call: same token %v, expires_in %d; want same token, 6200", e.token(a) == tok1, a.ExpiresIn)
	}

	// Just outside the last Overlap: unchanged.
	e.clock.Set(t0.Add(DefaultTokenTTL - DefaultOverlap - time.Second))
	a = e.stable(false)
	if e.token(a) != tok1 || a.ExpiresIn != 301 {
		t.Errorf("before rotation: same token %v, expires_in %d; want same token, 301", e.token(a) == tok1, a.ExpiresIn)
	}
	// Inside it: rotated, both valid until the old one expires.
	e.clock.Advance(time.Second)
	a = e.stable(false)
	tok2 := e.token(a)
	if tok2 == tok1 || a.ExpiresIn != 7200 {
		t.Errorf("in rotation window: new token %v, expires_in %d; want new token, 7200", tok2 != tok1, a.ExpiresIn)
	}
	if got := e.token(e.stable(false)); got != tok2 {
		t.Errorf("after rotation: a third token was returned")
	}
	e.wantUse(tok1, 0)
	e.clock.Set(t0.Add(DefaultTokenTTL))
	e.wantUse(tok1, 42001)
	e.wantUse(tok2, 0)

	var issued, reused int
	for _, f := range e.srv.Ledger() {
		if f.Issued {
			issued++
		} else if f.Token != "" {
			reused++
		}
	}
	if issued != 2 || reused != 3 {
		t.Errorf("ledger: %d issued, %d reused; want 2, 3", issued, reused)
	}
}

func TestStableIndependentOfClassic(t *testing.T) {
	e := newEnv(t, Config{})
	st := e.token(e.stable(false))
	for range 3 {
		e.token(e.classic())
	}
	e.wantUse(st, 0)
	cl := e.token(e.classic())
	e.token(e.stable(true))
	e.wantUse(cl, 0)
	if e.srv.Current(appID, KindStable) == e.srv.Current(appID, KindClassic) {
		t.Errorf("stable and classic share a token")
	}
}

func TestStableForced(t *testing.T) {
	e := newEnv(t, Config{})
	tok1 := e.token(e.stable(false))
	e.clock.Advance(time.Minute)
	tok2 := e.token(e.stable(true))
	if tok2 == tok1 {
		t.Fatalf("forced refresh returned the same token")
	}
	e.wantUse(tok1, 40001)

	e.clock.Advance(29 * time.Second)
	if got := e.token(e.stable(true)); got != tok2 {
		t.Errorf("forced within 30s: got a new token, want the current one")
	}
	e.wantUse(tok2, 0)
	e.clock.Advance(time.Second)
	tok3 := e.token(e.stable(true))
	if tok3 == tok2 {
		t.Errorf("forced 30s after the last refresh: same token, want a new one")
	}
	e.wantUse(tok2, 40001)
	if got := e.token(e.stable(false)); got != tok3 {
		t.Errorf("normal call after forced refresh: token differs from the forced one")
	}

	l := e.srv.Ledger()
	want := []struct{ forced, issued bool }{{false, true}, {true, true}, {true, false}, {true, true}, {false, false}}
	if len(l) != len(want) {
		t.Fatalf("ledger has %d lines, want %d", len(l), len(want))
	}
	for i, w := range want {
		if l[i].Forced != w.forced || l[i].Issued != w.issued || l[i].Kind != KindStable {
			t.Errorf("ledger[%d] = %+v, want forced=%v issued=%v", i, l[i], w.forced, w.issued)
		}
	}
}

func TestStableForceLimit(t *testing.T) {
	e := newEnv(t, Config{})
	seen := map[string]bool{}
	for i := range DefaultForceLimit {
		e.clock.Advance(DefaultForceInterval)
		tok := e.token(e.stable(true))
		if seen[tok] {
			t.Fatalf("forced call %d: token repeated", i+1)
		}
		seen[tok] = true
	}
	e.clock.Advance(DefaultForceInterval)
	wantCode(t, e.stable(true), 45009)
	// Normal calls are not limited by the forced limit.
	wantCode(t, e.stable(false), 0)

	e.clock.Set(time.Date(2025, 3, 10, 16, 0, 0, 0, time.UTC)) // next China day
	wantCode(t, e.stable(true), 0)
}

func TestStableDailyQuota(t *testing.T) {
	e := newEnv(t, Config{StableDailyQuota: 2})
	wantCode(t, e.stable(false), 0)
	wantCode(t, e.stable(false), 0)
	wantCode(t, e.stable(false), 45009)
	wantCode(t, e.classic(), 0) // classic quota is separate
}
