package tokenstore

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Defaults for Cache.
const (
	DefaultProbeInterval = 2 * time.Second
)

// Cache is the watch-fed, in-memory copy of every published record that a
// replica serves from. Reads never touch etcd and never block; they see the
// highest seq the watch has delivered for each credential. Run feeds it; the
// other methods are safe for concurrent use while Run runs.
type Cache struct {
	c     *clientv3.Client
	keys  Keys
	log   *slog.Logger
	probe time.Duration
	now   func() time.Time
	onApp func(r Record, at time.Time)
	codec recordCodec // see codec.go

	slots atomic.Pointer[map[string]*atomic.Pointer[Record]]
	mu    sync.Mutex    // serializes slot map copies and changed
	chg   chan struct{} // closed and replaced on every applied record

	loaded   chan struct{} // closed after the first full list
	loadOnce sync.Once
	watching atomic.Bool  // a watch is established and has not failed
	probeOK  atomic.Int64 // unix nanos of the last successful probe
	rev      atomic.Int64 // highest revision applied
	intents  sync.Map     // cred -> Intent, the unfinished fetches
}

// CacheConfig configures a Cache.
type CacheConfig struct {
	Client *clientv3.Client
	Prefix string
	// ProbeInterval is how often a quorum read checks that etcd answers;
	// default DefaultProbeInterval.
	ProbeInterval time.Duration
	Logger        *slog.Logger
	// OnApply, if set, is called with every record the watch delivers and
	// the cache applies (not those of a full list), and the time it was
	// applied. It runs on the watch's goroutine: it must be quick.
	OnApply func(r Record, at time.Time)
	// Sealing says how records are sealed (see codec.go); zero: plain JSON.
	Sealing Sealing
}

// NewCache returns a Cache over the records under cfg.Prefix.
func NewCache(cfg CacheConfig) *Cache {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	cc := &Cache{
		c:      cfg.Client,
		keys:   Keys{Prefix: cfg.Prefix},
		log:    logger.With("component", "cache"),
		probe:  cfg.ProbeInterval,
		now:    time.Now,
		onApp:  cfg.OnApply,
		codec:  newRecordCodec(Keys{Prefix: cfg.Prefix}, cfg.Sealing),
		chg:    make(chan struct{}),
		loaded: make(chan struct{}),
	}
	m := map[string]*atomic.Pointer[Record]{}
	cc.slots.Store(&m)
	return cc
}

// Get returns the newest record of cred, whatever its expiry.
func (c *Cache) Get(cred string) (Record, bool) {
	p := (*c.slots.Load())[cred]
	if p == nil {
		return Record{}, false
	}
	r := p.Load()
	if r == nil {
		return Record{}, false
	}
	return *r, true
}

// Records returns the newest record of every credential.
func (c *Cache) Records() []Record {
	m := *c.slots.Load()
	out := make([]Record, 0, len(m))
	for _, p := range m {
		if r := p.Load(); r != nil {
			out = append(out, *r)
		}
	}
	return out
}

// Len is the number of credentials cached.
func (c *Cache) Len() int { return len(*c.slots.Load()) }

// Changed returns a channel closed at the next applied record.
func (c *Cache) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.chg
}

// Wait blocks until cred has a record with seq above after, or ctx ends.
func (c *Cache) Wait(ctx context.Context, cred string, after uint64) (Record, error) {
	for {
		ch := c.Changed()
		if r, ok := c.Get(cred); ok && r.Seq > after {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return Record{}, ctx.Err()
		case <-ch:
		}
	}
}

// Loaded is closed once the first full list of records is applied.
func (c *Cache) Loaded() <-chan struct{} { return c.loaded }

// Synced reports whether the cache follows etcd right now: a watch is live
// and etcd answered a quorum read within two probe intervals.
func (c *Cache) Synced() bool {
	last := c.probeOK.Load()
	return c.watching.Load() && last != 0 && c.now().Sub(time.Unix(0, last)) < 2*c.probe
}

