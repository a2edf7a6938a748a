package election

import (
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Guard proves one term of leadership. Its Cmp fences etcd transactions to
// that term; Held says whether the newest lease keepalive still proves
// leadership on this process's clock. A Guard is safe for concurrent use.
type Guard struct {
	key    string
	rev    int64
	lease  clientv3.LeaseID
	margin time.Duration
	now    func() time.Time

	mu       sync.Mutex
	deadline time.Time // newest keepalive arrival + TTL - margin
}

// NewGuard returns a Guard for an existing leader key, held until deadline.
// It exists for tests and tools that fence writes by hand; Run builds the
// Guards of real terms.
func NewGuard(key string, rev int64, deadline time.Time) *Guard {
	return &Guard{key: key, rev: rev, now: time.Now, deadline: deadline}
}

// Key is the leader key of this term.
func (g *Guard) Key() string { return g.key }

// Rev is the create revision of the leader key of this term.
func (g *Guard) Rev() int64 { return g.rev }

// Cmp is the fence: true only while this term's leader key exists with the
// create revision it had when the term began. Put it in the If of every
// transaction that only the leader may commit.
func (g *Guard) Cmp() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(g.key), "=", g.rev)
}

// Held reports whether the newest keepalive is younger than the TTL less the
// margin. Check it right before starting work on an outside resource.
func (g *Guard) Held() bool {
	return g.remaining() > 0
}

// Deadline is the instant after which Held turns false unless a keepalive
// arrives first.
func (g *Guard) Deadline() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.deadline
}

func (g *Guard) remaining() time.Duration {
	return g.Deadline().Sub(g.now())
}

// renewed records a keepalive that arrived at t and granted ttl. The
// deadline never moves backwards.
func (g *Guard) renewed(t time.Time, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	d := t.Add(ttl - g.margin)
	g.mu.Lock()
	if d.After(g.deadline) {
		g.deadline = d
	}
	g.mu.Unlock()
}
