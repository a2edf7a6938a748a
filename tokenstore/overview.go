package tokenstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Overview is what status shows of the whole cluster.
type Overview struct {
	States   []State
	Budgets  map[string]Budget // by credential, for the given day
	Replicas []Presence
	Intents  map[string]Intent
	Refusals map[string][]Refusal // by credential
	Owners   map[string]Owner     // delegated credentials
}

// overviewPerApp is the most apps OverviewApps reads app by app (five
// ranges each, in one transaction under etcd's default limit of 128
// operations); with more it reads each key family whole.
const overviewPerApp = 20

// Overview reads states, budgets of day, presences, intents, refusals and
// owners of every credential in one transaction.
func (s *Store) Overview(ctx context.Context, day string) (Overview, error) {
	return s.OverviewApps(ctx, day, nil)
}

// OverviewApps is Overview of the credentials of apps alone (every
// presence still): a sidecar's status reads what concerns its few apps,
// not the whole cluster's. nil apps: every credential.
func (s *Store) OverviewApps(ctx context.Context, day string, apps []string) (Overview, error) {
	ov := Overview{Budgets: map[string]Budget{}, Intents: map[string]Intent{}, Refusals: map[string][]Refusal{}, Owners: map[string]Owner{}}
	k := s.keys
	bases := []string{k.States(), k.DayBudgets(day), k.Intents(), k.Refusals(), k.Owners()}
	perApp := apps != nil && len(apps) <= overviewPerApp
	want := map[string]bool{}
	for _, a := range apps {
		want[a] = true
	}
	ops := []clientv3.Op{clientv3.OpGet(k.Replicas(), clientv3.WithPrefix())}
	for _, base := range bases {
		if !perApp {
			ops = append(ops, clientv3.OpGet(base, clientv3.WithPrefix()))
			continue
		}
		for _, a := range apps {
			ops = append(ops, clientv3.OpGet(base+a+"/", clientv3.WithPrefix()))
		}
	}
	resp, err := s.c.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return ov, fmt.Errorf("overview: %w", err)
	}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		var p Presence
		if json.Unmarshal(kv.Value, &p) == nil {
			ov.Replicas = append(ov.Replicas, p)
		}
	}
	// each calls fn with every key of base's family, and the credential
	// its key names (up to the last "/" for refusals).
	next := 1
	each := func(base string, fn func(cred string, kv *mvccpb.KeyValue)) {
		n := 1
		if perApp {
			n = len(apps)
		}
		for _, r := range resp.Responses[next : next+n] {
			for _, kv := range r.GetResponseRange().Kvs {
				cred := string(kv.Key[len(base):])
				if base == k.Refusals() {
					cred = cred[:max(strings.LastIndexByte(cred, '/'), 0)]
				}
				app, _, _ := strings.Cut(cred, "/")
				if apps == nil || want[app] {
					fn(cred, kv)
				}
			}
		}
		next += n
	}
	each(bases[0], func(_ string, kv *mvccpb.KeyValue) {
		var st State
		if json.Unmarshal(kv.Value, &st) == nil {
			ov.States = append(ov.States, st)
		}
	})
	each(bases[1], func(cred string, kv *mvccpb.KeyValue) {
		var b Budget
		if json.Unmarshal(kv.Value, &b) == nil {
			ov.Budgets[cred] = b
		}
	})
	each(bases[2], func(cred string, kv *mvccpb.KeyValue) {
		var in Intent
		if json.Unmarshal(kv.Value, &in) == nil {
			ov.Intents[cred] = in
		}
	})
	each(bases[3], func(_ string, kv *mvccpb.KeyValue) {
		var r Refusal
		if json.Unmarshal(kv.Value, &r) == nil {
			ov.Refusals[r.Cred] = append(ov.Refusals[r.Cred], r)
		}
	})
	each(bases[4], func(_ string, kv *mvccpb.KeyValue) {
		var o Owner
		if json.Unmarshal(kv.Value, &o) == nil {
			ov.Owners[o.Cred] = o
		}
	})
	return ov, nil
}