// Revision is the highest etcd revision the cache has applied.
func (c *Cache) Revision() int64 { return c.rev.Load() }

// apply stores r if its seq is above the cached one.
func (c *Cache) apply(r *Record) bool {
	slots := *c.slots.Load()
	p := slots[r.Cred]
	if p == nil {
		c.mu.Lock()
		cur := *c.slots.Load()
		if p = cur[r.Cred]; p == nil {
			next := make(map[string]*atomic.Pointer[Record], len(cur)+1)
			for k, v := range cur {
				next[k] = v
			}
			p = new(atomic.Pointer[Record])
			next[r.Cred] = p
			c.slots.Store(&next)
		}
		c.mu.Unlock()
	}
	for {
		old := p.Load()
		if old != nil && old.Seq >= r.Seq {
			return false
		}
		if p.CompareAndSwap(old, r) {
			break
		}
	}
	c.mu.Lock()
	close(c.chg)
	c.chg = make(chan struct{})
	c.mu.Unlock()
	return true
}

// Run lists and watches the records until ctx ends, re-listing after a
// compaction, a lost leader or a broken watch. Cached records survive any
// etcd outage. Run returns ctx's error.
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
	for ctx.Err() == nil {
		err := c.listAndWatch(ctx, bo)
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

func (c *Cache) listAndWatch(ctx context.Context, bo backoff.BackOff) error {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	resp, err := c.c.Get(lctx, c.keys.Creds(), clientv3.WithPrefix())
	cancel()
	if err != nil {
		return err
	}
	c.applyList(resp.Kvs)
	c.noteRev(resp.Header.Revision)
	c.loadOnce.Do(func() { close(c.loaded) })

	wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer wcancel()
	wch := c.c.Watch(wctx, c.keys.Creds(), clientv3.WithPrefix(),
		clientv3.WithRev(resp.Header.Revision+1), clientv3.WithCreatedNotify())
	for wr := range wch {
		if err := wr.Err(); err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				c.log.Info("watch compacted, re-listing", "compact_rev", wr.CompactRevision)
			}
			return err
		}
		if wr.Created {
			c.watching.Store(true)
			bo.Reset()
			continue
		}
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypePut {
				c.applyKV(ev.Kv.Key, ev.Kv.Value)
			}
		}
		c.noteRev(wr.Header.Revision)
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

// applyList applies a full listing, adding every new credential to the
// slot map in one copy (a cold start of thousands stays linear).
func (c *Cache) applyList(kvs []*mvccpb.KeyValue) {
	recs := make([]*Record, 0, len(kvs))
	for _, kv := range kvs {
		if r := c.decode(kv.Key, kv.Value); r != nil {
			recs = append(recs, r)
		}
	}
	c.mu.Lock()
	cur := *c.slots.Load()
	var next map[string]*atomic.Pointer[Record]
	for _, r := range recs {
		if _, ok := cur[r.Cred]; ok {
			continue
		}
		if next == nil {
			next = make(map[string]*atomic.Pointer[Record], len(cur)+len(recs))
			for k, v := range cur {
				next[k] = v
			}
		}
		next[r.Cred] = new(atomic.Pointer[Record])
	}
	if next != nil {
		c.slots.Store(&next)
	}
	c.mu.Unlock()
	for _, r := range recs {
		c.apply(r)
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
	if r := c.decode(key, val); r != nil && c.apply(r) && c.onApp != nil {
		c.onApp(*r, c.now())
	}
}

// runProbe makes a small quorum read every probe interval, so that Synced
// turns false when etcd cannot be reached even though the watch is quiet.
func (c *Cache) runProbe(ctx context.Context) {
	t := time.NewTicker(c.probe)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, c.probe)
		_, err := c.c.Get(pctx, c.keys.Creds(), clientv3.WithPrefix(), clientv3.WithCountOnly())
		cancel()
		if err == nil {
			c.probeOK.Store(c.now().UnixNano())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
