package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/chaos/checker"
	"github.com/wxtoken/wxtoken/election"
	"github.com/wxtoken/wxtoken/seal"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// errNoLeader is returned when no running replica leads.
var errNoLeader = errors.New("no leader")

// settle waits, bounded, until a replica leads and every replica is ready.
func (h *harness) settle(ctx context.Context) {
	err := poll(ctx, 20*time.Second, func(ctx context.Context) bool {
		if _, err := h.leaderNow(ctx); err != nil {
			return false
		}
		for _, r := range h.replicas {
			if !r.ready(ctx) {
				return false
			}
		}
		return true
	})
	if err != nil {
		h.logf("  not settled: %v", err)
	}
}

// leader waits, bounded, for a leader among the running replicas.
func (h *harness) leader(ctx context.Context) (*replica, error) {
	var l *replica
	err := poll(ctx, 20*time.Second, func(ctx context.Context) bool {
		var err error
		l, err = h.leaderNow(ctx)
		return err == nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w within 20s", errNoLeader)
	}
	return l, nil
}

func (h *harness) leaderNow(ctx context.Context) (*replica, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	name, err := election.Leader(ctx, h.cli, Prefix+"/election")
	if err != nil {
		return nil, err
	}
	for _, r := range h.replicas {
		if r.name == name && r.proc.running() {
			return r, nil
		}
	}
	return nil, errNoLeader
}

// record reads app's published token record from etcd.
func (h *harness) record(ctx context.Context, name string) (tokenstore.Record, error) {
	return h.credRecord(ctx, tokenstore.CredName(name, "token"))
}

// credRecord reads a credential's published record from etcd.
func (h *harness) credRecord(ctx context.Context, cred string) (tokenstore.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	key := tokenstore.Keys{Prefix: Prefix}.Cred(cred)
	resp, err := h.cli.Get(ctx, key)
	if err != nil {
		return tokenstore.Record{}, fmt.Errorf("read record of %s: %w", cred, err)
	}
	if len(resp.Kvs) == 0 {
		return tokenstore.Record{}, fmt.Errorf("no record of %s", cred)
	}
	var rec tokenstore.Record
	plain, err := openRecord(h.ring(), key, resp.Kvs[0].Value)
	if err == nil {
		err = json.Unmarshal(plain, &rec)
	}
	if err != nil {
		return tokenstore.Record{}, fmt.Errorf("record of %s: %w", cred, err)
	}
	return rec, nil
}

// ring is the key ring that opens the records, nil when they are not
// sealed (a run without a platform).
func (h *harness) ring() *seal.Ring {
	if h.cfg.platform == nil {
		return nil
	}
	return h.cfg.platform.ring
}

// readRecords takes one snapshot of every credential's record (the apps',
// the platform's); one without a record shows as seq 0.
func (h *harness) readRecords(ctx context.Context, after string) ([]checker.Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	keys := tokenstore.Keys{Prefix: Prefix}
	at := time.Now()
	resp, err := h.cli.Get(ctx, keys.Creds(), clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	found := map[string]tokenstore.Record{}
	for _, kv := range resp.Kvs {
		var rec tokenstore.Record
		if plain, err := openRecord(h.ring(), string(kv.Key), kv.Value); err == nil && json.Unmarshal(plain, &rec) == nil {
			found[rec.Cred] = rec
		}
	}
	var out []checker.Snapshot
	for _, a := range h.cfg.apps {
		rec := found[tokenstore.CredName(a.name, "token")]
		out = append(out, checker.Snapshot{At: at, App: a.name, Seq: rec.Seq, Token: rec.Value, After: after})
	}
	if p := h.cfg.platform; p != nil {
		for _, tg := range p.targets() {
			rec := found[tg.name]
			out = append(out, checker.Snapshot{At: at, App: tg.name, Seq: rec.Seq, Token: rec.Value, After: after})
		}
	}
	return out, nil
}

// snapshot records every app's record once etcd answers, bounded.
func (h *harness) snapshot(ctx context.Context, after string) {
	var snaps []checker.Snapshot
	err := poll(ctx, 20*time.Second, func(ctx context.Context) bool {
		var err error
		snaps, err = h.readRecords(ctx, after)
		return err == nil
	})
	if err != nil {
		h.logf("  no etcd snapshot after %s: %v", after, err)
		return
	}
	h.mu.Lock()
	h.records = append(h.records, snaps...)
	h.mu.Unlock()
}

// pollRecords snapshots the records every half second until ctx ends.
func (h *harness) pollRecords(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		if snaps, err := h.readRecords(ctx, ""); err == nil {
			h.mu.Lock()
			h.records = append(h.records, snaps...)
			h.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
