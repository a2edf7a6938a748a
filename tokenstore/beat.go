package tokenstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Beat is the value of the leader's heartbeat key (Keys.Beat). Caches
// read only its mod revision; the value tells a person who wrote it.
type Beat struct {
	Node string    `json:"node"`
	At   time.Time `json:"at"`
}

// Beat writes the heartbeat, fenced by f, and returns its revision; it
// returns ErrFenced once f's term is over. The leader calls it every probe
// interval for as long as its term lasts (replica does), so that every
// cache's watch delivers a change at least that often while a leader
// lives: a cache whose probe reads a beat that its watch never delivers
// knows the watch has stopped (see cachebeat.go). One small put per
// interval, whatever the number of credentials. Safe for concurrent use.
func (s *Store) Beat(ctx context.Context, f Fence, b Beat) (int64, error) {
	val, err := json.Marshal(b)
	if err != nil {
		return 0, fmt.Errorf("beat: %w", err)
	}
	resp, err := s.c.Txn(ctx).If(f.Cmp()).Then(clientv3.OpPut(s.keys.Beat(), string(val))).Commit()
	if err != nil {
		return 0, fmt.Errorf("beat: %w", err)
	}
	if !resp.Succeeded {
		return 0, ErrFenced
	}
	return resp.Header.Revision, nil
}
