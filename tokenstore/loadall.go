package tokenstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// LoadAllError names the credentials LoadAll left out because one of
// their keys did not decode, each with Load's error for it. errors.Is(err,
// ErrRecordUnreadable) holds when a record did not open.
type LoadAllError struct {
	Failed map[string]error // by credential
}

func (e *LoadAllError) Error() string {
	creds := make([]string, 0, len(e.Failed))
	for cred := range e.Failed {
		creds = append(creds, cred)
	}
	slices.Sort(creds)
	return fmt.Sprintf("load all: %d credentials left out: %s", len(creds), strings.Join(creds, ", "))
}

// Unwrap returns each credential's error.
func (e *LoadAllError) Unwrap() []error {
	out := make([]error, 0, len(e.Failed))
	for _, err := range e.Failed {
		out = append(out, err)
	}
	return out
}

// LoadAll reads every credential's snapshot of day in one linearizable
// transaction (one revision, one range read per key family), the bulk
// form of Load for a leader's term start. Each snapshot is what Load(ctx,
// cred, day) would return at that revision, which LoadAll returns too. A
// credential with no key at all is absent from the map: its Load would be
// the empty snapshot with Cred and Day set.
//
// A key that does not decode (a record that does not open, a malformed
// intent, budget or owner) is its credential's trouble alone: that
// credential is left out of the map (do not take its absence for "no
// keys": its Load fails), every other snapshot is returned, and err is a
// *LoadAllError naming the left-out ones. Any other error means nothing
// was read.
//
// The records, the bulk of it (about 400 bytes a credential sealed), are
// read in pages of DefaultListPage at the transaction's revision, so that
// no single reply holds them all (40 MB at 100,000: the leader's peak
// memory at a term start); the intents, owners, refusals and the day's
// budgets come in the transaction.
func (s *Store) LoadAll(ctx context.Context, day string) (map[string]Snapshot, int64, error) {
	k := s.keys
	resp, err := s.c.Txn(ctx).Then(
		clientv3.OpGet(k.Creds(), clientv3.WithPrefix(), clientv3.WithCountOnly()),
		clientv3.OpGet(k.Intents(), clientv3.WithPrefix()),
		clientv3.OpGet(k.DayBudgets(day), clientv3.WithPrefix()),
		clientv3.OpGet(k.Owners(), clientv3.WithPrefix()),
		clientv3.OpGet(k.Refusals(), clientv3.WithPrefix()),
		clientv3.OpGet(k.LegacyBudgets(), clientv3.WithPrefix(), clientv3.WithCountOnly()),
	).Commit()
	if err != nil {
		return nil, 0, fmt.Errorf("load all: %w", err)
	}
	rev := resp.Header.Revision
	rangeOf := func(i int) []*mvccpb.KeyValue { return resp.Responses[i].GetResponseRange().Kvs }
	out := make(map[string]Snapshot, resp.Responses[0].GetResponseRange().Count)
	failed := map[string]error{}
	// each calls fn with the snapshot of every key's credential under
	// prefix and stores it back, unless fn fails.
	each := func(kvs []*mvccpb.KeyValue, prefix string, fn func(sn *Snapshot, kv *mvccpb.KeyValue) error) {
		for _, kv := range kvs {
			cred := string(kv.Key[len(prefix):])
			sn, ok := out[cred]
			if !ok {
				sn = Snapshot{Cred: cred, Day: day}
			}
			if err := fn(&sn, kv); err != nil {
				failed[cred] = fmt.Errorf("load %s: %w", cred, err)
				continue
			}
			out[cred] = sn
		}
	}
	key, end := k.Creds(), clientv3.GetPrefixRangeEnd(k.Creds())
	for {
		page, err := s.c.Get(ctx, key, clientv3.WithRange(end), clientv3.WithRev(rev), clientv3.WithLimit(DefaultListPage))
		if err != nil {
			return nil, 0, fmt.Errorf("load all: records: %w", err)
		}
		each(page.Kvs, k.Creds(), func(sn *Snapshot, kv *mvccpb.KeyValue) (err error) {
			sn.Record, err = s.codec.decodeRecord(string(kv.Key), kv.Value)
			sn.RecordRev = kv.ModRevision
			return err
		})
		if !page.More || len(page.Kvs) == 0 {
			break
		}
		key = string(page.Kvs[len(page.Kvs)-1].Key) + "\x00"
	}
	each(rangeOf(1), k.Intents(), func(sn *Snapshot, kv *mvccpb.KeyValue) error {
		sn.Intent, sn.IntentRev = new(Intent), kv.ModRevision
		if err := json.Unmarshal(kv.Value, sn.Intent); err != nil {
			return fmt.Errorf("intent: %w", err)
		}
		return nil
	})
	if resp.Responses[5].GetResponseRange().Count > 0 {
		// Budgets of the layout before day-scoped keys: today's stand
		// in for a missing new one, as in Load.
		if err := s.legacyBudgets(ctx, day, rev, out, failed); err != nil {
			return nil, 0, err
		}
	}
	each(rangeOf(2), k.DayBudgets(day), func(sn *Snapshot, kv *mvccpb.KeyValue) error {
		sn.Budget, sn.BudgetRev = Budget{}, kv.ModRevision
		if err := json.Unmarshal(kv.Value, &sn.Budget); err != nil {
			return fmt.Errorf("budget: %w", err)
		}
		return nil
	})
	each(rangeOf(3), k.Owners(), func(sn *Snapshot, kv *mvccpb.KeyValue) error {
		sn.Owner, sn.OwnerRev = new(Owner), kv.ModRevision
		if err := json.Unmarshal(kv.Value, sn.Owner); err != nil {
			return fmt.Errorf("owner: %w", err)
		}
		return nil
	})
	for _, kv := range rangeOf(4) {
		// P/refusal/<cred>/<node>: a node name holds no "/".
		rest := string(kv.Key[len(k.Refusals()):])
		i := strings.LastIndexByte(rest, '/')
		var r Refusal
		if i <= 0 || json.Unmarshal(kv.Value, &r) != nil {
			continue // Load skips a malformed refusal too
		}
		cred := rest[:i]
		sn, ok := out[cred]
		if !ok {
			sn = Snapshot{Cred: cred, Day: day}
		}
		sn.Refusals = append(sn.Refusals, r)
		out[cred] = sn
	}
	if len(failed) > 0 {
		for cred := range failed {
			delete(out, cred)
		}
		return out, rev, &LoadAllError{Failed: failed}
	}
	return out, rev, nil
}

