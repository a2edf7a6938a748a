package tokenstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Sentinel errors of fenced writes.
var (
	// ErrFenced means the transaction was refused: leadership was lost or
	// another writer changed the credential since it was read.
	ErrFenced = errors.New("tokenstore: fenced write refused")
	// ErrBudget means the day's budget for the credential is used up.
	ErrBudget = errors.New("tokenstore: daily budget used up")
)

// Fence guards leader-only transactions; election.Guard implements it.
type Fence interface {
	Cmp() clientv3.Cmp
}

// Store reads and writes the schema. It is safe for concurrent use.
type Store struct {
	c     *clientv3.Client
	keys  Keys
	codec recordCodec // see codec.go
	days  *dayLeases  // see day.go
}

// New returns a Store on c under prefix (e.g. "/wxtoken").
func New(c *clientv3.Client, prefix string) *Store {
	k := Keys{Prefix: prefix}
	return &Store{c: c, keys: k, codec: newRecordCodec(k, Sealing{}), days: &dayLeases{}}
}

// Keys returns the key layout.
func (s *Store) Keys() Keys { return s.keys }

// Client returns the etcd client.
func (s *Store) Client() *clientv3.Client { return s.c }

// Snapshot is one credential's leader-side state as read at one revision.
// The *Rev fields are mod revisions (0: absent) that fence the next write.
type Snapshot struct {
	Cred      string
	Day       string
	Record    *Record
	RecordRev int64
	Intent    *Intent
	IntentRev int64
	Budget    Budget
	BudgetRev int64
	// Owner is the delegate the leader assigned (nil: the leader itself);
	// OwnerRev fences every fetch of the credential.
	Owner    *Owner
	OwnerRev int64
	// Refusals are WeChat's refusals of this credential still in holdoff,
	// one per node.
	Refusals []Refusal
}

// RefusedFor reports whether node's refusal is in the snapshot.
func (s Snapshot) RefusedFor(node string) bool {
	for _, r := range s.Refusals {
		if r.Node == node {
			return true
		}
	}
	return false
}

// ownerCmp fences a fetch's writes to the owner the snapshot saw.
func (s *Store) ownerCmp(snap Snapshot) clientv3.Cmp {
	return clientv3.Compare(clientv3.ModRevision(s.keys.Owner(snap.Cred)), "=", snap.OwnerRev)
}

// Load reads a credential's record, intent, budget of day, owner and
// refusals in one linearizable transaction. When day has no budget key
// but the layout before day-scoped keys has one (an upgrade during the
// day), the snapshot's Budget is that one's count and BudgetRev 0: the
// next BeginFetch writes the count on and deletes the old key.
func (s *Store) Load(ctx context.Context, cred, day string) (Snapshot, error) {
	resp, err := s.c.Txn(ctx).Then(
		clientv3.OpGet(s.keys.Cred(cred)),
		clientv3.OpGet(s.keys.Intent(cred)),
		clientv3.OpGet(s.keys.Budget(cred, day)),
		clientv3.OpGet(s.keys.Owner(cred)),
		clientv3.OpGet(s.keys.CredRefusals(cred), clientv3.WithPrefix()),
		clientv3.OpGet(s.keys.LegacyBudget(cred, day)),
	).Commit()
	if err != nil {
		return Snapshot{}, fmt.Errorf("load %s: %w", cred, err)
	}
	snap := Snapshot{Cred: cred, Day: day}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		if snap.Record, err = s.codec.decodeRecord(string(kvs[0].Key), kvs[0].Value); err != nil {
			return Snapshot{}, fmt.Errorf("load %s: %w", cred, err)
		}
		snap.RecordRev = kvs[0].ModRevision
	}
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		snap.Intent = new(Intent)
		if err := json.Unmarshal(kvs[0].Value, snap.Intent); err != nil {
			return Snapshot{}, fmt.Errorf("load %s: intent: %w", cred, err)
		}
		snap.IntentRev = kvs[0].ModRevision
	}
	if kvs := resp.Responses[2].GetResponseRange().Kvs; len(kvs) > 0 {
		if err := json.Unmarshal(kvs[0].Value, &snap.Budget); err != nil {
			return Snapshot{}, fmt.Errorf("load %s: budget: %w", cred, err)
		}
		snap.BudgetRev = kvs[0].ModRevision
	} else if kvs := resp.Responses[5].GetResponseRange().Kvs; len(kvs) > 0 {
		if err := json.Unmarshal(kvs[0].Value, &snap.Budget); err != nil {
			return Snapshot{}, fmt.Errorf("load %s: budget: %w", cred, err)
		}
	}
	if kvs := resp.Responses[3].GetResponseRange().Kvs; len(kvs) > 0 {
		snap.Owner = new(Owner)
		if err := json.Unmarshal(kvs[0].Value, snap.Owner); err != nil {
			return Snapshot{}, fmt.Errorf("load %s: owner: %w", cred, err)
		}
		snap.OwnerRev = kvs[0].ModRevision
	}
	for _, kv := range resp.Responses[4].GetResponseRange().Kvs {
		var r Refusal
		if json.Unmarshal(kv.Value, &r) == nil {
			snap.Refusals = append(snap.Refusals, r)
		}
	}
	return snap, nil
}

