package api

import (
	"sync"
	"testing"
	"time"
)

// testClock is a settable clock for the API.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// read is one token read at a set instant.
type read struct {
	name  string
	at    time.Time
	serve bool
	keep  int64 // expires_in when served; keep it under the overlap
}

// checkReads sets the clock to each read's instant and checks that the
// API serves the token (or answers no_credential) as the read says; synced
// says whether the cache must follow etcd meanwhile.
func checkReads(t *testing.T, e *etcdEnv, clk *testClock, synced bool, reads []read) {
	t.Helper()
	for _, r := range reads {
		if got := e.cache.Synced(); got != synced {
			t.Fatalf("%s: cache synced %v, want %v (the test's setup broke)", r.name, got, synced)
		}
		clk.Set(r.at)
		resp, err := e.api.Token(testApp)
		switch {
		case r.serve && (err != nil || resp.ExpiresIn != r.keep):
			t.Errorf("%s: got %+v, %v; want the token with expires_in %d", r.name, resp, err, r.keep)
		case !r.serve && errCode(err) != "no_credential":
			t.Errorf("%s: got %+v, %v; want no_credential", r.name, resp, err)
		}
	}
}

// TestServingMarginSynced: a replica that follows etcd never hands out a
// token with less than the margin left before its expiry.
func TestServingMarginSynced(t *testing.T) {
	const margin = 30 * time.Second
	t0 := time.Date(2031, 5, 1, 8, 0, 0, 0, time.UTC)
	clk := &testClock{now: t0}
	e := newEtcdEnv(t, envOptions{cfg: Config{Margin: margin, Overlap: 5 * time.Minute, Now: clk.Now}})
	exp := t0.Add(2 * time.Hour)
	e.publish(t, recordAt(1, "T1", exp, time.Time{}))
	waitFor(t, "the cache to follow etcd", e.cache.Synced)

	checkReads(t, e, clk, true, []read{
		{"a minute before the margin", exp.Add(-margin - time.Minute), true, 60},
		{"a second before the margin", exp.Add(-margin - time.Second), true, 1},
		{"at expiry less margin", exp.Add(-margin), false, 0},
		{"inside the margin", exp.Add(-margin / 2), false, 0},
		{"a nanosecond before expiry", exp.Add(-time.Nanosecond), false, 0},
	})
}

// TestKeepUntilCutOff: a replica cut off from etcd stops serving a token
// at its planned refresh plus the overlap, less the margin, when that
// comes before its expiry (it cannot know whether the refresh happened and
// WeChat killed the token); once it follows etcd again it serves the token
// until its expiry less the margin.
func TestKeepUntilCutOff(t *testing.T) {
	const margin, overlap = 30 * time.Second, 5 * time.Minute
	t0 := time.Date(2031, 5, 1, 8, 0, 0, 0, time.UTC)
	clk := &testClock{now: t0}
	e := newEtcdEnv(t, envOptions{probe: 100 * time.Millisecond, cfg: Config{Margin: margin, Overlap: overlap, Now: clk.Now}})
	exp := t0.Add(2 * time.Hour)
	refresh := t0.Add(time.Minute)
	keep := refresh.Add(overlap - margin) // long before exp - margin
	e.publish(t, recordAt(1, "T1", exp, refresh))
	waitFor(t, "the cache to follow etcd", e.cache.Synced)

	e.clus.Members[0].Bridge().Blackhole()
	waitFor(t, "the cache to notice it is cut off", func() bool { return !e.cache.Synced() })
	checkReads(t, e, clk, false, []read{
		{"cut off, before keep-until", refresh, true, int64(keep.Sub(refresh).Seconds())},
		{"cut off, a second before keep-until less margin", keep.Add(-time.Second), true, 1},
		{"cut off, at keep-until less margin", keep, false, 0},
		{"cut off, an hour before expiry", exp.Add(-time.Hour), false, 0},
	})

	e.clus.Members[0].Bridge().Unblackhole()
	e.clus.Members[0].Bridge().DropConnections()
	waitFor(t, "the cache to follow etcd again", e.cache.Synced)
	checkReads(t, e, clk, true, []read{
		{"synced, at keep-until less margin", keep, true, 0},
		{"synced, an hour before expiry", exp.Add(-time.Hour), true, 0},
	})
}

// TestReportOfOldToken: a report of a token that is no longer the current
// one writes nothing to etcd and answers the current token at once.
func TestReportOfOldToken(t *testing.T) {
	const wait = 2 * time.Second
	e := newEtcdEnv(t, envOptions{cfg: Config{InvalidateWait: wait}})
	e.publish(t, record(1, "T1"))
	e.publish(t, record(2, "T2"))

	start := time.Now()
	resp, err := e.api.Invalidate(testCtx(t), testApp, "T1")
	if keys := e.reportKeys(t); len(keys) != 0 {
		t.Errorf("reports in etcd after a report of an old token: got %q, want none", keys)
	}
	if rec, _ := e.cache.Get(testCred); rec.Seq != 2 {
		t.Errorf("cached record: got seq %d, want 2", rec.Seq)
	}
	if err != nil || resp.AccessToken != "T2" || resp.Seq != 2 {
		t.Errorf("report of an old token: got %+v, %v; want T2", resp, err)
	}
	if took := time.Since(start); took >= wait {
		t.Errorf("answered after %v, want at once (InvalidateWait %v)", took, wait)
	}
}
