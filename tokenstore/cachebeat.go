package tokenstore

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// A watch can stop delivering without an error: etcd's gRPC proxy, with
// auth on, opens its merged watch again with a stale token after a member
// restart, etcd refuses it, and the proxy tells none of the clients that
// share it (README, "A fleet of sidecars"). Such a cache would stay ready
// on old records for ever. So the leader writes a heartbeat (Store.Beat)
// every probe interval; every cache watches it beside its records, and its
// readiness probe reads it (one key, one request, as before). A beat the
// probe saw that the watch still has not delivered at the next probe means
// the watch has stopped: the cache turns not synced (it serves only
// inside keep-until, as when cut off from etcd) and opens its watches
// again (see span for how). No beat, or a beat that does not change (no
// leader), proves nothing either way and changes nothing.

// errStalled ends a watch that the probe found stopped.
var errStalled = errors.New("watch stopped delivering: the leader's heartbeat did not arrive")

// spellings is how many ways a cache spells the key ranges it watches
// (see span).
const spellings = 8

// stallCheck is a cache's state of the check above.
type stallCheck struct {
	// delivered is the newest beat mod revision the watch delivered, or
	// the revision of the last listing, whichever is higher.
	delivered atomic.Int64
	// pending is a beat revision the previous probe read and the watch
	// had not delivered (0: none). Only the probe's goroutine uses it.
	pending int64
	// stalls counts the watches found stopped.
	stalls atomic.Int64

	mu     sync.Mutex
	reopen chan struct{} // closed and replaced at each stall
}

// Stalls is how many times the cache found its watch stopped (the probe
// read a heartbeat that the watch did not deliver by the next probe) and
// opened it again. Safe for concurrent use.
func (c *Cache) Stalls() int64 { return c.stall.stalls.Load() }

// reopened returns a channel closed at the next stall: a watch running
// when it closes must end, so that it is opened again.
func (c *Cache) reopened() <-chan struct{} {
	c.stall.mu.Lock()
	defer c.stall.mu.Unlock()
	if c.stall.reopen == nil {
		c.stall.reopen = make(chan struct{})
	}
	return c.stall.reopen
}

// noteBeat records that the cache knows the beat up to rev: a beat event
// the watch delivered (its mod revision) or a listing (its revision).
func (c *Cache) noteBeat(rev int64) {
	for {
		old := c.stall.delivered.Load()
		if rev <= old || c.stall.delivered.CompareAndSwap(old, rev) {
			return
		}
	}
}

// checkBeat is the probe's half: seen is the beat's mod revision a
// successful probe read (0: no beat). If the beat the previous probe read
// has still not been delivered, a whole probe interval later, the watch
// has stopped: checkBeat marks the cache not synced and makes its watches
// end, to be opened again. A beat in flight at one probe is not a stall.
// Only the probe's goroutine calls it.
func (c *Cache) checkBeat(seen int64) {
	if !c.watching.Load() { // (re-)listing: nothing to compare yet
		c.stall.pending = 0
		return
	}
	got, lost := c.stall.delivered.Load(), c.stall.pending
	c.stall.pending = 0
	if lost == 0 || got >= lost {
		if seen > got {
			c.stall.pending = seen
		}
		return
	}
	c.log.Warn("watch stopped delivering, opening it again", "beat_rev", lost, "delivered_rev", got)
	c.watching.Store(false)
	c.stall.stalls.Add(1)
	c.stall.mu.Lock()
	if c.stall.reopen != nil {
		close(c.stall.reopen)
	}
	c.stall.reopen = make(chan struct{})
	c.stall.mu.Unlock()
}

// span returns the options that watch key (a prefix if prefix is set),
// its range end spelled the n-th way (modulo spellings), all of them the
// same keys: no key the cache follows has a 0xff byte right after the
// prefix (UTF-8 never holds one) or anything after the beat key. The
// first spelling is the plain one (WithPrefix, or the key alone), which
// every cache of a fleet shares at start; each time a cache opens its
// watches again (after an error or a stall) it spells them the next way.
// Why: etcd's gRPC proxy merges watches by range, and a dead merged
// watch takes in every watch later opened on the same range, for as long
// as some other client still holds it (it even absorbs a live merged
// watch of that range). A range spelled anew gets a merged watch of its
// own, opened with the cache's current token; the fleet, whose watches
// all end together when the proxy's upstream fails, moves on together
// and is merged again.
func span(key string, prefix bool, n int) []clientv3.OpOption {
	n %= spellings
	switch {
	case n == 0 && prefix:
		return []clientv3.OpOption{clientv3.WithPrefix()}
	case n == 0:
		return nil
	case prefix:
		return []clientv3.OpOption{clientv3.WithRange(key + strings.Repeat("\xff", n))}
	default:
		return []clientv3.OpOption{clientv3.WithRange(key + strings.Repeat("\x00", n))}
	}
}

// watchBeat notes every beat put after rev until ctx ends or the watch
// fails; created is called once the watch is established.
func (c *Cache) watchBeat(ctx context.Context, w clientv3.Watcher, rev int64, spelling int, created func()) error {
	opts := append(span(c.keys.Beat(), false, spelling), clientv3.WithRev(rev+1), clientv3.WithCreatedNotify())
	for wr := range w.Watch(ctx, c.keys.Beat(), opts...) {
		if err := wr.Err(); err != nil {
			return err
		}
		if wr.Created {
			created()
			continue
		}
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypePut && string(ev.Kv.Key) == c.keys.Beat() {
				c.noteBeat(ev.Kv.ModRevision)
				var b Beat
				if c.onBeat != nil && json.Unmarshal(ev.Kv.Value, &b) == nil {
					c.onBeat(b)
				}
			}
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("beat watch closed")
}
