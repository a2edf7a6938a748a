package checker

import (
	"fmt"
	"slices"
	"time"
)

// Platform is what a run with a WeChat Open Platform third-party platform
// recorded of it beyond the reads and the ledger. Its component and
// authorizer tokens are among History.Apps (kinds "component" and
// "authorizer"), read and judged like the apps' tokens.
type Platform struct {
	Name           string   `json:"name"`
	ComponentAppID string   `json:"component_appid"`
	Authorizers    []string `json:"authorizers"`
	// Codes are the authorization codes the harness had WeChat push
	// (each an authorization of an account).
	Codes []Code `json:"codes"`
	// Refreshes are the checks of the authorizers' refresh tokens, after
	// each platform fault and at the end of the run.
	Refreshes []RefreshCheck `json:"refreshes"`
	// InFlight is the most calls in flight at once per credential, as the
	// simulator counted them at the end of the run: the component token,
	// each authorizer's api_authorizer_token, each code's api_query_auth.
	InFlight []InFlight `json:"in_flight"`
	// Pushes are the simulator's pushes to the event URL, without the
	// tickets and codes they carried.
	Pushes []Push `json:"pushes"`
}

// Code is one authorization code WeChat pushed to the event URL.
type Code struct {
	Authorizer string    `json:"authorizer"`
	Code       string    `json:"code"`
	At         time.Time `json:"at"`     // when the harness authorized
	Status     int       `json:"status"` // the push's HTTP answer; 0 if none came
}

// Stored states of a refresh token in a RefreshCheck.
const (
	RefreshNewest     = "newest"     // etcd holds the one WeChat will take next
	RefreshStale      = "stale"      // etcd holds another (WeChat refuses it: 61023)
	RefreshMissing    = "missing"    // etcd holds none
	RefreshUnreadable = "unreadable" // etcd holds one that does not open
	RefreshRejected   = "rejected"   // marked rejected by the leader, waiting for a recovery
)

// RefreshCheck is one check of an authorized account's refresh token:
// the harness waited (bounded) until etcd held WeChat's newest refresh
// token for it and every running replica served a token WeChat accepted.
type RefreshCheck struct {
	At         time.Time `json:"at"`
	After      string    `json:"after"` // the fault it follows, or "end of run"
	Authorizer string    `json:"authorizer"`
	Stored     string    `json:"stored"` // Refresh...
	Served     bool      `json:"served"`
	Took       Duration  `json:"took"` // until both held, or the bound
}

// OK reports whether nothing was lost: the newest refresh token stored,
// and a valid token served.
func (c RefreshCheck) OK() bool { return c.Stored == RefreshNewest && c.Served }

// InFlight is the most calls of one kind for one credential that the
// simulator had in progress at once.
type InFlight struct {
	Kind string `json:"kind"` // component, authorizer, query_auth
	ID   string `json:"id"`   // component appid, authorizer appid, or code
	Max  int    `json:"max"`
}

// Push is one push of the simulator to the event URL (GET /_sim/pushes).
type Push struct {
	At       time.Time `json:"at"` // the event's CreateTime (whole seconds)
	InfoType string    `json:"info_type"`
	WrongKey bool      `json:"wrong_key,omitempty"`
	Status   int       `json:"status"`
	Answer   string    `json:"answer,omitempty"`
	Err      string    `json:"err,omitempty"`
}

// Accepted reports whether the receiver answered 200 "success".
func (p Push) Accepted() bool { return p.Status == 200 && p.Answer == "success" }

// Names of the platform checks.
const (
	CheckCodes    = "codes exchanged twice or never"
	CheckRefresh  = "refresh tokens lost"
	CheckInFlight = "platform calls in flight per credential"
	CheckPushes   = "ticket pushes judged"
)

// Ledger kinds of the Open Platform calls.
const (
	kindComponent  = "component"
	kindAuthorizer = "authorizer"
	kindQueryAuth  = "query_auth"
	kindStartPush  = "start_push_ticket"
	kindTicketStop = "platform-ticket-stop"
)

// PlatformStats summarizes the platform's history in a Report.
type PlatformStats struct {
	Codes     int `json:"codes"`     // pushed
	Exchanged int `json:"exchanged"` // exchanged exactly once
	Twice     int `json:"twice"`     // presented again after a call that may have exchanged them
	Never     int `json:"never"`
	// RefreshChecks and RefreshLost count the refresh-token checks and
	// those that failed.
	RefreshChecks int `json:"refresh_checks"`
	RefreshLost   int `json:"refresh_lost"`
	// Rejected counts api_authorizer_token calls answered 61023; Listed
	// api_get_authorizer_list calls (the recovery path).
	Rejected    int `json:"rejected"`
	Listed      int `json:"listed"`
	MaxInFlight int `json:"max_in_flight"`
	// Pushes counts pushes to the event URL; WrongKey those with a wrong
	// key, WrongKeyAccepted those of them answered "success".
	Pushes           int `json:"pushes"`
	WrongKey         int `json:"wrong_key"`
	WrongKeyAccepted int `json:"wrong_key_accepted"`
	StartPush        int `json:"start_push"` // api_start_push_ticket calls of the cluster
}

