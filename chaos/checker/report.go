package checker

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the verdict on one History. It marshals to JSON as is.
type Report struct {
	Seed         int64          `json:"seed"`
	Build        string         `json:"build"`
	Span         Duration       `json:"span"` // of the reads
	Faults       []FaultCount   `json:"faults"`
	Replicas     []ReplicaStats `json:"replicas"`
	Availability float64        `json:"availability"` // outside faults
	Apps         []AppStats     `json:"apps"`         // availability per app
	Fetches      []FetchStats   `json:"fetches"`
	Uses         UseStats       `json:"uses"`
	Checks       []Result       `json:"checks"`
	// Violations holds up to 20 examples per check, in the order found.
	Violations []Violation `json:"violations"`
	// Dropped counts violations beyond the examples kept, by check.
	Dropped map[string]int `json:"dropped,omitempty"`
	// Excused holds up to 20 examples of dead reads no product could
	// have avoided (a token fetched outside the cluster killed the
	// published one; until someone reports it, only WeChat knows);
	// ExcusedDropped counts the rest.
	Excused        []Violation `json:"excused,omitempty"`
	ExcusedDropped int         `json:"excused_dropped,omitempty"`
	// Platform summarizes a run with an Open Platform third-party
	// platform; nil without one.
	Platform *PlatformStats `json:"platform,omitempty"`
}

// AppStats is the availability of one app outside the faults that may
// touch it (see Checker).
type AppStats struct {
	App          string  `json:"app"`
	Reads        int     `json:"reads"`
	Valid        int     `json:"valid"`
	Availability float64 `json:"availability"`
}

// FaultCount is how often one kind of fault was injected.
type FaultCount struct {
	Kind     string `json:"kind"`
	Injected int    `json:"injected"`
	Missed   int    `json:"missed,omitempty"`
}

// ReplicaStats counts the reads from one replica.
type ReplicaStats struct {
	Replica string `json:"replica"`
	Reads   int    `json:"reads"`
	Valid   int    `json:"valid"` // a token WeChat accepted at read time
	Dead    int    `json:"dead"`  // a token WeChat had already invalidated
	// DeadExcused counts dead reads no product could have avoided; they
	// are not in Dead.
	DeadExcused int `json:"dead_excused,omitempty"`
	Errors      int `json:"errors"` // no token (503, or the replica was down)
	// InFault counts reads that started during a fault or its grace;
	// ErrorsOutside the errors among the others.
	InFault       int `json:"in_fault"`
	ErrorsOutside int `json:"errors_outside_faults"`
}

// FetchStats counts the simulator's ledger for one credential.
type FetchStats struct {
	App        string `json:"app"`
	Kind       string `json:"kind"`
	AppID      string `json:"appid"`
	Calls      int    `json:"calls"`   // every call, answered or not
	Failed     int    `json:"failed"`  // calls with an error or no answer
	Issued     int    `json:"issued"`  // calls that minted a token, during the reads
	Minimum    int    `json:"minimum"` // tokens needed to cover the reads: span / token TTL
	Planned    int    `json:"planned"` // tokens the refresh schedule mints over the span
	Concurrent int    `json:"concurrent"`
}

// UseStats counts the uses of served tokens against WeChat.
type UseStats struct {
	Accepted int `json:"accepted"`
	Refused  int `json:"refused"` // 40001, 40014, 42001
	// RefusedEarly counts refusals before the time the API said the token
	// could be kept.
	RefusedEarly int `json:"refused_early"`
	Other        int `json:"other"` // no answer
}

// Result is the outcome of one check.
type Result struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	Got  string `json:"got"`
	Want string `json:"want"`
}

// Violation is one example of a failed check.
type Violation struct {
	Check  string    `json:"check"`
	At     time.Time `json:"at"`
	Detail string    `json:"detail"`
}

// OK reports whether every check passed.
func (r Report) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return len(r.Checks) > 0
}

func (r *Report) check(name string, ok bool, got, want string) {
	r.Checks = append(r.Checks, Result{Name: name, OK: ok, Got: got, Want: want})
}

func (r *Report) violate(check string, at time.Time, format string, args ...any) {
	n := 0
	for _, v := range r.Violations {
		if v.Check == check {
			n++
		}
	}
	if n >= maxExamples {
		if r.Dropped == nil {
			r.Dropped = map[string]int{}
		}
		r.Dropped[check]++
		return
	}
	r.Violations = append(r.Violations, Violation{Check: check, At: at, Detail: fmt.Sprintf(format, args...)})
}

// excuse keeps an example of an excused dead read.
func (r *Report) excuse(at time.Time, format string, args ...any) {
	if len(r.Excused) >= maxExamples {
		r.ExcusedDropped++
		return
	}
	r.Excused = append(r.Excused, Violation{Check: "excused dead read", At: at, Detail: fmt.Sprintf(format, args...)})
}

