package api

import (
	"context"
	"net/http"
	"sync"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// Reports of a failed token. Every caller on this replica that reports
// the same record at the same time shares one reportCall: one write to
// etcd and one watch for the leader's rejection. A call lives exactly as
// long as some caller waits on it; it leaves the replica's table at the
// first of: its write failed (the next caller writes again), the leader
// rejected it (a later report is judged afresh), or its last caller
// stopped waiting (released by a newer record, or out of time). Nothing
// of a report outlives its callers on this replica: a rejection or a
// newer record that lands later concerns only etcd.

type reportKey struct {
	cred string
	seq  uint64
}

// reportCall is one report of a record on this replica.
type reportCall struct {
	done     chan struct{} // closed once the write ended; err says how
	err      error
	rejected chan struct{} // closed if the leader finds the token alive
	stop     context.CancelFunc
	exited   chan struct{} // closed when run returns

	mu      sync.Mutex
	waiters int // callers waiting; 0 once the last has left, for good
}

// report records, once per replica, that the record seq of cred failed,
// and waits, bounded by ctx, until a newer record is cached or the leader
// rejects the report (the token still works): either way the caller then
// answers with the current token. Errors are *Error: rate_limited,
// etcd_unavailable, refresh_pending.
func (a *API) report(ctx context.Context, cred string, seq uint64) error {
	key := reportKey{cred, seq}
	if _, pending := a.reported.Load(key); !pending && a.cfg.ReportLimit != nil {
		// Only a report that would reach the leader counts against the
		// caller's and the credential's limits.
		if wait, ok := a.cfg.ReportLimit(ctx, cred); !ok {
			return &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", RetryAfter: wait,
				Message: "too many reports of a dead token for " + cred + " (by this caller or for this credential): retry later"}
		}
	}
	c := a.joinReport(key)
	defer a.leaveReport(key, c)
	var err error
	select {
	case <-c.done:
		err = c.err
	case <-ctx.Done():
		select {
		case <-c.done: // written after all: say what the refresh did
			err = c.err
		default:
			err = ctx.Err()
		}
	}
	if err != nil {
		a.log.Warn("record invalidation report", "cred", cred, "seq", seq, "err", err)
		return &Error{Status: http.StatusServiceUnavailable, Code: "etcd_unavailable", Message: "cannot record the report: etcd unreachable"}
	}
	for {
		changed := a.cfg.Cache.Changed()
		if rec, ok := a.cfg.Cache.Get(cred); ok && rec.Seq > seq {
			return nil
		}
		select {
		case <-changed:
		case <-c.rejected:
			return nil
		case <-ctx.Done():
			return &Error{Status: http.StatusServiceUnavailable, Code: "refresh_pending", Message: "the refresh did not arrive within " + a.cfg.InvalidateWait.String()}
		}
	}
}

// joinReport returns the running call for key, starting one if there is
// none, and counts the caller as its waiter.
func (a *API) joinReport(key reportKey) *reportCall {
	for {
		ctx, stop := context.WithCancel(context.Background())
		c := &reportCall{done: make(chan struct{}), rejected: make(chan struct{}), stop: stop, exited: make(chan struct{}), waiters: 1}
		v, loaded := a.reported.LoadOrStore(key, c)
		if !loaded {
			go a.runReport(ctx, key, c)
			return c
		}
		stop()
		c = v.(*reportCall)
		c.mu.Lock()
		live := c.waiters > 0 // else its last caller is removing it: start anew
		if live {
			c.waiters++
		}
		c.mu.Unlock()
		if live {
			return c
		}
	}
}

// leaveReport ends a caller's wait on c. The last caller takes c out of
// the table, stops it and waits for it to return.
func (a *API) leaveReport(key reportKey, c *reportCall) {
	c.mu.Lock()
	c.waiters--
	last := c.waiters == 0
	if last {
		a.reported.CompareAndDelete(key, c)
	}
	c.mu.Unlock()
	if last {
		c.stop()
		<-c.exited
	}
}

// dropReport takes c out of the table, so that the next caller of its key
// starts afresh; its current callers keep it until they leave.
func (a *API) dropReport(key reportKey, c *reportCall) {
	a.reported.CompareAndDelete(key, c)
}

// runReport writes the report (bounded by InvalidateWait) and then
// watches for its rejection until ctx ends, that is until its last caller
// leaves.
func (a *API) runReport(ctx context.Context, key reportKey, c *reportCall) {
	defer close(c.exited)
	rep := tokenstore.Report{Cred: key.cred, Seq: key.seq, Node: a.cfg.Node, At: a.cfg.Now()}
	wctx, cancel := context.WithTimeout(ctx, a.cfg.InvalidateWait)
	stored, rev, err := a.cfg.Store.Report(wctx, rep)
	if err == nil && stored.Rejected {
		// An earlier report of this record was just rejected and is being
		// removed: judge this one afresh once it is gone.
		if err = a.cfg.Store.WaitReportGone(wctx, key.cred, key.seq, rev-1); err == nil {
			stored, rev, err = a.cfg.Store.Report(wctx, rep)
		}
	}
	cancel()
	if err != nil {
		a.dropReport(key, c) // the next caller writes again
		c.err = err
		close(c.done)
		return
	}
	close(c.done)
	err = nil
	if !stored.Rejected {
		err = a.cfg.Store.WaitRejected(ctx, key.cred, key.seq, rev)
	}
	// Rejected: a later report is judged afresh. Otherwise the watch
	// ended (its callers left, or it failed): the next caller watches anew.
	a.dropReport(key, c)
	if err == nil {
		close(c.rejected)
	}
}
