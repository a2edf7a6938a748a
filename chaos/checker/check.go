package checker

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Defaults for Checker.
const (
	// DefaultGrace is how long after a fault ends reads may still fail:
	// a new leader must be elected and a token fetched.
	DefaultGrace = 10 * time.Second
	// DefaultMinAvailability is the share of reads outside faults (and
	// their grace) that must return a valid token.
	DefaultMinAvailability = 0.99
	// DefaultMinAppAvailability is the share of one app's reads outside
	// the faults that may touch it (and their grace) that must return a
	// valid token.
	DefaultMinAppAvailability = 0.999
	// DefaultExtraFetchesPerFault is how many fetches beyond the plan
	// each injected fault may cost (a recovery refresh, a retry).
	DefaultExtraFetchesPerFault = 2
	// maxExamples bounds the violations kept per check.
	maxExamples = 20
)

// Names of the checks in a Report.
const (
	CheckFaults          = "every required fault injected"
	CheckDead            = "dead tokens served"
	CheckConcurrent      = "concurrent fetches"
	CheckLost            = "records lost"
	CheckForked          = "forked records"
	CheckFetchPlan       = "fetches within plan"
	CheckAvailability    = "availability outside faults"
	CheckAppAvailability = "availability per app outside its own faults"
	CheckIsolation       = "no credential blocked by another's refusal"
	CheckStuckReports    = "stuck reports"
	CheckForeign         = "foreign fetches counted"
	CheckStops           = "graceful stops within their bound"
)

// Checker judges histories. The zero value uses the Default... settings.
// Its methods are safe for concurrent use.
type Checker struct {
	Grace                time.Duration
	MinAvailability      float64
	MinAppAvailability   float64
	ExtraFetchesPerFault int
}

// Check judges h with the default settings.
func Check(h History) Report { return Checker{}.Check(h) }

// Check judges h. It never fails: a history it cannot make sense of
// yields violations, not an error.
func (c Checker) Check(h History) Report {
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	if c.MinAvailability == 0 {
		c.MinAvailability = DefaultMinAvailability
	}
	if c.MinAppAvailability == 0 {
		c.MinAppAvailability = DefaultMinAppAvailability
	}
	if c.ExtraFetchesPerFault == 0 {
		c.ExtraFetchesPerFault = DefaultExtraFetchesPerFault
	}
	r := &Report{Seed: h.Run.Seed, Build: h.Run.Build, Span: Duration(h.Run.End.Sub(h.Run.Start))}
	lives := make(map[string]Life, len(h.Tokens))
	for _, l := range h.Tokens {
		lives[l.Token] = l
	}
	c.faults(r, h)
	windows := c.windows(h.Faults, func(Fault) bool { return true })
	excused := excusedSpans(h, lives)
	c.reads(r, h, lives, windows, excused)
	c.uses(r, h)
	c.fetches(r, h)
	c.records(r, h)
	c.appAvailability(r, h, lives, excused)
	c.isolation(r, h, lives)
	c.stuckReports(r, h, lives)
	c.foreign(r, h)
	c.stops(r, h)
	c.platform(r, h)
	return *r
}

// faults counts the injected faults by kind and checks the required ones.
func (c Checker) faults(r *Report, h History) {
	byKind := map[string]*FaultCount{}
	for _, f := range h.Faults {
		fc := byKind[f.Kind]
		if fc == nil {
			fc = &FaultCount{Kind: f.Kind}
			byKind[f.Kind] = fc
		}
		if f.Missed != "" {
			fc.Missed++
			continue
		}
		fc.Injected++
	}
	for _, k := range h.Run.Required {
		if byKind[k] == nil {
			byKind[k] = &FaultCount{Kind: k}
		}
	}
	var missing []string
	for _, k := range h.Run.Required {
		if byKind[k].Injected == 0 {
			missing = append(missing, k)
		}
	}
	for _, fc := range byKind {
		r.Faults = append(r.Faults, *fc)
	}
	slices.SortFunc(r.Faults, func(a, b FaultCount) int { return cmp.Compare(a.Kind, b.Kind) })
	for _, k := range missing {
		r.violate(CheckFaults, h.Run.End, "fault %s was never injected", k)
	}
	got := fmt.Sprintf("%d of %d kinds", len(h.Run.Required)-len(missing), len(h.Run.Required))
	r.check(CheckFaults, len(missing) == 0, got, "all")
}