// platform judges the platform's history: every code exchanged once,
// no refresh token lost, one call at a time per credential, pushes with
// a wrong key refused, and stopped pushes restarted by the cluster.
func (c Checker) platform(r *Report, h History) {
	p := h.Platform
	if p == nil {
		return
	}
	st := &PlatformStats{Codes: len(p.Codes)}
	r.Platform = st
	for _, f := range h.Fetches {
		switch {
		case slices.Contains(h.Run.Outside, f.Caller):
		case f.Kind == kindAuthorizer && f.Errcode == 61023:
			st.Rejected++
		case f.Kind == "authorizer_list":
			st.Listed++
		case f.Kind == kindStartPush:
			st.StartPush++
		}
	}
	c.codes(r, h, st)
	for _, rc := range p.Refreshes {
		st.RefreshChecks++
		if !rc.OK() {
			st.RefreshLost++
			r.violate(CheckRefresh, rc.At, "after %s, %s: refresh token in etcd %s, valid token served %v (waited %v)",
				rc.After, rc.Authorizer, rc.Stored, rc.Served, rc.Took.D().Round(time.Millisecond))
		}
	}
	r.check(CheckRefresh, st.RefreshLost == 0 && st.RefreshChecks > 0,
		fmt.Sprintf("%d of %d checks", st.RefreshLost, st.RefreshChecks), "0")
	for _, in := range p.InFlight {
		st.MaxInFlight = max(st.MaxInFlight, in.Max)
		if in.Max > 1 {
			r.violate(CheckInFlight, h.Run.End, "%s %s: %d calls in flight at once", in.Kind, short(in.ID), in.Max)
		}
	}
	r.check(CheckInFlight, st.MaxInFlight <= 1, fmt.Sprintf("at most %d", st.MaxInFlight), "at most 1")
	c.pushes(r, h, st)
}

// codes finds, for every code pushed, the cluster's api_query_auth calls
// that presented it: exactly one must have exchanged it, and none may
// come after a call that exchanged it, or while one was in flight. A
// retry after a refusal (-1, 45011) or after a call that got no answer
// and that WeChat never processed (the simulator's ledger says which:
// a held call mints nothing) is fine: the cluster presents a claimed code
// again only when WeChat lists no refresh token for the account.
func (c Checker) codes(r *Report, h History, st *PlatformStats) {
	byCode := map[string][]Fetch{}
	for _, f := range h.Fetches {
		if f.Kind == kindQueryAuth && f.Code != "" && !slices.Contains(h.Run.Outside, f.Caller) {
			byCode[f.Code] = append(byCode[f.Code], f)
		}
	}
	for _, code := range h.Platform.Codes {
		calls := byCode[code.Code]
		slices.SortFunc(calls, func(a, b Fetch) int { return a.Start.Compare(b.Start) })
		exchanged, again := 0, 0
		for i, f := range calls {
			if f.Errcode == 0 {
				exchanged++
			}
			for _, e := range calls[:i] {
				if e.Errcode == 0 || e.At.After(f.Start) {
					again++
					break
				}
			}
		}
		switch {
		case again > 0:
			st.Twice++
			r.violate(CheckCodes, code.At, "the code of %s (authorized %s) was presented %d times, %d after a call that exchanged it or may have (%d exchanges)",
				code.Authorizer, clock(code.At), len(calls), again, exchanged)
		case exchanged == 0:
			st.Never++
			r.violate(CheckCodes, code.At, "the code of %s (authorized %s, push answered %d) was never exchanged (%d calls)",
				code.Authorizer, clock(code.At), code.Status, len(calls))
		default:
			st.Exchanged++
		}
	}
	r.check(CheckCodes, st.Twice == 0 && st.Never == 0,
		fmt.Sprintf("%d twice, %d never, of %d", st.Twice, st.Never, st.Codes), "0 twice, 0 never")
}

// pushes checks that no push with a wrong key was accepted, and that
// every stop of the ticket pushes saw the cluster ask WeChat to push
// again (api_start_push_ticket) before it ended.
func (c Checker) pushes(r *Report, h History, st *PlatformStats) {
	bad := 0
	for _, p := range h.Platform.Pushes {
		st.Pushes++
		if p.WrongKey {
			st.WrongKey++
			if p.Accepted() {
				st.WrongKeyAccepted++
				bad++
				r.violate(CheckPushes, p.At, "a %s push with a wrong key was answered success", p.InfoType)
			}
		}
	}
	stops, restarted := 0, 0
	for _, f := range h.Faults {
		if f.Kind != kindTicketStop || f.Missed != "" {
			continue
		}
		stops++
		var first *Fetch
		for i, l := range h.Fetches {
			if l.Kind == kindStartPush && !slices.Contains(h.Run.Outside, l.Caller) && !l.Start.Before(f.Start) && !l.Start.After(f.End) &&
				(first == nil || l.Start.Before(first.Start)) {
				first = &h.Fetches[i]
			}
		}
		if first == nil {
			bad++
			r.violate(CheckPushes, f.Start, "ticket pushes stopped %v: the cluster never called api_start_push_ticket", f.End.Sub(f.Start).Round(time.Second))
			continue
		}
		restarted++
	}
	r.check(CheckPushes, bad == 0,
		fmt.Sprintf("%d of %d wrong-key pushes accepted; %d of %d stops restarted by the cluster", st.WrongKeyAccepted, st.WrongKey, restarted, stops),
		"0 accepted; every stop restarted")
}

// credSeries is the series a ledger line counts in for concurrency and
// the plan: an exchange (api_query_auth) is a call of its authorizer's
// credential, as its refreshes are; calls that are no credential's
// (api_start_push_ticket, api_create_preauthcode,
// api_get_authorizer_list) are in none (ok false).
func credSeries(f Fetch) (series, bool) {
	switch f.Kind {
	case kindQueryAuth:
		return series{kindAuthorizer, f.AppID}, f.AppID != ""
	case kindStartPush, "preauth", "authorizer_list":
		return series{}, false
	}
	return series{f.Kind, f.AppID}, true
}
