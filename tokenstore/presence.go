package tokenstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Announce keeps p under the replica's presence key on a lease of ttl until
// ctx ends, re-creating lease and key whenever they are lost. On return the
// lease is revoked (bounded by a fresh one-second context). renewed, if not
// nil, is called with the time each keepalive answer (or the grant before
// the first) arrived and the TTL it granted: the freshness a delegate's
// calls depend on.
func (s *Store) Announce(ctx context.Context, p Presence, ttl time.Duration, renewed func(at time.Time, ttl time.Duration)) error {
	if renewed == nil {
		renewed = func(time.Time, time.Duration) {}
	}
	val, _ := json.Marshal(p)
	secs := max(int64((ttl+time.Second-1)/time.Second), 2)
	for {
		err := s.announceOnce(ctx, p.Node, string(val), secs, renewed)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		_ = err // the lease was lost or etcd is unreachable: try again
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(secs) * time.Second / 4):
		}
	}
}

func (s *Store) announceOnce(ctx context.Context, node, val string, secs int64, renewed func(time.Time, time.Duration)) error {
	gctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second)
	granted := time.Now() // before the grant: the server times the lease from later
	lease, err := s.c.Grant(gctx, secs)
	if err == nil {
		_, err = s.c.Put(gctx, s.keys.Replica(node), val, clientv3.WithLease(lease.ID))
	}
	cancel()
	if err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = s.c.Revoke(rctx, lease.ID)
	}()
	kctx, kcancel := context.WithCancel(ctx)
	defer kcancel()
	ka, err := s.c.KeepAlive(kctx, lease.ID)
	if err != nil {
		return fmt.Errorf("announce keepalive: %w", err)
	}
	renewed(granted, time.Duration(lease.TTL)*time.Second)
	for resp := range ka {
		renewed(time.Now(), time.Duration(resp.TTL)*time.Second)
	}
	return fmt.Errorf("announce: lease lost")
}
