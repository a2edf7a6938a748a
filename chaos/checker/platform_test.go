package checker

import (
	"slices"
	"testing"
)

// withPlatform is clean() with an Open Platform: one authorizer whose
// code was exchanged once, a stop of the ticket pushes that the cluster
// restarted, and a refresh-token check that found the newest.
func withPlatform() History {
	h := clean()
	h.Faults = append(h.Faults, Fault{Kind: kindTicketStop, Target: "pushes to saas", App: "saas/component", Start: at(40), End: at(50)})
	h.Fetches = append(h.Fetches,
		Fetch{Start: at(1), At: at(1.2), Kind: kindQueryAuth, AppID: "wxa1", Code: "c1", Token: "Q", Issued: true},
		Fetch{Start: at(20), At: at(20.1), Kind: kindAuthorizer, AppID: "wxa1", Token: "R", Issued: true},
		Fetch{Start: at(45), At: at(45.1), Kind: kindStartPush, AppID: "wxcomp"},
	)
	h.Platform = &Platform{
		Name: "saas", ComponentAppID: "wxcomp", Authorizers: []string{"wxa1"},
		Codes:     []Code{{Authorizer: "wxa1", Code: "c1", At: at(1), Status: 200}},
		Refreshes: []RefreshCheck{{At: at(59), After: "end of run", Authorizer: "wxa1", Stored: RefreshNewest, Served: true}},
		InFlight:  []InFlight{{Kind: kindComponent, ID: "wxcomp", Max: 1}, {Kind: kindAuthorizer, ID: "wxa1", Max: 1}, {Kind: kindQueryAuth, ID: "c1", Max: 1}},
		Pushes: []Push{
			{At: at(5), InfoType: "component_verify_ticket", Status: 200, Answer: "success"},
			{At: at(25), InfoType: "component_verify_ticket", WrongKey: true, Status: 400, Answer: `{"code":"undecryptable"}`},
		},
	}
	return h
}

func TestCheckPlatform(t *testing.T) {
	tests := []struct {
		name   string
		change func(h *History)
		want   []string // failed checks
	}{
		{"clean", func(h *History) {}, nil},
		{"code exchanged again by a successor", func(h *History) {
			h.Fetches = append(h.Fetches, Fetch{Start: at(10), At: at(10.1), Kind: kindQueryAuth, AppID: "wxa1", Code: "c1", Errcode: 61010})
		}, []string{CheckCodes}},
		{"code presented again after a call WeChat never processed", func(h *History) {
			h.Fetches[len(h.Fetches)-3].Start, h.Fetches[len(h.Fetches)-3].At = at(2), at(2.1)
			h.Fetches = append(h.Fetches, Fetch{Start: at(1), At: at(1.5), Kind: kindQueryAuth, AppID: "wxa1", Code: "c1", Errcode: -2})
		}, nil},
		{"code presented while a call without an answer was in flight", func(h *History) {
			h.Fetches[len(h.Fetches)-3].Start, h.Fetches[len(h.Fetches)-3].At = at(1.2), at(1.3)
			h.Fetches = append(h.Fetches, Fetch{Start: at(1), At: at(1.5), Kind: kindQueryAuth, AppID: "wxa1", Code: "c1", Errcode: -2})
		}, []string{CheckConcurrent, CheckCodes}},
		{"a retry after a definite refusal is no second exchange", func(h *History) {
			h.Fetches = append(h.Fetches, Fetch{Start: at(0.5), At: at(0.6), Kind: kindQueryAuth, AppID: "wxa1", Code: "c1", Errcode: -1})
		}, nil},
		{"code never exchanged", func(h *History) {
			h.Fetches = slices.DeleteFunc(h.Fetches, func(f Fetch) bool { return f.Kind == kindQueryAuth })
		}, []string{CheckCodes}},
		{"an exchange and a refresh of one authorizer overlap", func(h *History) {
			h.Fetches = append(h.Fetches, Fetch{Start: at(1.1), At: at(1.3), Kind: kindAuthorizer, AppID: "wxa1", Token: "S", Issued: true})
		}, []string{CheckConcurrent}},
		{"list calls are no credential's", func(h *History) {
			h.Fetches = append(h.Fetches,
				Fetch{Start: at(30), At: at(30.5), Kind: "authorizer_list", AppID: "wxcomp"},
				Fetch{Start: at(30.1), At: at(30.2), Kind: "authorizer_list", AppID: "wxcomp"})
		}, nil},
		{"refresh token stale in etcd", func(h *History) {
			h.Platform.Refreshes[0].Stored, h.Platform.Refreshes[0].Served = RefreshStale, false
		}, []string{CheckRefresh}},
		{"two refreshes in flight", func(h *History) { h.Platform.InFlight[1].Max = 2 }, []string{CheckInFlight}},
		{"a push with a wrong key accepted", func(h *History) {
			h.Platform.Pushes[1].Status, h.Platform.Pushes[1].Answer = 200, "success"
		}, []string{CheckPushes}},
		{"stopped pushes never asked for again", func(h *History) {
			h.Fetches = slices.DeleteFunc(h.Fetches, func(f Fetch) bool { return f.Kind == kindStartPush })
		}, []string{CheckPushes}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := withPlatform()
			tt.change(&h)
			r := Check(h)
			if got := failed(r); !slices.Equal(got, tt.want) {
				t.Errorf("failed checks %v, want %v\n%s", got, tt.want, r.Table())
			}
			if r.Platform == nil || r.Platform.Codes != 1 {
				t.Errorf("platform stats %+v, want one code", r.Platform)
			}
		})
	}
}

// TestCheckWithoutPlatform: a history without a platform has no platform
// checks.
func TestCheckWithoutPlatform(t *testing.T) {
	r := Check(clean())
	for _, c := range r.Checks {
		if c.Name == CheckCodes || c.Name == CheckRefresh || c.Name == CheckInFlight || c.Name == CheckPushes {
			t.Errorf("check %q in a run without a platform", c.Name)
		}
	}
	if r.Platform != nil {
		t.Errorf("platform stats %+v without a platform", r.Platform)
	}
}
