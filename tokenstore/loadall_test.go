package tokenstore_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/internal/etcdtest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// TestLoadAllMatchesLoad: for credentials with every combination of
// record (sealed), intent, budget of the day, owner and refusals,
// LoadAll's snapshot is Load's; a credential with no key is absent, a
// budget of another day is not read, and a record that does not open
// leaves out its credential alone.
func TestLoadAllMatchesLoad(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	sl := tokenstore.Sealing{Sealer: sealRing(t, sealKey(t))}
	s := sealedStore(c, "/w", sl)
	g := leaderKey(t, c, "/w/election/a")
	day := tokenstore.Day(time.Now())
	other := tokenstore.Day(time.Now().Add(-48 * time.Hour))

	const (
		hasRecord = 1 << iota
		hasIntent // also counts a budget of the day
		hasOtherDay
		hasOwner
		hasRefusals
		all = 1<<iota - 1
	)
	name := func(mask int) string { return fmt.Sprintf("app%02d/token", mask) }
	for mask := 0; mask <= all; mask++ {
		cred := name(mask)
		if mask&hasOtherDay != 0 {
			snap, err := s.Load(ctx(t), cred, other)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.BeginFetch(ctx(t), g, snap, tokenstore.Intent{Seq: 9}, 0); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Delete(ctx(t), s.Keys().Intent(cred)); err != nil {
				t.Fatal(err)
			}
		}
		if mask&hasRecord != 0 {
			publish(t, s, g, record(cred, "v-"+cred, 1))
		}
		if mask&hasIntent != 0 {
			snap, err := s.Load(ctx(t), cred, day)
			if err != nil {
				t.Fatal(err)
			}
			in := tokenstore.Intent{Seq: 2, Node: "n", Started: time.Now().UTC(), Reason: "test", Forced: true}
			if _, err := s.BeginFetch(ctx(t), g, snap, in, 0); err != nil {
				t.Fatal(err)
			}
		}
		if mask&hasOwner != 0 {
			snap, err := s.Load(ctx(t), cred, day)
			if err != nil {
				t.Fatal(err)
			}
			o := &tokenstore.Owner{Cred: cred, Node: "b", LeaderKey: "/w/election/a", LeaderRev: 1, At: time.Now().UTC()}
			if _, err := s.Assign(ctx(t), g, snap, o); err != nil {
				t.Fatal(err)
			}
		}
		if mask&hasRefusals != 0 {
			for _, node := range []string{"n2", "n1"} {
				r := tokenstore.Refusal{Cred: cred, Node: node, Code: 40164, At: time.Now().UTC(), Until: time.Now().Add(time.Hour).UTC()}
				if err := s.Refuse(ctx(t), r); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// A record in the clear while sealing is on does not open.
	putRecord(t, c, record("plain/token", "v", 1))

	got, rev, err := s.LoadAll(ctx(t), day)
	var lae *tokenstore.LoadAllError
	if !errors.As(err, &lae) || !errors.Is(err, tokenstore.ErrRecordUnreadable) || len(lae.Failed) != 1 || lae.Failed["plain/token"] == nil {
		t.Fatalf("LoadAll error = %v; want a LoadAllError naming plain/token alone, wrapping ErrRecordUnreadable", err)
	}
	if _, ok := got["plain/token"]; ok {
		t.Error("LoadAll returned the credential whose record does not open")
	}
	if _, err := s.Load(ctx(t), "plain/token", day); !errors.Is(err, tokenstore.ErrRecordUnreadable) {
		t.Errorf("Load of the unreadable record: %v, want ErrRecordUnreadable", err)
	}
	if now, err := c.Get(ctx(t), "/nothing"); err != nil || now.Header.Revision != rev {
		t.Errorf("LoadAll revision %d, etcd's %v (%v); want equal with no write since", rev, now.Header.Revision, err)
	}
	for mask := 0; mask <= all; mask++ {
		cred := name(mask)
		want, err := s.Load(ctx(t), cred, day)
		if err != nil {
			t.Fatal(err)
		}
		sn, ok := got[cred]
		if wantAbsent := mask&^hasOtherDay == 0; wantAbsent {
			if ok {
				t.Errorf("%s (keys %05b): LoadAll has %+v, want absent", cred, mask, sn)
			}
			if !reflect.DeepEqual(want, tokenstore.Snapshot{Cred: cred, Day: day}) {
				t.Errorf("%s: Load = %+v, want the empty snapshot", cred, want)
			}
			continue
		}
		if !reflect.DeepEqual(sn, want) {
			t.Errorf("%s (keys %05b):\nLoadAll %+v\nLoad    %+v", cred, mask, sn, want)
		}
		if mask&hasRecord != 0 && (sn.Record == nil || sn.Record.Value != "v-"+cred) {
			t.Errorf("%s: record %+v, want the sealed value opened", cred, sn.Record)
		}
		if mask&(hasRecord|hasIntent) == 0 && (sn.Budget != tokenstore.Budget{} || sn.BudgetRev != 0) {
			t.Errorf("%s: budget %+v, want none (only another day's exists)", cred, sn.Budget)
		}
		if mask&hasRefusals != 0 && len(sn.Refusals) != 2 {
			t.Errorf("%s: %d refusals, want 2", cred, len(sn.Refusals))
		}
	}
	if len(got) != all+1-2 {
		t.Errorf("LoadAll has %d credentials, want %d", len(got), all+1-2)
	}
}

// TestReportsAll lists every report's credential and seq.
func TestReportsAll(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	s := tokenstore.New(clus.Client(0), "/w")
	want := []tokenstore.ReportKey{{Cred: "a/jsapi", Seq: 3}, {Cred: "a/token", Seq: 7}, {Cred: "a/token", Seq: 12}}
	for _, r := range want {
		if _, _, err := s.Report(ctx(t), tokenstore.Report{Cred: r.Cred, Seq: r.Seq, Node: "n"}); err != nil {
			t.Fatal(err)
		}
	}
	got, rev, err := s.ReportsAll(ctx(t))
	if err != nil || rev == 0 || !reflect.DeepEqual(got, want) {
		t.Fatalf("ReportsAll = %v, %d, %v; want %v", got, rev, err, want)
	}
}

// BenchmarkLoadAll reads the snapshots of 100,000 credentials with a
// record each, as a leader's term start does.
func BenchmarkLoadAll(b *testing.B) {
	clus := etcdtest.NewCluster(b, 1)
	c := clus.Client(0)
	const n = 100000
	putRecords(b, c, n)
	s := tokenstore.New(c, "/w")
	day := tokenstore.Day(time.Now())
	for b.Loop() {
		all, _, err := s.LoadAll(context.Background(), day)
		if err != nil || len(all) != n {
			b.Fatalf("LoadAll: %d snapshots, %v; want %d", len(all), err, n)
		}
	}
}

// TestLoadAllPagesRecords: more records than one page are all read, none
// above the transaction's revision.
func TestLoadAllPagesRecords(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	s := tokenstore.New(c, "/w")
	n := tokenstore.DefaultListPage + 7
	errs := make(chan error, 8)
	for w := range 8 {
		go func() {
			for i := w; i < n; i += 8 {
				r := tokenstore.Record{Cred: fmt.Sprintf("app%05d/token", i), Value: "v", Seq: 1}
				if _, err := c.Put(context.Background(), s.Keys().Cred(r.Cred), fmt.Sprintf(`{"cred":%q,"value":"v","seq":1}`, r.Cred)); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	snaps, rev, err := s.LoadAll(ctx(t), tokenstore.Day(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != n {
		t.Fatalf("LoadAll read %d credentials, want %d", len(snaps), n)
	}
	for i := range n {
		if sn := snaps[fmt.Sprintf("app%05d/token", i)]; sn.Record == nil || sn.RecordRev == 0 || sn.RecordRev > rev {
			t.Fatalf("credential %d: %+v (rev %d)", i, sn, rev)
		}
	}
}
