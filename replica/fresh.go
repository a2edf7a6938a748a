package replica

import (
	"sync"
	"time"
)

// freshness tracks this replica's presence lease on its own clock: a
// delegated credential's WeChat call starts only while the newest
// keepalive is younger than the TTL less a margin, so that the leader,
// which moves a credential only once that lease expired on etcd, never
// has two owners calling. It is safe for concurrent use.
type freshness struct {
	now func() time.Time

	mu       sync.Mutex
	deadline time.Time
}

// renewed records a keepalive that arrived at at and granted ttl.
func (f *freshness) renewed(at time.Time, ttl time.Duration) {
	d := at.Add(ttl - max(ttl/5, 500*time.Millisecond))
	f.mu.Lock()
	if d.After(f.deadline) {
		f.deadline = d
	}
	f.mu.Unlock()
}

// held reports whether the lease is fresh now.
func (f *freshness) held() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now().Before(f.deadline)
}
