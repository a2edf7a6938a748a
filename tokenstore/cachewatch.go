package tokenstore

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// prefixes are the key prefixes the cache follows under base (Keys.Creds
// or Keys.Intents): base itself, or one per app of CacheConfig.Apps (up
// to MaxAppWatches; with more, base itself, and follows drops the others).
func (c *Cache) prefixes(base string) []string {
	if c.apps == nil || c.only != nil {
		return []string{base}
	}
	out := make([]string, len(c.apps))
	for i, app := range c.apps {
		out[i] = base + app + "/"
	}
	return out
}

// follows reports whether the key under base is of an app the cache
// follows.
func (c *Cache) follows(key []byte, base string) bool {
	if c.only == nil {
		return true
	}
	app, _, _ := strings.Cut(string(key[min(len(base), len(key)):]), "/")
	return c.only[app]
}

// Run lists and watches the records until ctx ends, re-listing after a
// compaction, a lost leader, a broken watch or one that stopped
// delivering (cachebeat.go). Cached records survive any etcd outage. Run
// returns ctx's error.
func (c *Cache) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.runProbe(ctx) }()
	go func() { defer wg.Done(); c.runIntents(ctx) }()
	defer wg.Wait()

	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 100 * time.Millisecond
	bo.MaxInterval = 2 * time.Second
	bo.MaxElapsedTime = 0
	spelling := 0 // see span
	for ctx.Err() == nil {
		opened, err := c.listAndWatch(ctx, bo, spelling)
		if opened {
			spelling++
		}
		c.watching.Store(false)
		if ctx.Err() != nil {
			break
		}
		c.log.Warn("watch interrupted, re-listing", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(bo.NextBackOff()):
		}
	}
	return ctx.Err()
}

// listAndWatch lists the records at one revision, then watches each
// prefix and the leader's heartbeat from the next one, their ranges
// spelled the given way (see span), until one watch fails or the probe
// finds them stopped. The watches share a gRPC stream of their own,
// opened anew each time with the client's current token. opened reports
// whether the watches were opened.
func (c *Cache) listAndWatch(ctx context.Context, bo backoff.BackOff, spelling int) (opened bool, err error) {
	stalled := c.reopened()
	prefixes := c.prefixes(c.keys.Creds())
	rev, err := c.list(ctx, prefixes)
	if err != nil {
		return false, err
	}
	c.noteRev(rev)
	c.noteBeat(rev)
	c.loadOnce.Do(func() { close(c.loaded) })

	w := clientv3.NewWatcher(c.c)
	defer w.Close()
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	n := len(prefixes) + 1 // and the beat
	errc := make(chan error, n)
	var created atomic.Int64
	onCreated := func() {
		if created.Add(1) == int64(n) {
			c.watching.Store(true)
			bo.Reset()
		}
	}
	var wg sync.WaitGroup
	for _, p := range prefixes {
		wg.Go(func() { errc <- c.watch(wctx, w, p, rev, spelling, onCreated) })
	}
	wg.Go(func() { errc <- c.watchBeat(wctx, w, rev, spelling, onCreated) })
	select {
	case err = <-errc:
	case <-stalled:
		err = errStalled
	}
	c.watching.Store(false)
	cancel()
	wg.Wait()
	return true, err
}

// list applies every record under prefixes as of one revision, which it
// returns, reading at most c.page records per request. The next page is
// read while the current one is decoded.
func (c *Cache) list(ctx context.Context, prefixes []string) (int64, error) {
	var rev int64
	defer c.slots.flush()
	type page struct {
		resp *clientv3.GetResponse
		err  error
	}
	get := func(key, end string, rev int64) page {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(c.page)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		resp, err := c.c.Get(lctx, key, opts...)
		return page{resp, err}
	}
	for _, p := range prefixes {
		end := clientv3.GetPrefixRangeEnd(p)
		cur := get(p, end, rev)
		for {
			if cur.err != nil {
				return 0, cur.err
			}
			resp := cur.resp
			if rev == 0 {
				rev = resp.Header.Revision
			}
			var next chan page
			if resp.More && len(resp.Kvs) > 0 {
				next = make(chan page, 1)
				key := string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
				go func() { next <- get(key, end, rev) }()
			}
			c.applyList(resp.Kvs)
			if next == nil {
				break
			}
			cur = <-next
		}
	}
	if rev == 0 { // no prefix: note where a later list would start
		resp, err := c.c.Get(ctx, c.keys.Beat(), clientv3.WithCountOnly())
		if err != nil {
			return 0, err
		}
		rev = resp.Header.Revision
	}
	return rev, nil
}

// applyList applies one page of a listing. New credentials wait in the
// slot table's dirty map until the listing ends (list flushes them), so
// a cold start copies the table once. A large page is decoded on every
// CPU: decoding (and opening sealed records) is most of a cold start.
func (c *Cache) applyList(kvs []*mvccpb.KeyValue) {
	recs := make([]*Record, len(kvs))
	workers := min(runtime.GOMAXPROCS(0), len(kvs)/500+1)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(kvs); i += workers {
				if c.follows(kvs[i].Key, c.keys.Creds()) {
					recs[i] = c.decode(kvs[i].Key, kvs[i].Value)
				}
			}
		})
	}
	wg.Wait()
	applied := false
	for _, r := range recs {
		if r != nil && c.apply(r, true) {
			applied = true
		}
	}
	if applied {
		c.changed()
	}
}

// watch applies the records put under prefix after rev until ctx ends or
// the watch fails; created is called once the watch is established.
func (c *Cache) watch(ctx context.Context, w clientv3.Watcher, prefix string, rev int64, spelling int, created func()) error {
	opts := append(span(prefix, true, spelling), clientv3.WithRev(rev+1), clientv3.WithCreatedNotify())
	for wr := range w.Watch(ctx, prefix, opts...) {
		if err := wr.Err(); err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				c.log.Info("watch compacted, re-listing", "compact_rev", wr.CompactRevision)
			}
			return err
		}
		if wr.Created {
			created()
			continue
		}
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypePut && c.follows(ev.Kv.Key, c.keys.Creds()) {
				c.applyKV(ev.Kv.Key, ev.Kv.Value)
			}
		}
		c.noteRev(wr.Header.Revision)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("watch channel closed")
}

func (c *Cache) noteRev(rev int64) {
	for {
		old := c.rev.Load()
		if rev <= old || c.rev.CompareAndSwap(old, rev) {
			return
		}
	}
}

func (c *Cache) decode(key, val []byte) *Record {
	r, err := c.codec.decodeRecord(string(key), val)
	if err != nil {
		c.log.Warn("record not served", "err", err) // names the key, never the value
	}
	return r
}

func (c *Cache) applyKV(key, val []byte) {
	if r := c.decode(key, val); r != nil && c.apply(r, false) && c.onApp != nil {
		c.onApp(*r, c.now())
	}
}

// runProbe reads one key, the leader's heartbeat, linearizably (a quorum
// read through etcd's leader), every probe interval, so that Synced turns
// false when etcd cannot be reached even though the watch is quiet, and
// when the watch has stopped delivering (checkBeat). Keys only: a probe
// costs one small request and reply whatever the number of credentials.
func (c *Cache) runProbe(ctx context.Context) {
	t := time.NewTicker(c.probe)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, c.probe)
		resp, err := c.c.Get(pctx, c.keys.Beat(), clientv3.WithKeysOnly())
		cancel()
		if err == nil {
			c.probeOK.Store(c.now().UnixNano())
			var beat int64
			if len(resp.Kvs) > 0 {
				beat = resp.Kvs[0].ModRevision
			}
			c.checkBeat(beat)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
