package tokenstore

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Defaults for Cache.
const (
	DefaultProbeInterval = 2 * time.Second
	// DefaultListPage is how many records one range read of a listing
	// returns: a cold start of 100,000 records holds one page of replies
	// in memory at a time, not all of them.
	DefaultListPage = 5000
	// MaxAppWatches is the most apps a Cache watches one by one; with
	// more it watches every credential and keeps those of its apps.
	MaxAppWatches = 32
)

// Cache is the watch-fed, in-memory copy of the published records that a
// replica serves from: every record, or those of CacheConfig.Apps. Reads
// never touch etcd, never block and allocate nothing; they see the highest
// seq the watch has delivered for each credential. Run feeds it; the other
// methods are safe for concurrent use while Run runs.
type Cache struct {
	c      *clientv3.Client
	keys   Keys
	apps   []string        // nil: every app
	only   map[string]bool // apps, when filtered on arrival (see prefixes)
	log    *slog.Logger
	probe  time.Duration
	page   int64
	now    func() time.Time
	onApp  func(r Record, at time.Time)
	onBeat func(b Beat)
	codec  recordCodec // see codec.go

	slots slotTable     // cred -> newest record; see slots.go
	mu    sync.Mutex    // guards chg
	chg   chan struct{} // closed and replaced on every applied record

	loaded   chan struct{} // closed after the first full list
	loadOnce sync.Once
	watching atomic.Bool  // every watch is established and none has failed
	probeOK  atomic.Int64 // unix nanos of the last successful probe
	rev      atomic.Int64 // highest revision applied
	intents  sync.Map     // cred -> Intent, the unfinished fetches
	stall    stallCheck   // is the watch still delivering? see cachebeat.go
}

// CacheConfig configures a Cache.
type CacheConfig struct {
	Client *clientv3.Client
	Prefix string
	// Apps, if not nil, limits the cache to the records and intents of
	// these apps (credentials "<app>/..."): one watch per app, so that a
	// serve-only sidecar receives only what it serves. With more than
	// MaxAppWatches apps, one watch follows every credential and the
	// others are dropped on arrival. nil follows every credential, as a
	// candidate must (it may lead). An empty, non-nil Apps follows none.
	Apps []string
	// ProbeInterval is how often a quorum read checks that etcd answers
	// and that the watch still delivers the leader's heartbeat (see
	// cachebeat.go); default DefaultProbeInterval, which is also how often
	// the leader writes the heartbeat.
	ProbeInterval time.Duration
	// ListPage is how many records one range read of a listing returns;
	// default DefaultListPage.
	ListPage int
	Logger   *slog.Logger
	// OnApply, if set, is called with every record the watch delivers and
	// the cache applies (not those of a full list), and the time it was
	// applied. It runs on the watch's goroutine: it must be quick.
	OnApply func(r Record, at time.Time)
	// OnBeat, if set, is called with every heartbeat the watch delivers
	// (see Store.Beat), on the watch's goroutine: it must be quick.
	OnBeat func(b Beat)
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
	if cfg.ListPage <= 0 {
		cfg.ListPage = DefaultListPage
	}
	var apps []string
	var only map[string]bool
	if cfg.Apps != nil {
		apps = slices.Compact(slices.Sorted(slices.Values(cfg.Apps)))
	}
	if len(apps) > MaxAppWatches {
		only = make(map[string]bool, len(apps))
		for _, a := range apps {
			only[a] = true
		}
	}
	cc := &Cache{
		c:      cfg.Client,
		keys:   Keys{Prefix: cfg.Prefix},
		apps:   apps,
		only:   only,
		log:    logger.With("component", "cache"),
		probe:  cfg.ProbeInterval,
		page:   int64(cfg.ListPage),
		now:    time.Now,
		onApp:  cfg.OnApply,
		onBeat: cfg.OnBeat,
		codec:  newRecordCodec(Keys{Prefix: cfg.Prefix}, cfg.Sealing),
		chg:    make(chan struct{}),
		loaded: make(chan struct{}),
	}
	cc.slots.init()
	return cc
}

// Get returns the newest record of cred, whatever its expiry.
func (c *Cache) Get(cred string) (Record, bool) {
	s := c.slots.get(cred)
	if s == nil {
		return Record{}, false
	}
	r := s.rec.Load()
	if r == nil {
		return Record{}, false
	}
	return *r, true
}

// Records returns the newest record of every credential.
func (c *Cache) Records() []Record {
	out := make([]Record, 0, c.Len())
	c.slots.each(func(s *slot) bool {
		if r := s.rec.Load(); r != nil {
			out = append(out, *r)
		}
		return true
	})
	return out
}

// Len is the number of credentials cached.
func (c *Cache) Len() int { return int(c.slots.size.Load()) }

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

// Synced reports whether the cache follows etcd right now: every watch is
// live (open, and delivering the leader's heartbeat: see cachebeat.go) and
// etcd answered a quorum read within two probe intervals.
func (c *Cache) Synced() bool {
	last := c.probeOK.Load()
	return c.watching.Load() && last != 0 && c.now().Sub(time.Unix(0, last)) < 2*c.probe
}

// Revision is the highest etcd revision the cache has applied.
func (c *Cache) Revision() int64 { return c.rev.Load() }

// apply stores r if its seq is above the cached one, and reports whether
// it did. bulk defers the slot table's promotion and the Changed
// notification to the caller (a listing), which calls c.slots.flush and
// c.changed after.
func (c *Cache) apply(r *Record, bulk bool) bool {
	s := c.slots.insert(r.Cred, !bulk)
	for {
		old := s.rec.Load()
		if old != nil && old.Seq >= r.Seq {
			return false
		}
		if s.rec.CompareAndSwap(old, r) {
			break
		}
	}
	if !bulk {
		c.changed()
	}
	return true
}

// changed wakes every Changed channel.
func (c *Cache) changed() {
	c.mu.Lock()
	close(c.chg)
	c.chg = make(chan struct{})
	c.mu.Unlock()
}
