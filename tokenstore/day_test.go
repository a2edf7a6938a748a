package tokenstore_test

import (
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/internal/etcdtest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// beginFetch counts one fetch of cred on day. It may run on any
// goroutine: it reports a failure with t.Error.
func beginFetch(t *testing.T, s *tokenstore.Store, g tokenstore.Fence, cred, day string) {
	t.Helper()
	snap, err := s.Load(ctx(t), cred, day)
	if err == nil {
		_, err = s.BeginFetch(ctx(t), g, snap, tokenstore.Intent{Seq: snap.Seq() + 1, Node: "n"}, 0)
	}
	if err != nil {
		t.Errorf("fetch %s on %s: %v", cred, day, err)
	}
}

// TestDayKeysLeased: the budgets of one day live on one lease of DayTTL,
// recorded under the day; writers of another day use another; a lease
// etcd lost is replaced at the next write.
func TestDayKeysLeased(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	g := leaderKey(t, c, "/w/election/a")
	s1, s2 := tokenstore.New(c, "/w"), tokenstore.New(c, "/w") // two writers, as two leaders in turn
	keys := s1.Keys()
	day, other := "20261202", "20261201"

	var wg sync.WaitGroup
	for i, s := range []*tokenstore.Store{s1, s2, s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			beginFetch(t, s, g, []string{"a/token", "b/token", "c/token", "d/token"}[i], day)
		}()
	}
	wg.Wait()
	beginFetch(t, s1, g, "a/token", other)
	if err := s2.CountExtra(ctx(t), g, "b/token", day, 2); err != nil {
		t.Fatal(err)
	}

	leaseOf := func(key string) clientv3.LeaseID {
		t.Helper()
		r, err := c.Get(ctx(t), key)
		if err != nil || len(r.Kvs) != 1 {
			t.Fatalf("get %s: %v, %d keys", key, err, len(r.Kvs))
		}
		return clientv3.LeaseID(r.Kvs[0].Lease)
	}
	lease := leaseOf(keys.DayLease(day))
	for _, cred := range []string{"a/token", "b/token", "c/token", "d/token"} {
		if got := leaseOf(keys.Budget(cred, day)); got != lease || got == 0 {
			t.Errorf("budget of %s on %s: lease %x, want the day's %x", cred, day, got, lease)
		}
	}
	if got := leaseOf(keys.Budget("a/token", other)); got == lease || got != leaseOf(keys.DayLease(other)) {
		t.Errorf("budget of another day: lease %x, want that day's %x, not %x", got, leaseOf(keys.DayLease(other)), lease)
	}
	ttl, err := c.TimeToLive(ctx(t), lease)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(tokenstore.DayTTL / time.Second); ttl.GrantedTTL != want || ttl.TTL < want-60 {
		t.Errorf("day lease: granted %d s, %d s left; want %d s (48 h)", ttl.GrantedTTL, ttl.TTL, want)
	}
	leases, err := c.Leases(ctx(t))
	if err != nil || len(leases.Leases) != 2 {
		t.Errorf("leases: %v, %v; want two (one per day), the losers' revoked", leases, err)
	}

	// A lost lease takes the day's keys with it; the next write grants
	// a new one although both stores remember the old.
	if _, err := c.Revoke(ctx(t), lease); err != nil {
		t.Fatal(err)
	}
	if r, _ := c.Get(ctx(t), keys.DayBudgets(day), clientv3.WithPrefix()); len(r.Kvs) != 0 {
		t.Fatalf("after the revoke, %d budgets of the day remain", len(r.Kvs))
	}
	beginFetch(t, s1, g, "a/token", day)
	if err := s2.CountExtra(ctx(t), g, "a/token", day, 1); err != nil {
		t.Fatalf("CountExtra with a lost lease: %v", err)
	}
	renewed := leaseOf(keys.DayLease(day))
	if renewed == lease || leaseOf(keys.Budget("a/token", day)) != renewed {
		t.Errorf("after the revoke: day lease %x, budget lease %x; want a new lease for both", renewed, leaseOf(keys.Budget("a/token", day)))
	}
	if snap, _ := s1.Load(ctx(t), "a/token", day); snap.Budget.Count != 2 {
		t.Errorf("budget after the revoke: %+v, want count 2", snap.Budget)
	}
}

