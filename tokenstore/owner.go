package tokenstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Refusal records that WeChat refused one credential's call from one node
// (40164, 60020, 8950x: the host is not on that appid's whitelist). It is
// a fact about that pair alone; its key lives on a lease that ends with the
// holdoff, so it disappears by itself.
type Refusal struct {
	Cred  string    `json:"cred"`
	Node  string    `json:"node"`
	Code  int       `json:"code"`
	At    time.Time `json:"at"`
	Until time.Time `json:"until"`
}

// Owner delegates one credential to a candidate other than the leader,
// because WeChat refuses the leader for it. It is written by the leader,
// fenced by its term, and names that term: a delegate's writes are fenced
// by the owner key's revision and by the term's leader key, so a new leader
// or a new assignment silences the old delegate at once.
type Owner struct {
	Cred      string    `json:"cred"`
	Node      string    `json:"node"`
	LeaderKey string    `json:"leader_key"`
	LeaderRev int64     `json:"leader_rev"`
	At        time.Time `json:"at"`
}

// Owners is the prefix of all owner keys.
func (k Keys) Owners() string { return k.Prefix + "/owner/" }

// Owner is the key of a credential's owner.
func (k Keys) Owner(cred string) string { return k.Owners() + cred }

// Refusals is the prefix of all refusals.
func (k Keys) Refusals() string { return k.Prefix + "/refusal/" }

// CredRefusals is the prefix of one credential's refusals.
func (k Keys) CredRefusals(cred string) string { return k.Refusals() + cred + "/" }

// Refusal is the key of a credential's refusal from node.
func (k Keys) Refusal(cred, node string) string { return k.CredRefusals(cred) + node }

// Refuse stores r on a lease that expires at r.Until (at least 2 s from
// now). It is not fenced: any node that WeChat refused may record it.
func (s *Store) Refuse(ctx context.Context, r Refusal) error {
	secs := max(int64(time.Until(r.Until).Seconds()+0.999), 2)
	lease, err := s.c.Grant(ctx, secs)
	if err != nil {
		return fmt.Errorf("refuse %s: %w", r.Cred, err)
	}
	val, _ := json.Marshal(r)
	if _, err := s.c.Put(ctx, s.keys.Refusal(r.Cred, r.Node), string(val), clientv3.WithLease(lease.ID)); err != nil {
		return fmt.Errorf("refuse %s: %w", r.Cred, err)
	}
	return nil
}

// Replicas lists the live replicas' presence.
func (s *Store) Replicas(ctx context.Context) ([]Presence, error) {
	resp, err := s.c.Get(ctx, s.keys.Replicas(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("replicas: %w", err)
	}
	out := make([]Presence, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var p Presence
		if json.Unmarshal(kv.Value, &p) == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// Assign makes o the credential's owner, or removes the owner when o is
// nil, fenced by f and by the owner revision the snapshot saw. It returns
// the new owner revision (0 when removed).
func (s *Store) Assign(ctx context.Context, f Fence, snap Snapshot, o *Owner) (int64, error) {
	key := s.keys.Owner(snap.Cred)
	op := clientv3.OpDelete(key)
	if o != nil {
		val, _ := json.Marshal(o)
		op = clientv3.OpPut(key, string(val))
	}
	resp, err := s.c.Txn(ctx).If(f.Cmp(), clientv3.Compare(clientv3.ModRevision(key), "=", snap.OwnerRev)).Then(op).Commit()
	if err != nil {
		return 0, fmt.Errorf("assign %s: %w", snap.Cred, err)
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("assign %s: %w", snap.Cred, ErrFenced)
	}
	if o == nil {
		return 0, nil
	}
	return resp.Header.Revision, nil
}

// WatchOwners calls fn with every owner key's current value (nil when
// deleted) and its mod revision, first for all that exist, then for every
// change, until ctx ends. It re-lists after any watch failure.
func (s *Store) WatchOwners(ctx context.Context, fn func(cred string, o *Owner, rev int64)) {
	prefix := s.keys.Owners()
	decode := func(key, val []byte, rev int64) {
		cred := strings.TrimPrefix(string(key), prefix)
		if val == nil {
			fn(cred, nil, 0)
			return
		}
		var o Owner
		if json.Unmarshal(val, &o) == nil {
			fn(cred, &o, rev)
		}
	}
	for ctx.Err() == nil {
		resp, err := s.c.Get(ctx, prefix, clientv3.WithPrefix())
		if err == nil {
			for _, kv := range resp.Kvs {
				decode(kv.Key, kv.Value, kv.ModRevision)
			}
			wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			for wr := range s.c.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
				if wr.Err() != nil {
					break
				}
				for _, ev := range wr.Events {
					if ev.Type == clientv3.EventTypeDelete {
						decode(ev.Kv.Key, nil, 0)
					} else {
						decode(ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision)
					}
				}
			}
			cancel()
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}
