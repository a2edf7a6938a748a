package api

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// Status is the answer of /v1/status.
type Status struct {
	Node        string                `json:"node"`
	Leader      string                `json:"leader"`
	Ready       bool                  `json:"ready"`
	EtcdError   string                `json:"etcd_error,omitempty"`
	Replicas    []tokenstore.Presence `json:"replicas"`
	Credentials []CredStatus          `json:"credentials"`
}

// CredStatus is one credential in Status.
type CredStatus struct {
	Cred         string    `json:"cred"`
	App          string    `json:"app"`
	Kind         string    `json:"kind"`
	Seq          uint64    `json:"seq"`
	FetchedAt    time.Time `json:"fetched_at,omitzero"`
	AgeSeconds   int64     `json:"age_seconds"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"`
	NextRefresh  time.Time `json:"next_refresh,omitzero"`
	Usable       bool      `json:"usable"`
	FetchesToday int       `json:"fetches_today"`
	Budget       int       `json:"budget,omitempty"` // fetches allowed per China-time day
	Blocked      string    `json:"blocked,omitempty"`
	BlockedTill  time.Time `json:"blocked_till,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
	InFlight     bool      `json:"fetch_in_flight"`
	// Refused lists the nodes WeChat refuses this credential from (IP
	// whitelist), each until its holdoff ends.
	Refused []Refusal `json:"refused,omitempty"`
	// Owner is the candidate that fetches this credential because WeChat
	// refuses the leader for it ("" : the leader).
	Owner string `json:"owner,omitempty"`
	// ForeignFetches counts today's tokens killed by a fetch from outside
	// the cluster.
	ForeignFetches int `json:"foreign_fetches"`
}

// Refusal is one node WeChat refuses a credential from.
type Refusal struct {
	Node  string    `json:"node"`
	Code  int       `json:"code"`
	Until time.Time `json:"until"`
}

// Status gathers the replica's and the cluster's state. etcd is asked with
// a short timeout; without it the answer holds the cache only.
func (a *API) Status(ctx context.Context) Status {
	now := a.cfg.Now()
	st := Status{Node: a.cfg.Node, Ready: a.cfg.Cache.Synced(), Replicas: []tokenstore.Presence{}}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	names := make([]string, 0, len(a.apps))
	for n := range a.apps {
		names = append(names, n)
	}
	sort.Strings(names)
	// Only this replica's apps: a sidecar's status reads a few keys, not
	// the whole cluster's.
	ov, err := a.cfg.Store.OverviewApps(ctx, tokenstore.Day(now), names)
	if err != nil {
		st.EtcdError = "etcd unreachable"
	}
	if a.cfg.Leader != nil && err == nil {
		st.Leader, _ = a.cfg.Leader(ctx)
	}
	if ov.Replicas != nil {
		st.Replicas = ov.Replicas
	}
	states := map[string]tokenstore.State{}
	for _, s := range ov.States {
		states[s.Cred] = s
	}
	for _, n := range names {
		app := a.apps[n]
		whats := append([]string{"token"}, app.Tickets...)
		for _, what := range whats {
			cred := tokenstore.CredName(app.Name, what)
			cs := CredStatus{Cred: cred, App: app.Name, Kind: app.Kind}
			if what != "token" {
				cs.Kind = what
			}
			if rec, ok := a.cfg.Cache.Get(cred); ok {
				cs.Seq, cs.FetchedAt, cs.ExpiresAt, cs.NextRefresh = rec.Seq, rec.FetchedAt, rec.ExpiresAt, rec.RefreshAt
				cs.AgeSeconds = int64(now.Sub(rec.FetchedAt).Seconds())
				cs.Usable = rec.Usable(now, a.cfg.Margin)
			}
			if s, ok := states[cred]; ok {
				cs.Blocked, cs.BlockedTill, cs.LastError = s.Blocked, s.BlockedTill, s.LastError
				if !s.NextRefresh.IsZero() {
					cs.NextRefresh = s.NextRefresh
				}
			}
			cs.FetchesToday, cs.Budget, cs.ForeignFetches = ov.Budgets[cred].Count, app.Budget, ov.Budgets[cred].Foreign
			for _, r := range ov.Refusals[cred] {
				cs.Refused = append(cs.Refused, Refusal{Node: r.Node, Code: r.Code, Until: r.Until})
			}
			if o, ok := ov.Owners[cred]; ok {
				cs.Owner = o.Node
			}
			_, cs.InFlight = ov.Intents[cred]
			st.Credentials = append(st.Credentials, cs)
		}
	}
	return st
}

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.Status(r.Context()))
}
