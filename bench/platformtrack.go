package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// authTracker follows the records of one platform as a replica's cache
// receives them (tokenstore.CacheConfig.OnApply): the component token,
// each authorizer's current record, and every replacement of an
// authorizer's record with the instant it happened, so that the section
// can ask the simulator whether the replaced token was still alive when
// it stopped being served. Its methods are safe for concurrent use.
type authTracker struct {
	component string // the component credential
	prefix    string // the authorizer credentials' common prefix

	mu        sync.Mutex
	comp      *tokenstore.Record
	cur       map[string]tokenstore.Record // authorizer credential -> newest record
	refreshed int                          // authorizers whose newest record is a refresh (seq >= 2)
	repl      []replacement
	chg       chan struct{} // closed and replaced on every change
}

// oracle says whether a token was valid at an instant; the simulator
// (*wechattest.Server) is one.
type oracle interface {
	Valid(token string, at time.Time) bool
}

var _ oracle = (*wechattest.Server)(nil)

// replacement is an authorizer record replaced by a newer one at at.
type replacement struct {
	prev tokenstore.Record
	at   time.Time
}

func newAuthTracker(platform string) *authTracker {
	return &authTracker{
		component: tokenstore.ComponentCred(platform),
		prefix:    tokenstore.AuthorizerCred(platform, ""),
		cur:       map[string]tokenstore.Record{},
		chg:       make(chan struct{}),
	}
}

// apply takes a record the cache applied at at. It runs on the cache's
// watch goroutine.
func (t *authTracker) apply(r tokenstore.Record, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case r.Cred == t.component:
		t.comp = &r
	case strings.HasPrefix(r.Cred, t.prefix):
		prev, ok := t.cur[r.Cred]
		if ok && r.Seq <= prev.Seq {
			return
		}
		if ok {
			t.repl = append(t.repl, replacement{prev: prev, at: at})
		}
		if r.Seq >= 2 && (!ok || prev.Seq < 2) {
			t.refreshed++
		}
		t.cur[r.Cred] = r
	default:
		return
	}
	close(t.chg)
	t.chg = make(chan struct{})
}

// wait returns once cond, called under the tracker's lock, holds; or an
// error after d or when ctx ends.
func (t *authTracker) wait(ctx context.Context, d time.Duration, what string, cond func() bool) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		t.mu.Lock()
		ok, ch := cond(), t.chg
		t.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return fmt.Errorf("timed out after %v waiting for %s", d, what)
		}
	}
}

// counts returns how many authorizers have a record, and how many a
// refreshed one.
func (t *authTracker) counts() (served, refreshed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.cur), t.refreshed
}

// validNow counts the authorizers whose current record holds a token that
// the simulator accepts at now, and those whose record is usable (more
// than margin left by its own expiry).
func (t *authTracker) validNow(sim oracle, now time.Time, margin time.Duration) (valid, usable int) {
	t.mu.Lock()
	recs := make([]tokenstore.Record, 0, len(t.cur))
	for _, r := range t.cur {
		recs = append(recs, r)
	}
	t.mu.Unlock()
	for _, r := range recs {
		if sim.Valid(r.Value, now) {
			valid++
		}
		if r.Usable(now, margin) {
			usable++
		}
	}
	return valid, usable
}

// expiryCheck is what the replacements say of the tokens served.
type expiryCheck struct {
	replaced int
	// dead counts records whose token the simulator no longer accepted
	// at the last instant the record was served: when it was replaced,
	// or, if that came later, when the serving margin ended its use.
	dead int
	// late counts records replaced after the serving margin ended their
	// use: from then until the replacement the authorizer had no token to
	// serve. worstGap is the longest such time.
	late     int
	worstGap time.Duration
	// minLeft is the least time a replaced record still had before its
	// expiry when it was replaced.
	minLeft time.Duration
	// delays are how long after its planned refresh (RefreshAt) each
	// record was replaced, sorted: the WeChat call, the publish, the
	// watch, and any wait for a free slot of refresh.concurrency.
	delays []time.Duration
}

// checkExpiry asks the simulator, for every replacement, whether the
// replaced token was still alive at the last instant it was served.
func (t *authTracker) checkExpiry(sim oracle, margin time.Duration) expiryCheck {
	t.mu.Lock()
	repl := append([]replacement(nil), t.repl...)
	t.mu.Unlock()
	c := expiryCheck{replaced: len(repl)}
	for i, rp := range repl {
		// Served while at + margin < ExpiresAt (Record.Usable).
		last := rp.at
		if end := rp.prev.ExpiresAt.Add(-rp.prev.Margin(margin)); !last.Before(end) {
			last = end.Add(-time.Millisecond)
			c.late++
			c.worstGap = max(c.worstGap, rp.at.Sub(end))
		}
		if !sim.Valid(rp.prev.Value, last) {
			c.dead++
		}
		if left := rp.prev.ExpiresAt.Sub(rp.at); i == 0 || left < c.minLeft {
			c.minLeft = left
		}
		c.delays = append(c.delays, rp.at.Sub(rp.prev.RefreshAt))
	}
	slices.Sort(c.delays)
	return c
}

// earliestRefresh is the earliest planned refresh of the authorizers'
// current records.
func (t *authTracker) earliestRefresh() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	var at time.Time
	for _, r := range t.cur {
		if at.IsZero() || r.RefreshAt.Before(at) {
			at = r.RefreshAt
		}
	}
	return at
}
