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
// lease is revoked (bounded by a fresh one-second context).
func (s *Store) Announce(ctx context.Context, p Presence, ttl time.Duration) error {
	val, _ := json.Marshal(p)
	secs := max(int64((ttl+time.Second-1)/time.Second), 2)
	for {
		err := s.announceOnce(ctx, p.Node, string(val), secs)
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

func (s *Store) announceOnce(ctx context.Context, node, val string, secs int64) error {
	gctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second)
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
	for range ka {
	}
	return fmt.Errorf("announce: lease lost")
}
