package tokenstore

import (
	"sync"
	"sync/atomic"
)

// slot holds the newest record of one credential. A slot, once in the
// table, stays there for the cache's life: readers keep no lock while
// they load from it.
type slot struct{ rec atomic.Pointer[Record] }

// slotTable maps credential names to slots, for a read path that takes no
// lock and allocates nothing and an insert that costs O(1) amortized.
//
// A lookup of a credential present at the last promotion is one lookup in
// an immutable map. A credential inserted since waits in dirty, behind a
// mutex, until the next promotion copies read and dirty into a new read
// map: when dirty reaches a quarter of read (so each insert pays for about
// five copied entries), or when as many lookups as the table holds went to
// the mutex (they pay for the copy), or at the end of a bulk insert. This
// is the scheme of the sync.Map of Go 1.9-1.23, whose reads were a plain
// map lookup; Go 1.24's hash-trie sync.Map takes three to four times
// longer per lookup at 100,000 entries.
type slotTable struct {
	read   atomic.Pointer[map[string]*slot]
	ndirty atomic.Int64 // len(dirty), for the lock-free miss path
	size   atomic.Int64 // slots in read and dirty

	mu     sync.Mutex
	dirty  map[string]*slot // inserted since read was built; guarded by mu
	misses int              // lookups that took mu since the last promotion; guarded by mu
}

func (t *slotTable) init() {
	m := map[string]*slot{}
	t.read.Store(&m)
}

func newSlotTable() *slotTable {
	t := &slotTable{}
	t.init()
	return t
}

// get returns cred's slot, or nil. Safe for concurrent use. Its fast
// path is small enough to be inlined.
func (t *slotTable) get(cred string) *slot {
	m := t.read.Load()
	if s := (*m)[cred]; s != nil {
		return s
	}
	return t.getSlow(cred, m)
}

// getSlow looks for cred, which m lacks, among the slots inserted since.
func (t *slotTable) getSlow(cred string, m *map[string]*slot) *slot {
	if t.ndirty.Load() == 0 {
		// A promotion stores read before it clears ndirty: if it just
		// moved cred out of dirty, read holds it now.
		if m2 := t.read.Load(); m2 != m {
			return (*m2)[cred]
		}
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.dirty[cred]
	if s == nil {
		s = (*t.read.Load())[cred]
	}
	if t.misses++; t.misses > len(*t.read.Load()) {
		t.promoteLocked()
	}
	return s
}

// insert returns cred's slot, adding an empty one if cred has none.
// promote false defers the promotion to the caller (a bulk insert), which
// calls flush after.
func (t *slotTable) insert(cred string, promote bool) *slot {
	if s := (*t.read.Load())[cred]; s != nil {
		return s
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := (*t.read.Load())[cred]; s != nil {
		return s
	}
	if s := t.dirty[cred]; s != nil {
		return s
	}
	if t.dirty == nil {
		t.dirty = map[string]*slot{}
	}
	s := new(slot)
	t.dirty[cred] = s
	t.ndirty.Store(int64(len(t.dirty)))
	t.size.Add(1)
	if promote && len(t.dirty) > len(*t.read.Load())/4 {
		t.promoteLocked()
	}
	return s
}

// flush promotes every inserted slot into read.
func (t *slotTable) flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.dirty) > 0 {
		t.promoteLocked()
	}
}

func (t *slotTable) promoteLocked() {
	t.misses = 0
	if len(t.dirty) == 0 {
		return
	}
	cur := *t.read.Load()
	next := make(map[string]*slot, len(cur)+len(t.dirty))
	for k, v := range cur {
		next[k] = v
	}
	for k, v := range t.dirty {
		next[k] = v
	}
	t.read.Store(&next)
	t.dirty = nil
	t.ndirty.Store(0)
}

// each calls fn with every slot until fn returns false.
func (t *slotTable) each(fn func(*slot) bool) {
	t.mu.Lock()
	dirty := make([]*slot, 0, len(t.dirty))
	for _, s := range t.dirty {
		dirty = append(dirty, s)
	}
	read := *t.read.Load()
	t.mu.Unlock()
	for _, s := range read {
		if !fn(s) {
			return
		}
	}
	for _, s := range dirty {
		if !fn(s) {
			return
		}
	}
}