// Seq is the sequence number of the snapshot's record (0 if none).
func (s Snapshot) Seq() uint64 {
	if s.Record == nil {
		return 0
	}
	return s.Record.Seq
}

// BeginFetch writes in (which replaces any intent in snap) and counts one
// fetch against the day's budget, in one transaction fenced by f and by the
// snapshot's revisions. The budget key lives on the day's lease (DayTTL). limit <= 0 means no budget. It returns the intent's
// mod revision, ErrBudget when the budget is used up, or ErrFenced.
func (s *Store) BeginFetch(ctx context.Context, f Fence, snap Snapshot, in Intent, limit int) (int64, error) {
	return s.beginFetch(ctx, f, snap, in, limit, nil, nil)
}

// beginFetch is BeginFetch with more conditions and operations in the
// same transaction (a claimed authorization code, see ClaimCode).
func (s *Store) beginFetch(ctx context.Context, f Fence, snap Snapshot, in Intent, limit int, cmps []clientv3.Cmp, ops []clientv3.Op) (int64, error) {
	b := snap.Budget
	if limit > 0 && b.Count >= limit {
		return 0, ErrBudget
	}
	b.Count++
	if in.Forced {
		b.Forced++
	}
	if in.Foreign {
		b.Foreign++
	}
	inJSON, _ := json.Marshal(in)
	bJSON, _ := json.Marshal(b)
	var resp *clientv3.TxnResponse
	err := s.withDayLease(ctx, snap.Day, func(lease clientv3.LeaseID) (err error) {
		resp, err = s.c.Txn(ctx).If(append([]clientv3.Cmp{
			f.Cmp(),
			clientv3.Compare(clientv3.ModRevision(s.keys.Cred(snap.Cred)), "=", snap.RecordRev),
			clientv3.Compare(clientv3.ModRevision(s.keys.Intent(snap.Cred)), "=", snap.IntentRev),
			clientv3.Compare(clientv3.ModRevision(s.keys.Budget(snap.Cred, snap.Day)), "=", snap.BudgetRev),
			s.ownerCmp(snap),
		}, cmps...)...).Then(append([]clientv3.Op{
			clientv3.OpPut(s.keys.Intent(snap.Cred), string(inJSON)),
			clientv3.OpPut(s.keys.Budget(snap.Cred, snap.Day), string(bJSON), clientv3.WithLease(lease)),
			clientv3.OpDelete(s.keys.LegacyBudget(snap.Cred, snap.Day)),
		}, ops...)...).Commit()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("begin fetch %s: %w", snap.Cred, err)
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("begin fetch %s: %w", snap.Cred, ErrFenced)
	}
	return resp.Header.Revision, nil
}

// Publish stores rec, deletes the intent written at intentRev and the
// reports on every seq but rec's, fenced by f, the intent and the snapshot's record
// revision. rec.Seq must be above the snapshot's.
func (s *Store) Publish(ctx context.Context, f Fence, snap Snapshot, intentRev int64, rec Record) error {
	return s.publish(ctx, f, snap, intentRev, rec, nil)
}

// publish is Publish with more operations in the same transaction (an
// authorizer's refresh token, see PublishAuthorizer).
func (s *Store) publish(ctx context.Context, f Fence, snap Snapshot, intentRev int64, rec Record, ops []clientv3.Op) error {
	if rec.Seq <= snap.Seq() {
		return fmt.Errorf("publish %s: seq %d not above %d", snap.Cred, rec.Seq, snap.Seq())
	}
	rec.PublishedAt = time.Now()
	recJSON, err := s.codec.encodeRecord(s.keys.Cred(snap.Cred), rec)
	if err != nil {
		return fmt.Errorf("publish %s: %w", snap.Cred, err)
	}
	resp, err := s.c.Txn(ctx).If(
		f.Cmp(),
		clientv3.Compare(clientv3.ModRevision(s.keys.Intent(snap.Cred)), "=", intentRev),
		clientv3.Compare(clientv3.ModRevision(s.keys.Cred(snap.Cred)), "=", snap.RecordRev),
		s.ownerCmp(snap),
	).Then(append([]clientv3.Op{
		clientv3.OpPut(s.keys.Cred(snap.Cred), recJSON),
		clientv3.OpDelete(s.keys.Intent(snap.Cred)),
		clientv3.OpDelete(s.keys.Report(snap.Cred, 0), clientv3.WithRange(s.keys.Report(snap.Cred, rec.Seq))),
		// No replica has served a seq above rec's: a report on one was
		// not written through the API, and would otherwise stay.
		clientv3.OpDelete(s.keys.Report(snap.Cred, rec.Seq+1), clientv3.WithRange(clientv3.GetPrefixRangeEnd(s.keys.CredReports(snap.Cred)))),
	}, ops...)...).Commit()
	if err != nil {
		return fmt.Errorf("publish %s: %w", snap.Cred, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("publish %s: %w", snap.Cred, ErrFenced)
	}
	return nil
}

// AbortFetch deletes the intent written at intentRev, fenced by f and the
// snapshot's owner. Call it only when the WeChat call surely minted nothing.
func (s *Store) AbortFetch(ctx context.Context, f Fence, snap Snapshot, intentRev int64) error {
	cred := snap.Cred
	resp, err := s.c.Txn(ctx).If(
		f.Cmp(),
		clientv3.Compare(clientv3.ModRevision(s.keys.Intent(cred)), "=", intentRev),
		s.ownerCmp(snap),
	).Then(clientv3.OpDelete(s.keys.Intent(cred))).Commit()
	if err != nil {
		return fmt.Errorf("abort fetch %s: %w", cred, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("abort fetch %s: %w", cred, ErrFenced)
	}
	return nil
}

// MaxLastError bounds State.LastError, in bytes, so that a state key's
// size does not depend on what an error message holds.
const MaxLastError = 512

func truncate(msg string, n int) string {
	if len(msg) <= n {
		return msg
	}
	for n > 0 && !utf8.RuneStart(msg[n]) {
		n--
	}
	return msg[:n] + "…"
}

// PutState stores the leader's view of a credential, fenced by f; a
// LastError longer than MaxLastError is cut.
func (s *Store) PutState(ctx context.Context, f Fence, st State) error {
	st.LastError = truncate(st.LastError, MaxLastError)
	val, _ := json.Marshal(st)
	_, err := s.c.Txn(ctx).If(f.Cmp()).Then(clientv3.OpPut(s.keys.State(st.Cred), string(val))).Commit()
	if err != nil {
		return fmt.Errorf("put state %s: %w", st.Cred, err)
	}
	return nil
}

// PublishUnfenced stores rec with no fence at all. It exists only for the
// deliberately broken build that the fault suite's checker must catch.
func (s *Store) PublishUnfenced(ctx context.Context, rec Record) error {
	rec.PublishedAt = time.Now()
	recJSON, err := s.codec.encodeRecord(s.keys.Cred(rec.Cred), rec)
	if err != nil {
		return fmt.Errorf("publish %s: %w", rec.Cred, err)
	}
	if _, err := s.c.Put(ctx, s.keys.Cred(rec.Cred), recJSON); err != nil {
		return fmt.Errorf("publish %s: %w", rec.Cred, err)
	}
	return nil
}

// CountExtra adds n calls to a credential's budget of day, fenced by f:
// the retries inside one fetch, which BeginFetch counted as one (and
// whose key it wrote: CountExtra reads no budget of the old layout).
func (s *Store) CountExtra(ctx context.Context, f Fence, cred, day string, n int) error {
	key := s.keys.Budget(cred, day)
	for ctx.Err() == nil {
		resp, err := s.c.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("count extra %s: %w", cred, err)
		}
		var b Budget
		var rev int64
		if len(resp.Kvs) > 0 {
			if err := json.Unmarshal(resp.Kvs[0].Value, &b); err != nil {
				return fmt.Errorf("count extra %s: %w", cred, err)
			}
			rev = resp.Kvs[0].ModRevision
		}
		b.Count += n
		val, _ := json.Marshal(b)
		var tr *clientv3.TxnResponse
		err = s.withDayLease(ctx, day, func(lease clientv3.LeaseID) (err error) {
			tr, err = s.c.Txn(ctx).If(f.Cmp(), clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
				Then(clientv3.OpPut(key, string(val), clientv3.WithLease(lease))).Commit()
			return err
		})
		if err != nil {
			return fmt.Errorf("count extra %s: %w", cred, err)
		}
		if tr.Succeeded {
			return nil
		}
	}
	return ctx.Err()
}
