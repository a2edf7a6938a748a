package tokenstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Report records that the credential's record of seq failed. Only the
// first report of a seq creates the key; the answer is the report as
// stored (this one, or an earlier one, possibly rejected already) and its
// revision, from which WaitRejected can watch.
func (s *Store) Report(ctx context.Context, r Report) (Report, int64, error) {
	key := s.keys.Report(r.Cred, r.Seq)
	val, _ := json.Marshal(r)
	resp, err := s.c.Txn(ctx).If(
		clientv3.Compare(clientv3.CreateRevision(key), "=", 0),
	).Then(clientv3.OpPut(key, string(val))).Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return Report{}, 0, fmt.Errorf("report %s: %w", r.Cred, err)
	}
	if resp.Succeeded {
		return r, resp.Header.Revision, nil
	}
	stored := r
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		if err := json.Unmarshal(kvs[0].Value, &stored); err != nil {
			return Report{}, 0, fmt.Errorf("report %s: %w", r.Cred, err)
		}
		stored.Cred = r.Cred
	}
	return stored, resp.Header.Revision, nil
}

// RejectReport marks a report rejected (the token still works), so that
// the callers waiting on it get the current token back, then deletes it,
// so that a later report of the same record is judged afresh. Both writes
// are fenced by f.
func (s *Store) RejectReport(ctx context.Context, f Fence, r Report) error {
	r.Rejected = true
	val, _ := json.Marshal(r)
	key := s.keys.Report(r.Cred, r.Seq)
	exists := clientv3.Compare(clientv3.CreateRevision(key), ">", 0)
	if _, err := s.c.Txn(ctx).If(f.Cmp(), exists).Then(clientv3.OpPut(key, string(val))).Commit(); err != nil {
		return fmt.Errorf("reject report %s: %w", r.Cred, err)
	}
	if _, err := s.c.Txn(ctx).If(f.Cmp()).Then(clientv3.OpDelete(key)).Commit(); err != nil {
		return fmt.Errorf("reject report %s: %w", r.Cred, err)
	}
	return nil
}

// WaitRejected blocks until the report on cred's seq is marked rejected
// after revision rev (nil), or ctx ends, or the watch fails (its error).
func (s *Store) WaitRejected(ctx context.Context, cred string, seq uint64, rev int64) error {
	return s.waitReport(ctx, cred, seq, rev, func(ev *clientv3.Event) bool {
		var r Report
		return ev.Type == clientv3.EventTypePut && json.Unmarshal(ev.Kv.Value, &r) == nil && r.Rejected
	})
}

// waitReport watches the report on cred's seq from after revision rev
// until an event satisfies done (nil), ctx ends or the watch fails.
func (s *Store) waitReport(ctx context.Context, cred string, seq uint64, rev int64, done func(*clientv3.Event) bool) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for wr := range s.c.Watch(wctx, s.keys.Report(cred, seq), clientv3.WithRev(rev+1)) {
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			if done(ev) {
				return nil
			}
		}
	}
	return ctx.Err()
}

// Reported tells whether a report on cred's seq exists and is not
// rejected.
func (s *Store) Reported(ctx context.Context, cred string, seq uint64) (bool, error) {
	resp, err := s.c.Get(ctx, s.keys.Report(cred, seq))
	if err != nil {
		return false, fmt.Errorf("reported %s: %w", cred, err)
	}
	var r Report
	return len(resp.Kvs) > 0 && json.Unmarshal(resp.Kvs[0].Value, &r) == nil && !r.Rejected, nil
}

// DeleteReport removes one report, fenced by f.
func (s *Store) DeleteReport(ctx context.Context, f Fence, cred string, seq uint64) error {
	_, err := s.c.Txn(ctx).If(f.Cmp()).Then(clientv3.OpDelete(s.keys.Report(cred, seq))).Commit()
	if err != nil {
		return fmt.Errorf("delete report %s: %w", cred, err)
	}
	return nil
}

// WatchReports calls fn for every report that exists or appears, until ctx
// ends. It re-lists after any watch failure, so fn may see a report twice.
func (s *Store) WatchReports(ctx context.Context, fn func(cred string, seq uint64)) {
	for ctx.Err() == nil {
		resp, err := s.c.Get(ctx, s.keys.Reports(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err == nil {
			for _, kv := range resp.Kvs {
				if cred, seq, ok := s.keys.ParseReport(string(kv.Key)); ok {
					fn(cred, seq)
				}
			}
			wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			for wr := range s.c.Watch(wctx, s.keys.Reports(), clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
				if wr.Err() != nil {
					break
				}
				for _, ev := range wr.Events {
					var r Report
					if ev.Type != clientv3.EventTypePut || json.Unmarshal(ev.Kv.Value, &r) != nil || r.Rejected {
						continue // deletions, and the leader's own rejections
					}
					if cred, seq, ok := s.keys.ParseReport(string(ev.Kv.Key)); ok {
						fn(cred, seq)
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

// WaitReportGone blocks until the report on cred's seq is deleted after
// revision rev, or ctx ends.
func (s *Store) WaitReportGone(ctx context.Context, cred string, seq uint64, rev int64) error {
	return s.waitReport(ctx, cred, seq, rev, func(ev *clientv3.Event) bool { return ev.Type == clientv3.EventTypeDelete })
}