// TestOverviewReadsOneDay: status reads the budgets of its day alone, in
// one range under that day's prefix.
func TestOverviewReadsOneDay(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	g := leaderKey(t, clus.Client(0), "/w/election/a")
	w := tokenstore.New(clus.Client(0), "/w")
	day := "20261202"
	for _, d := range []string{"20261130", "20261201", day} {
		beginFetch(t, w, g, "a/token", d)
	}
	beginFetch(t, w, g, "b/token", "20261201")

	var mu sync.Mutex
	var ranges []string
	cnt := &etcdtest.Counter{Observe: func(method string, req any) {
		if tr, ok := req.(*pb.TxnRequest); ok {
			mu.Lock()
			defer mu.Unlock()
			for _, op := range tr.Success {
				if r := op.GetRequestRange(); r != nil {
					ranges = append(ranges, string(r.Key))
				}
			}
		}
	}}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{clus.Members[0].GRPCURL}, DialTimeout: 5 * time.Second, DialOptions: cnt.DialOptions()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ov, err := tokenstore.New(c, "/w").Overview(ctx(t), day)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]tokenstore.Budget{"a/token": {Count: 1}}; !reflect.DeepEqual(ov.Budgets, want) {
		t.Errorf("Overview budgets %+v, want %+v", ov.Budgets, want)
	}
	keys := w.Keys()
	for _, k := range ranges {
		if (strings.HasPrefix(k, keys.Days()) && k != keys.DayBudgets(day)) || strings.HasPrefix(k, keys.LegacyBudgets()) {
			t.Errorf("Overview reads %s; want only %s of the day-scoped keys", k, keys.DayBudgets(day))
		}
	}
}

// TestLegacyBudgetCarriesOver: after an upgrade during the day, the count
// kept under the old layout is the base of the day's budget, in Load and
// LoadAll alike; the first fetch writes it on and deletes the old key;
// LoadAll deletes old keys of past days.
func TestLegacyBudgetCarriesOver(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	g := leaderKey(t, c, "/w/election/a")
	s := tokenstore.New(c, "/w")
	keys := s.Keys()
	day, past := "20261202", "20261101"
	for key, val := range map[string]string{
		keys.LegacyBudget("a/token", day):  `{"count":5,"forced":1}`,
		keys.LegacyBudget("a/token", past): `{"count":9}`,
		keys.LegacyBudget("b/token", past): `{"count":9}`,
	} {
		if _, err := c.Put(ctx(t), key, val); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := s.Load(ctx(t), "a/token", day)
	if err != nil || snap.Budget != (tokenstore.Budget{Count: 5, Forced: 1}) || snap.BudgetRev != 0 {
		t.Fatalf("Load = %+v, %v; want the old key's count 5, forced 1, BudgetRev 0", snap, err)
	}
	all, _, err := s.LoadAll(ctx(t), day)
	if err != nil || len(all) != 1 || !reflect.DeepEqual(all["a/token"], snap) {
		t.Fatalf("LoadAll = %+v, %v; want a/token alone, as Load: %+v", all, err, snap)
	}
	r, err := c.Get(ctx(t), keys.LegacyBudgets(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Key) != keys.LegacyBudget("a/token", day) {
		t.Errorf("old keys after LoadAll: %v (%v); want today's alone", r.Kvs, err)
	}
	beginFetch(t, s, g, "a/token", day)
	snap, err = s.Load(ctx(t), "a/token", day)
	if err != nil || snap.Budget.Count != 6 || snap.BudgetRev == 0 {
		t.Errorf("after a fetch: %+v, %v; want count 6 under the new key", snap.Budget, err)
	}
	if r, _ := c.Get(ctx(t), keys.LegacyBudgets(), clientv3.WithPrefix()); len(r.Kvs) != 0 {
		t.Errorf("%d old keys remain after the fetch; want none", len(r.Kvs))
	}
}

// TestOverviewApps: a status limited to some apps holds what concerns
// them alone ("ab" is not "a"), app by app or, with many apps, filtered
// from whole ranges.
func TestOverviewApps(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	g := leaderKey(t, c, "/w/election/a")
	s := tokenstore.New(c, "/w")
	day := "20261202"
	for _, cred := range []string{"a/token", "a/jsapi", "ab/token", "b/token"} {
		beginFetch(t, s, g, cred, day) // a budget and an intent each
		if err := s.PutState(ctx(t), g, tokenstore.State{Cred: cred}); err != nil {
			t.Fatal(err)
		}
		if err := s.Refuse(ctx(t), tokenstore.Refusal{Cred: cred, Node: "n1", Until: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	many := []string{"a"}
	for i := range 30 {
		many = append(many, "z"+string(rune('a'+i)))
	}
	for _, apps := range [][]string{{"a"}, many} {
		ov, err := s.OverviewApps(ctx(t), day, apps)
		if err != nil {
			t.Fatal(err)
		}
		var states []string
		for _, st := range ov.States {
			states = append(states, st.Cred)
		}
		if len(states) != 2 || len(ov.Budgets) != 2 || len(ov.Intents) != 2 || len(ov.Refusals) != 2 ||
			ov.Budgets["a/token"].Count != 1 || len(ov.Refusals["a/jsapi"]) != 1 {
			t.Errorf("%d apps: states %v, budgets %v, intents %d, refusals %d; want a/token and a/jsapi alone",
				len(apps), states, ov.Budgets, len(ov.Intents), len(ov.Refusals))
		}
	}
	if ov, err := s.Overview(ctx(t), day); err != nil || len(ov.States) != 4 || len(ov.Budgets) != 4 || len(ov.Refusals) != 4 {
		t.Errorf("Overview of all: %d states, %d budgets, %d refusals (%v); want 4 each", len(ov.States), len(ov.Budgets), len(ov.Refusals), err)
	}
}