// legacyBudgets pages through the budgets of the old layout at rev,
// setting each of day's in out (with BudgetRev 0, as Load does), and
// deletes those of other days: no version reads a past day's budget. That
// happens once after an upgrade; the old prefix then holds at most the
// upgrade day's keys, which BeginFetch deletes one by one and the next
// LoadAll of a later day drops.
func (s *Store) legacyBudgets(ctx context.Context, day string, rev int64, out map[string]Snapshot, failed map[string]error) error {
	k := s.keys
	key, end := k.LegacyBudgets(), clientv3.GetPrefixRangeEnd(k.LegacyBudgets())
	var stale []string
	for {
		resp, err := s.c.Get(ctx, key, clientv3.WithRange(end), clientv3.WithRev(rev), clientv3.WithLimit(DefaultListPage))
		if err != nil {
			return fmt.Errorf("load all: old budgets: %w", err)
		}
		for _, kv := range resp.Kvs {
			cred, d, ok := k.parseLegacyBudget(string(kv.Key))
			switch {
			case !ok:
			case d != day:
				stale = append(stale, string(kv.Key))
			default:
				sn, found := out[cred]
				if !found {
					sn = Snapshot{Cred: cred, Day: day}
				}
				if err := json.Unmarshal(kv.Value, &sn.Budget); err != nil {
					failed[cred] = fmt.Errorf("load %s: budget: %w", cred, err)
					continue
				}
				out[cred] = sn
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	_ = s.dropLegacyBudgets(ctx, stale) // best effort: the next LoadAll tries again
	return nil
}

// ReportKey names one pending report.
type ReportKey struct {
	Cred string
	Seq  uint64
}

// ReportsAll lists every report's credential and seq (keys only, whether
// rejected or not) at one revision, which it returns too: where a report
// watch may start.
func (s *Store) ReportsAll(ctx context.Context) ([]ReportKey, int64, error) {
	resp, err := s.c.Get(ctx, s.keys.Reports(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, 0, fmt.Errorf("reports: %w", err)
	}
	out := make([]ReportKey, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if cred, seq, ok := s.keys.ParseReport(string(kv.Key)); ok {
			out = append(out, ReportKey{Cred: cred, Seq: seq})
		}
	}
	return out, resp.Header.Revision, nil
}
