package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// DayTTL is the TTL of a day's lease, which every key of that day (under
// Keys.Day) is attached to. The lease is granted at the day's first write,
// so the keys of a day disappear about two days after it began: etcd
// renews every lease to its full TTL when its own raft leader changes, so
// a day can outlive that by up to DayTTL after the last such change.
const DayTTL = 48 * time.Hour

// dayLeases remembers the lease of the last few days.
type dayLeases struct {
	mu  sync.Mutex
	ids map[string]clientv3.LeaseID
}

func (d *dayLeases) get(day string) (clientv3.LeaseID, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	id, ok := d.ids[day]
	return id, ok
}

func (d *dayLeases) set(day string, id clientv3.LeaseID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ids == nil || len(d.ids) >= 3 {
		d.ids = map[string]clientv3.LeaseID{} // days pass: drop the old ones
	}
	d.ids[day] = id
}

func (d *dayLeases) forget(day string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.ids, day)
}

// dayLease returns the lease of day: the one recorded under
// Keys.DayLease(day), or one it grants and records there, with a
// transaction that only the first writer of the day wins.
func (s *Store) dayLease(ctx context.Context, day string) (clientv3.LeaseID, error) {
	if id, ok := s.days.get(day); ok {
		return id, nil
	}
	key := s.keys.DayLease(day)
	resp, err := s.c.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("day lease %s: %w", day, err)
	}
	if len(resp.Kvs) > 0 {
		return s.recordedLease(day, string(resp.Kvs[0].Value))
	}
	g, err := s.c.Grant(ctx, int64(DayTTL/time.Second))
	if err != nil {
		return 0, fmt.Errorf("day lease %s: %w", day, err)
	}
	tr, err := s.c.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, strconv.FormatInt(int64(g.ID), 16), clientv3.WithLease(g.ID))).
		Else(clientv3.OpGet(key)).Commit()
	if err == nil && tr.Succeeded {
		s.days.set(day, g.ID)
		return g.ID, nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	_, _ = s.c.Revoke(rctx, g.ID) // another writer recorded its lease first
	cancel()
	if err != nil {
		return 0, fmt.Errorf("day lease %s: %w", day, err)
	}
	if kvs := tr.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		return s.recordedLease(day, string(kvs[0].Value))
	}
	return 0, fmt.Errorf("day lease %s: recorded lease vanished", day)
}

func (s *Store) recordedLease(day, val string) (clientv3.LeaseID, error) {
	id, err := strconv.ParseInt(val, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("day lease %s: bad lease id: %w", day, err)
	}
	s.days.set(day, clientv3.LeaseID(id))
	return clientv3.LeaseID(id), nil
}

// withDayLease runs write with day's lease. When etcd no longer knows
// that lease (revoked by hand, or etcd restored from an old backup), it
// drops the record of it, grants a new one and runs write once more.
func (s *Store) withDayLease(ctx context.Context, day string, write func(clientv3.LeaseID) error) error {
	for try := 0; ; try++ {
		id, err := s.dayLease(ctx, day)
		if err != nil {
			return err
		}
		err = write(id)
		if !errors.Is(err, rpctypes.ErrLeaseNotFound) || try > 0 {
			return err
		}
		s.days.forget(day)
		key := s.keys.DayLease(day)
		_, err = s.c.Txn(ctx).If(clientv3.Compare(clientv3.Value(key), "=", strconv.FormatInt(int64(id), 16))).
			Then(clientv3.OpDelete(key)).Commit()
		if err != nil {
			return fmt.Errorf("day lease %s: %w", day, err)
		}
	}
}

// dropLegacyBudgets deletes the budgets of the layout before day-scoped
// keys (P/budget/<cred>/<day>) whose day is not today: no version of
// wxtoken reads a past day's budget, so any candidate may delete them,
// unfenced. keys are the legacy keys a listing found.
func (s *Store) dropLegacyBudgets(ctx context.Context, keys []string) error {
	const batch = 100 // under etcd's default of 128 operations per txn
	for len(keys) > 0 {
		n := min(batch, len(keys))
		ops := make([]clientv3.Op, n)
		for i, k := range keys[:n] {
			ops[i] = clientv3.OpDelete(k)
		}
		if _, err := s.c.Txn(ctx).Then(ops...).Commit(); err != nil {
			return fmt.Errorf("drop old budgets: %w", err)
		}
		keys = keys[n:]
	}
	return nil
}

// parseLegacyBudget splits a legacy budget key into credential and day.
func (k Keys) parseLegacyBudget(key string) (cred, day string, ok bool) {
	rest, ok := strings.CutPrefix(key, k.LegacyBudgets())
	i := strings.LastIndexByte(rest, '/')
	if !ok || i <= 0 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}