// Table renders the report as plain-text tables for a terminal or a log.
func (r Report) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "wxtoken fault-injection run: seed %d, build %s, %v of reads\n\n", r.Seed, r.Build, r.Span.D().Round(time.Second))

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FAULT\tINJECTED\tMISSED")
	total := 0
	for _, f := range r.Faults {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", f.Kind, f.Injected, f.Missed)
		total += f.Injected
	}
	fmt.Fprintf(tw, "total\t%d\t\n", total)
	tw.Flush()
	b.WriteByte('\n')

	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "REPLICA\tREADS\tVALID\tDEAD\tERRORS\tIN FAULT\tERRORS OUTSIDE FAULTS\t")
	var sum ReplicaStats
	for _, s := range r.Replicas {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", s.Replica, s.Reads, s.Valid, s.Dead, s.Errors, s.InFault, s.ErrorsOutside)
		sum.Reads, sum.Valid, sum.Dead, sum.Errors = sum.Reads+s.Reads, sum.Valid+s.Valid, sum.Dead+s.Dead, sum.Errors+s.Errors
		sum.InFault, sum.ErrorsOutside = sum.InFault+s.InFault, sum.ErrorsOutside+s.ErrorsOutside
	}
	fmt.Fprintf(tw, "all\t%d\t%d\t%d\t%d\t%d\t%d\t\n", sum.Reads, sum.Valid, sum.Dead, sum.Errors, sum.InFault, sum.ErrorsOutside)
	tw.Flush()
	fmt.Fprintf(&b, "availability outside faults: %.3f%%", 100*r.Availability)
	for _, a := range r.Apps {
		fmt.Fprintf(&b, "; %s outside its own faults: %.3f%% of %d", a.App, 100*a.Availability, a.Reads)
	}
	b.WriteByte('\n')
	if n := len(r.Excused) + r.ExcusedDropped; n > 0 {
		fmt.Fprintf(&b, "dead reads excused (a token fetched outside the cluster killed the published one; nobody but WeChat knew before the first report): %d\n", n)
	}
	fmt.Fprintf(&b, "served tokens used against WeChat: %d accepted, %d refused (%d before their keep-until), %d unanswered\n\n",
		r.Uses.Accepted, r.Uses.Refused, r.Uses.RefusedEarly, r.Uses.Other)

	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "APP\tKIND\tCALLS\tFAILED\tMINTED\tMINIMUM\tPLANNED\tCONCURRENT\t")
	for _, f := range r.Fetches {
		app := f.App
		if app == "" {
			app = f.AppID
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", app, f.Kind, f.Calls, f.Failed, f.Issued, f.Minimum, f.Planned, f.Concurrent)
	}
	tw.Flush()
	b.WriteByte('\n')

	if p := r.Platform; p != nil {
		b.WriteString("platform: authorization codes and their exchanges; refresh-token checks; the recovery path (refreshes answered 61023, api_get_authorizer_list calls); pushes\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "CODES\tEXCHANGED ONCE\tTWICE\tNEVER\tREFRESH CHECKS\tLOST\t61023\tLIST CALLS\tMAX IN FLIGHT\tPUSHES\tWRONG KEY\tACCEPTED\tSTART PUSH\t")
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n",
			p.Codes, p.Exchanged, p.Twice, p.Never, p.RefreshChecks, p.RefreshLost, p.Rejected, p.Listed, p.MaxInFlight,
			p.Pushes, p.WrongKey, p.WrongKeyAccepted, p.StartPush)
		tw.Flush()
		b.WriteByte('\n')
	}

	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tRESULT\tGOT\tWANT")
	for _, c := range r.Checks {
		res := "PASS"
		if !c.OK {
			res = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, res, c.Got, c.Want)
	}
	tw.Flush()
	if len(r.Violations) > 0 {
		b.WriteString("\nviolations:\n")
		for _, v := range r.Violations {
			fmt.Fprintf(&b, "  %s  %s: %s\n", v.At.Format("15:04:05.000"), v.Check, v.Detail)
		}
		for check, n := range r.Dropped {
			fmt.Fprintf(&b, "  ... and %d more of %s\n", n, check)
		}
	}
	if len(r.Excused) > 0 {
		b.WriteString("\nexcused dead reads:\n")
		for _, v := range r.Excused {
			fmt.Fprintf(&b, "  %s  %s\n", v.At.Format("15:04:05.000"), v.Detail)
		}
		if r.ExcusedDropped > 0 {
			fmt.Fprintf(&b, "  ... and %d more\n", r.ExcusedDropped)
		}
	}
	if r.OK() {
		b.WriteString("\nRESULT: PASS\n")
	} else {
		b.WriteString("\nRESULT: FAIL\n")
	}
	return b.String()
}
