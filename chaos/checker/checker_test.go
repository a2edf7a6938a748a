package checker

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

// clean is a history of 60 s with two tokens, two replicas and one fault.
func clean() History {
	h := History{
		Run:  Run{Seed: 1, Build: "normal", Start: at(0), End: at(60), TokenTTL: Duration(30 * time.Second), Required: []string{"leader-kill"}},
		Apps: []App{{Name: "shop", Kind: "classic", AppID: "wxshop", RefreshEvery: Duration(20 * time.Second)}},
		Faults: []Fault{
			{Kind: "leader-kill", Target: "r1", Start: at(30), End: at(33)},
		},
		Fetches: []Fetch{
			{Start: at(-1), At: at(-1), Kind: "classic", AppID: "wxshop", Token: "A", Issued: true},
			{Start: at(19), At: at(19.01), Kind: "classic", AppID: "wxshop", Token: "B", Issued: true},
			{Start: at(39), At: at(39.5), Kind: "classic", AppID: "wxshop", Errcode: -1},
			{Start: at(40), At: at(40.01), Kind: "classic", AppID: "wxshop", Token: "C", Issued: true},
		},
		Tokens: []Life{
			{Token: "A", Kind: "classic", AppID: "wxshop", Issued: at(-1), End: at(31)},
			{Token: "B", Kind: "classic", AppID: "wxshop", Issued: at(19), End: at(52)},
			{Token: "C", Kind: "classic", AppID: "wxshop", Issued: at(40), End: at(70)},
		},
		Records: []Snapshot{
			{At: at(10), App: "shop", Seq: 1, Token: "A"},
			{At: at(35), App: "shop", Seq: 2, Token: "B", After: "leader-kill"},
			{At: at(55), App: "shop", Seq: 3, Token: "C"},
		},
	}
	for _, r := range []string{"r1", "r2"} {
		for s := 0.0; s < 60; s++ {
			rd := Read{Replica: r, App: "shop", Start: at(s), End: at(s + 0.01), Status: 200}
			switch {
			case s < 19.5:
				rd.Token, rd.Seq = "A", 1
			case s < 40.5:
				rd.Token, rd.Seq = "B", 2
			default:
				rd.Token, rd.Seq = "C", 3
			}
			if r == "r1" && s >= 30 && s < 34 {
				rd = Read{Replica: r, App: "shop", Start: at(s), End: at(s + 1), Code: "unreachable"}
			}
			h.Reads = append(h.Reads, rd)
		}
	}
	return h
}

func failed(r Report) []string {
	var out []string
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c.Name)
		}
	}
	return out
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		change func(h *History)
		want   []string // failed checks
	}{
		{"clean", func(h *History) {}, nil},
		{"dead token served", func(h *History) {
			// r2 keeps serving A after it died at 31.
			for i := range h.Reads {
				if rd := &h.Reads[i]; rd.Replica == "r2" && rd.Start.Equal(at(31)) {
					rd.Token, rd.Seq = "A", 1
				}
			}
		}, []string{CheckDead, CheckLost}},
		{"unknown token", func(h *History) {
			h.Reads[3].Token = "Z"
		}, []string{CheckDead, CheckAvailability, CheckForked, CheckAppAvailability}},
		{"overlapping fetches", func(h *History) {
			h.Fetches[2].At = at(40.005) // the busy call is answered after C's call began
		}, []string{CheckConcurrent}},
		{"seq backwards on a replica", func(h *History) {
			for i := range h.Reads {
				if rd := &h.Reads[i]; rd.Replica == "r2" && rd.Start.Equal(at(50)) {
					rd.Token, rd.Seq = "B", 2
				}
			}
		}, []string{CheckLost}},
		{"etcd lost a served record", func(h *History) {
			h.Records[2] = Snapshot{At: at(55), App: "shop", Seq: 2, Token: "B", After: "etcd-cluster-restart"}
		}, []string{CheckLost}},
		{"forked seq", func(h *History) {
			h.Records = append(h.Records, Snapshot{At: at(58), App: "shop", Seq: 3, Token: "D"})
		}, []string{CheckForked}},
		{"required fault missing", func(h *History) {
			h.Run.Required = append(h.Run.Required, "etcd-quorum-loss")
		}, []string{CheckFaults}},
		{"missed fault does not count", func(h *History) {
			h.Faults[0].Missed = "no leader"
		}, []string{CheckFaults}},
		{"unavailable outside faults", func(h *History) {
			for i := range h.Reads {
				if rd := &h.Reads[i]; rd.Start.After(at(50)) {
					*rd = Read{Replica: rd.Replica, App: "shop", Start: rd.Start, End: rd.End, Status: 503, Code: "no_credential"}
				}
			}
		}, []string{CheckAvailability, CheckAppAvailability}},
		{"refresh storm", func(h *History) {
			for i := range 20 {
				s := 41 + float64(i)*0.5
				h.Fetches = append(h.Fetches, Fetch{Start: at(s), At: at(s + 0.01), Kind: "classic", AppID: "wxshop", Token: "S" + string(rune('a'+i)), Issued: true})
			}
		}, []string{CheckFetchPlan}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := clean()
			tt.change(&h)
			r := Check(h)
			got := failed(r)
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("failed checks = %q, want %q\n%s", got, tt.want, r.Table())
			}
			if r.OK() != (len(tt.want) == 0) {
				t.Errorf("OK() = %v, want %v", r.OK(), len(tt.want) == 0)
			}
		})
	}
}