// window is a span of time in which reads may fail.
type window struct{ start, end time.Time }

// windows are the spans of the faults that keep selects, each with its
// grace.
func (c Checker) windows(faults []Fault, keep func(Fault) bool) []window {
	var ws []window
	for _, f := range faults {
		if (f.Missed == "" || !f.End.IsZero()) && keep(f) {
			ws = append(ws, window{f.Start, f.End.Add(c.Grace)})
		}
	}
	return ws
}

func inWindow(ws []window, t time.Time) bool {
	for _, w := range ws {
		if !t.Before(w.start) && !t.After(w.end) {
			return true
		}
	}
	return false
}

// reads counts the reads per replica, finds dead tokens (in reads and in
// the answers to reports) and measures availability outside faults.
func (c Checker) reads(r *Report, h History, lives map[string]Life, ws []window, excused spans) {
	byReplica := map[string]*ReplicaStats{}
	outside, outsideValid := 0, 0
	dead := 0
	for _, rd := range h.Reads {
		st := byReplica[rd.Replica]
		if st == nil {
			st = &ReplicaStats{Replica: rd.Replica}
			byReplica[rd.Replica] = st
		}
		st.Reads++
		faulted := inWindow(ws, rd.Start)
		if faulted {
			st.InFault++
		} else {
			outside++
		}
		if !rd.OK() {
			st.Errors++
			if !faulted {
				st.ErrorsOutside++
			}
			continue
		}
		l, known := lives[rd.Token]
		if known && !rd.Start.Before(l.End) && excused.covers(rd.App, rd.Start) {
			st.DeadExcused++
			r.excuse(rd.Start, "%s served %s seq %d %v after WeChat invalidated it (token %s)",
				rd.Replica, rd.App, rd.Seq, rd.Start.Sub(l.End).Round(time.Microsecond), short(rd.Token))
			continue
		}
		switch {
		case !known:
			st.Dead++
			dead++
			r.violate(CheckDead, rd.Start, "%s served a token of %s (seq %d) that the simulator never issued", rd.Replica, rd.App, rd.Seq)
		case !rd.Start.Before(l.End):
			st.Dead++
			dead++
			r.violate(CheckDead, rd.Start, "%s served %s seq %d %v after WeChat invalidated it (token %s)",
				rd.Replica, rd.App, rd.Seq, rd.Start.Sub(l.End).Round(time.Microsecond), short(rd.Token))
		default:
			st.Valid++
			if !faulted {
				outsideValid++
			}
		}
	}
	for _, inv := range h.Invalidations {
		if inv.Status != 200 || inv.Answer == "" {
			continue
		}
		if l, known := lives[inv.Answer]; (!known || !inv.Start.Before(l.End)) && !excused.covers(inv.App, inv.Start) {
			dead++
			r.violate(CheckDead, inv.Start, "%s answered a report of %s by %s with a token WeChat had invalidated (token %s)",
				inv.Replica, inv.App, inv.By, short(inv.Answer))
		}
	}
	for _, st := range byReplica {
		r.Replicas = append(r.Replicas, *st)
	}
	slices.SortFunc(r.Replicas, func(a, b ReplicaStats) int { return cmp.Compare(a.Replica, b.Replica) })
	r.check(CheckDead, dead == 0, fmt.Sprint(dead), "0")
	avail := 1.0
	if outside > 0 {
		avail = float64(outsideValid) / float64(outside)
	}
	r.Availability = avail
	r.check(CheckAvailability, avail >= c.MinAvailability && outside > 0,
		fmt.Sprintf("%.2f%% of %d reads", 100*avail, outside), fmt.Sprintf(">= %.2f%%", 100*c.MinAvailability))
}

func (c Checker) uses(r *Report, h History) {
	for _, u := range h.Uses {
		switch u.Errcode {
		case 0:
			r.Uses.Accepted++
		case 40001, 40014, 42001:
			r.Uses.Refused++
			if u.Start.Before(u.KeepUntil) {
				r.Uses.RefusedEarly++
			}
		default:
			r.Uses.Other++
		}
	}
}

// series names one line of tokens in the ledger.
type series struct{ kind, appID string }

func short(token string) string {
	if len(token) > 10 {
		return token[:10] + "…"
	}
	return token
}

func clock(t time.Time) string { return t.Format("15:04:05.000") }

func join(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}
