package checker

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// twoApps is a history of 120 s with two apps refreshed every 20 s
// (tokens live 31 s), read every second from one replica, and one
// refusal of shop from 40 to 60 s.
func twoApps() History {
	h := History{
		Run: Run{Seed: 2, Build: "normal", Start: at(0), End: at(120), TokenTTL: Duration(30 * time.Second),
			FetchTimeout: Duration(3 * time.Second), Margin: Duration(3 * time.Second), InvalidateWait: Duration(10 * time.Second),
			Outside: []string{"127.0.0.1"}},
		Apps: []App{
			{Name: "mini", Kind: "classic", AppID: "wxmini", RefreshEvery: Duration(20 * time.Second)},
			{Name: "shop", Kind: "classic", AppID: "wxshop", RefreshEvery: Duration(20 * time.Second)},
		},
		Faults: []Fault{{Kind: kindRefuseApp, Target: "app shop", App: "shop", Start: at(40), End: at(60)}},
	}
	for _, a := range h.Apps {
		for k := range 7 {
			mint := float64(20*k - 1)
			tok := fmt.Sprintf("%s%d", a.Name, k)
			h.Fetches = append(h.Fetches, Fetch{Start: at(mint), At: at(mint), Kind: "classic", AppID: a.AppID, Token: tok, Issued: true, Caller: "127.0.0.11"})
			h.Tokens = append(h.Tokens, Life{Token: tok, Kind: "classic", AppID: a.AppID, Issued: at(mint), End: at(mint + 31)})
		}
		for s := 0.0; s < 120; s++ {
			k := int(s+1) / 20
			h.Reads = append(h.Reads, Read{Replica: "r1", App: a.Name, Start: at(s), End: at(s + 0.01), Status: 200,
				Token: fmt.Sprintf("%s%d", a.Name, k), Seq: uint64(k + 1)})
		}
	}
	return h
}

// fail makes the reads of app from lo to hi (seconds) answer 503.
func fail(h *History, app string, lo, hi float64) {
	for i := range h.Reads {
		if rd := &h.Reads[i]; rd.App == app && !rd.Start.Before(at(lo)) && rd.Start.Before(at(hi)) {
			*rd = Read{Replica: rd.Replica, App: app, Start: rd.Start, End: rd.End, Status: 503, Code: "no_credential"}
		}
	}
}

// serve makes the reads of app from lo to hi (seconds) return token.
func serve(h *History, app, token string, lo, hi float64) {
	for i := range h.Reads {
		if rd := &h.Reads[i]; rd.App == app && !rd.Start.Before(at(lo)) && rd.Start.Before(at(hi)) {
			rd.Status, rd.Code, rd.Token = 200, "", token
		}
	}
}

// refetch has the cluster fetch shop3 at 56 s instead of 59 s, after
// shop2 died at 50 s: reads of shop serve shop2 until then.
func refetch(h *History) {
	for i := range h.Fetches {
		if f := &h.Fetches[i]; f.Token == "shop3" {
			f.Start, f.At = at(56), at(56)
		}
	}
	serve(h, "shop", "shop2", 50, 56)
	for i := range h.Reads {
		if rd := &h.Reads[i]; rd.App == "shop" && !rd.Start.Before(at(56)) && rd.Start.Before(at(59)) {
			rd.Token, rd.Seq = "shop3", 4
		}
	}
}

// life sets when token dies.
func life(h *History, token string, end float64) {
	for i := range h.Tokens {
		if h.Tokens[i].Token == token {
			h.Tokens[i].End = at(end)
		}
	}
}