func TestCheckCounts(t *testing.T) {
	r := Check(clean())
	if len(r.Replicas) != 2 {
		t.Fatalf("replicas = %d, want 2", len(r.Replicas))
	}
	r1 := r.Replicas[0]
	if r1.Replica != "r1" || r1.Reads != 60 || r1.Errors != 4 || r1.ErrorsOutside != 0 || r1.Valid != 56 {
		t.Errorf("r1 = %+v, want 60 reads, 56 valid, 4 errors all in the fault", r1)
	}
	if len(r.Fetches) != 1 {
		t.Fatalf("fetch rows = %d, want 1", len(r.Fetches))
	}
	f := r.Fetches[0]
	if f.Calls != 4 || f.Failed != 1 || f.Issued != 2 || f.Minimum != 2 || f.Planned != 4 {
		t.Errorf("fetches = %+v, want 4 calls, 1 failed, 2 minted in the run, minimum 2, planned 4", f)
	}
	for _, want := range []string{"leader-kill", "RESULT: PASS", "fetches within plan"} {
		if !strings.Contains(r.Table(), want) {
			t.Errorf("Table() lacks %q:\n%s", want, r.Table())
		}
	}
}

func TestHistoryJSON(t *testing.T) {
	h := clean()
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"token_ttl":"30s"`) {
		t.Errorf("JSON lacks the TTL as a duration string: %.200s", b)
	}
	var back History
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got, want := Check(back).Table(), Check(h).Table(); got != want {
		t.Errorf("report after a JSON round trip differs:\ngot:\n%s\nwant:\n%s", got, want)
	}
}

// fakeOracle knows token lives exactly.
type fakeOracle map[string][2]time.Time

var _ Oracle = fakeOracle(nil)

func (o fakeOracle) Valid(_ context.Context, token string, t time.Time) (bool, error) {
	l, ok := o[token]
	return ok && !t.Before(l[0]) && t.Before(l[1]), nil
}

func TestLives(t *testing.T) {
	o := fakeOracle{
		"A": {at(0), at(17.123456789)},
		"B": {at(10), at(40)},
	}
	fetches := []Fetch{
		{At: at(0), Kind: "classic", AppID: "x", Token: "A", Issued: true},
		{At: at(5), Kind: "classic", AppID: "x", Token: "A"}, // the same token again
		{At: at(7), Kind: "classic", AppID: "x", Errcode: -1},
		{At: at(10), Kind: "classic", AppID: "x", Token: "B", Issued: true},
	}
	lives, err := Lives(context.Background(), o, fetches, 31*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(lives) != 2 {
		t.Fatalf("lives = %d, want 2", len(lives))
	}
	for i, want := range []time.Time{at(17.123456789), at(40)} {
		got := lives[i].End
		if d := got.Sub(want); d < 0 || d > time.Microsecond {
			t.Errorf("life of %s ends at %v, want within 1µs after %v", lives[i].Token, got, want)
		}
	}
	if _, err := Lives(context.Background(), o, fetches, 20*time.Second); err == nil {
		t.Error("Lives with a horizon shorter than B's life: got nil error, want one")
	}
}
