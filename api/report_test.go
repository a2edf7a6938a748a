package api

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// result is what one Invalidate answered.
type result struct {
	resp TokenResponse
	err  error
}

// invalidate runs Invalidate in the background.
func invalidate(ctx context.Context, a *API, token string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		resp, err := a.Invalidate(ctx, testApp, token)
		ch <- result{resp, err}
	}()
	return ch
}

func errCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// record is a token record of seq valid for an hour from now.
func record(seq uint64, value string) tokenstore.Record {
	return recordAt(seq, value, time.Now().Add(time.Hour), time.Time{})
}

// recordAt is a token record of seq expiring at exp, its refresh planned at
// refresh (zero: none).
func recordAt(seq uint64, value string, exp, refresh time.Time) tokenstore.Record {
	return tokenstore.Record{Cred: testCred, Value: value, Seq: seq, ExpiresAt: exp, RefreshAt: refresh}
}

// TestReportRejectedAfterWaitersGaveUp: a rejection that lands after every
// caller stopped waiting leaves no state behind; a later report of the
// same token is judged afresh and answered as soon as the leader rejects
// it, not held until InvalidateWait and answered refresh_pending.
func TestReportRejectedAfterWaitersGaveUp(t *testing.T) {
	const wait = 3 * time.Second
	e := newEtcdEnv(t, envOptions{cfg: Config{InvalidateWait: wait}})
	e.publish(t, record(1, "T1"))

	// No leader answers: the callers give up after InvalidateWait.
	first, second := invalidate(testCtx(t), e.api, "T1"), invalidate(testCtx(t), e.api, "T1")
	for _, ch := range []<-chan result{first, second} {
		if r := <-ch; errCode(r.err) != "refresh_pending" {
			t.Fatalf("unanswered report: got %+v, %v; want refresh_pending", r.resp, r.err)
		}
	}
	if keys := e.reportKeys(t); len(keys) != 1 {
		t.Fatalf("reports in etcd after two callers: got %q, want one", keys)
	}
	e.reject(t, 1) // late: nobody waits any more

	// The leader rejects the next report as soon as it appears.
	again := invalidate(testCtx(t), e.api, "T1")
	appeared := make(chan struct{})
	go func() { defer close(appeared); e.waitReport(t, 1) }()
	select {
	case <-appeared:
		e.reject(t, 1)
	case r := <-again:
		t.Fatalf("report after a late rejection: got %+v, %v before any new report reached etcd; want the report judged afresh", r.resp, r.err)
	}
	start := time.Now()
	r := <-again
	if r.err != nil || r.resp.AccessToken != "T1" {
		t.Fatalf("report after a late rejection, rejected again: got %+v, %v; want T1 at once", r.resp, r.err)
	}
	if waited := time.Since(start); waited >= wait {
		t.Errorf("answered %v after the rejection, want well under InvalidateWait %v", waited, wait)
	}
	if n := e.api.pending(); n != 0 {
		t.Errorf("report calls held after every caller returned: got %d, want 0", n)
	}
}

// TestReportReleasedByNewerRecord: a newer record releases every caller
// waiting on a report at once, and the replica holds no report state, also
// when the callers gave up before it came.
func TestReportReleasedByNewerRecord(t *testing.T) {
	const wait = 20 * time.Second
	e := newEtcdEnv(t, envOptions{cfg: Config{InvalidateWait: wait}})
	e.publish(t, record(1, "T1"))

	callers := []<-chan result{invalidate(testCtx(t), e.api, "T1"), invalidate(testCtx(t), e.api, "T1")}
	e.waitReport(t, 1)
	start := time.Now()
	e.publish(t, record(2, "T2"))
	for i, ch := range callers {
		if r := <-ch; r.err != nil || r.resp.AccessToken != "T2" || r.resp.Seq != 2 {
			t.Errorf("caller %d: got %+v, %v; want T2", i, r.resp, r.err)
		}
	}
	if waited := time.Since(start); waited >= wait/2 {
		t.Errorf("released %v after the newer record, want at once", waited)
	}
	if n := e.api.pending(); n != 0 {
		t.Errorf("report calls held after a newer record: got %d, want 0", n)
	}
	if keys := e.reportKeys(t); len(keys) != 1 {
		t.Errorf("reports in etcd: got %q, want one for two callers", keys)
	}

	// A caller that gives up first (its own deadline) leaves nothing
	// behind either, whenever the newer record comes.
	short, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
	defer cancel()
	if r := <-invalidate(short, e.api, "T2"); errCode(r.err) != "refresh_pending" {
		t.Fatalf("caller out of time: got %+v, %v; want refresh_pending", r.resp, r.err)
	}
	e.publish(t, record(3, "T3"))
	if n := e.api.pending(); n != 0 {
		t.Errorf("report calls held after their caller gave up and a newer record came: got %d, want 0", n)
	}
}

// TestReportWriteErrorRetried: a report that cannot be written answers
// etcd_unavailable and leaves nothing behind; the next caller writes it.
func TestReportWriteErrorRetried(t *testing.T) {
	const wait = 2 * time.Second
	// The API's store writes through member 0; the cache and the test's
	// leader use member 2, so that stopping member 0 fails only the
	// report's write.
	e := newEtcdEnv(t, envOptions{members: 3, cfg: Config{InvalidateWait: wait}})
	e.publish(t, record(1, "T1"))

	e.clus.Members[0].Stop(t)
	r := <-invalidate(testCtx(t), e.api, "T1")
	if err := e.clus.Members[0].Restart(t); err != nil {
		t.Fatal(err)
	}
	if errCode(r.err) != "etcd_unavailable" {
		t.Fatalf("report with etcd cut off: got %+v, %v; want etcd_unavailable", r.resp, r.err)
	}
	if n := e.api.pending(); n != 0 {
		t.Errorf("report calls held after a failed write: got %d, want 0", n)
	}
	if keys := e.reportKeys(t); len(keys) != 0 {
		t.Fatalf("reports in etcd after a failed write: got %q, want none", keys)
	}
	waitFor(t, "the API's member to answer again", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := e.store.Client().Get(ctx, "probe")
		return err == nil
	})

	next := invalidate(testCtx(t), e.api, "T1")
	e.waitReport(t, 1)
	e.publish(t, record(2, "T2"))
	if r := <-next; r.err != nil || r.resp.AccessToken != "T2" {
		t.Fatalf("report after etcd returned: got %+v, %v; want T2", r.resp, r.err)
	}
	if n := e.api.pending(); n != 0 {
		t.Errorf("report calls held: got %d, want 0", n)
	}
}