func TestCheckProduction(t *testing.T) {
	foreign := func(h *History) {
		// A token fetched outside the cluster at 40 s kills shop2 (minted
		// at 39 s) at 50 s; a consumer reports it at 50.5 s; the cluster
		// fetched shop3 at 56 s, and the replica kept serving shop2 until
		// then. Excused: until 50.5 + 3 + 3 s.
		h.Faults = []Fault{{Kind: kindForeign, App: "shop", Token: "shop2", Start: at(41), End: at(60), Counted: 1}}
		h.Fetches = append(h.Fetches, Fetch{Start: at(40), At: at(40), Kind: "classic", AppID: "wxshop", Token: "alien", Issued: true, Caller: "127.0.0.1"})
		life(h, "shop2", 50)
		h.Invalidations = append(h.Invalidations, Invalidation{By: "consumer", Replica: "r1", App: "shop", Token: "shop2",
			Start: at(50.5), End: at(56), Status: 200, Answer: "shop3"})
		refetch(h)
	}
	tests := []struct {
		name   string
		change func(h *History)
		want   []string
	}{
		{"clean", func(h *History) {}, nil},
		{"the refused app's own errors are excused", func(h *History) { fail(h, "shop", 45, 60) }, nil},
		{"another app's reads fail during the refusal", func(h *History) { fail(h, "mini", 45, 60) },
			[]string{CheckAppAvailability, CheckIsolation}},
		{"another app's fetches stop during the refusal", func(h *History) {
			var keep []Fetch
			for _, f := range h.Fetches {
				if f.Token != "mini2" && f.Token != "mini3" {
					keep = append(keep, f)
				}
			}
			h.Fetches = keep
			life(h, "mini1", 100)
			serve(h, "mini", "mini1", 39, 79)
		}, []string{CheckIsolation}},
		{"a leader-only refusal must cost its app nothing", func(h *History) {
			h.Faults[0].Kind = kindRefuseLeader
			fail(h, "shop", 45, 50)
		}, []string{CheckAppAvailability}},
		{"a repeated report answered at once", func(h *History) {
			h.Invalidations = append(h.Invalidations, Invalidation{By: "harness", Replica: "r1", App: "mini", Token: "mini1",
				Start: at(30), End: at(30.05), Status: 200, Answer: "mini1", Repeat: true})
		}, nil},
		{"a repeated report stuck", func(h *History) {
			h.Invalidations = append(h.Invalidations, Invalidation{By: "harness", Replica: "r1", App: "mini", Token: "mini1",
				Start: at(30), End: at(40), Status: 503, Code: "refresh_pending", Repeat: true})
		}, []string{CheckStuckReports}},
		{"a repeated report answered late", func(h *History) {
			h.Invalidations = append(h.Invalidations, Invalidation{By: "harness", Replica: "r1", App: "mini", Token: "mini1",
				Start: at(30), End: at(33), Status: 200, Answer: "mini1", Repeat: true})
		}, []string{CheckStuckReports}},
		{"a report answered with a dead token", func(h *History) {
			h.Invalidations = append(h.Invalidations, Invalidation{By: "consumer", Replica: "r1", App: "mini", Token: "mini0",
				Start: at(35), End: at(35.01), Status: 200, Answer: "mini0"})
		}, []string{CheckDead}},
		{"foreign fetch: dead reads before the first report's recovery are excused", foreign, nil},
		{"foreign fetch: dead reads after it count", func(h *History) {
			foreign(h)
			for i := range h.Reads {
				if rd := &h.Reads[i]; rd.App == "shop" && (rd.Start.Equal(at(56)) || rd.Start.Equal(at(57))) {
					rd.Token, rd.Seq = "shop2", 3 // shop3 came later
				}
			}
		}, []string{CheckDead, CheckAppAvailability}},
		{"foreign fetch: nothing is excused without a report", func(h *History) {
			foreign(h)
			h.Invalidations = nil
		}, []string{CheckDead, CheckAppAvailability}},
		{"foreign fetch not counted", func(h *History) {
			foreign(h)
			h.Faults[0].Counted = 0
		}, []string{CheckForeign}},
		{"foreign fetch counted twice", func(h *History) {
			foreign(h)
			h.Faults[0].Counted = 2
		}, []string{CheckForeign}},
		{"a stop past its bound", func(h *History) {
			h.Faults = append(h.Faults, Fault{Kind: "rolling-restart", Start: at(80), End: at(90), Stops: []Stop{
				{Replica: "r1", At: at(80), Took: Duration(time.Second), Bound: Duration(15 * time.Second)},
				{Replica: "r2", At: at(85), Took: Duration(15 * time.Second), Bound: Duration(15 * time.Second), Killed: true},
			}})
		}, []string{CheckStops}},
		{"an outside call is not the cluster's", func(h *History) {
			h.Fetches = append(h.Fetches, Fetch{Start: at(18.5), At: at(19.5), Kind: "classic", AppID: "wxshop", Token: "x", Issued: true, Caller: "127.0.0.1"})
		}, nil},
		{"a cluster call is", func(h *History) {
			h.Fetches = append(h.Fetches, Fetch{Start: at(18.5), At: at(19.5), Kind: "classic", AppID: "wxshop", Token: "x", Issued: true, Caller: "127.0.0.12"})
		}, []string{CheckConcurrent}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := twoApps()
			tt.change(&h)
			r := Check(h)
			if got := failed(r); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("failed checks = %q, want %q\n%s", got, tt.want, r.Table())
			}
		})
	}
}

func TestCheckExcusedCounts(t *testing.T) {
	h := twoApps()
	h.Faults = []Fault{{Kind: kindForeign, App: "shop", Token: "shop2", Start: at(41), End: at(60), Counted: 1}}
	life(&h, "shop2", 50)
	h.Invalidations = []Invalidation{{By: "consumer", Replica: "r1", App: "shop", Token: "shop2", Start: at(50.5), End: at(56), Status: 200, Answer: "shop3"}}
	refetch(&h)
	r := Check(h)
	if len(r.Replicas) != 1 || r.Replicas[0].DeadExcused != 6 || r.Replicas[0].Dead != 0 {
		t.Errorf("replicas = %+v, want 6 dead reads excused (50 to 55 s), none dead", r.Replicas)
	}
	if len(r.Excused) != 6 || !strings.Contains(r.Table(), "dead reads excused") {
		t.Errorf("excused examples = %d, want 6 and a line in the table:\n%s", len(r.Excused), r.Table())
	}
	if len(r.Apps) != 2 || r.Apps[1].App != "shop" || r.Apps[1].Reads != 114 {
		t.Errorf("apps = %+v, want shop with 114 reads (120 less the 6 excused)", r.Apps)
	}
}
