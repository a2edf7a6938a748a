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
	// DefaultExtraFetchesPerFault is how many fetches beyond the plan
	// each injected fault may cost (a recovery refresh, a retry).
	DefaultExtraFetchesPerFault = 2
	// maxExamples bounds the violations kept per check.
	maxExamples = 20
)

// Names of the checks in a Report.
const (
	CheckFaults       = "every required fault injected"
	CheckDead         = "dead tokens served"
	CheckConcurrent   = "concurrent fetches"
	CheckLost         = "records lost"
	CheckForked       = "forked records"
	CheckFetchPlan    = "fetches within plan"
	CheckAvailability = "availability outside faults"
)

// Checker judges histories. The zero value uses the Default... settings.
// Its methods are safe for concurrent use.
type Checker struct {
	Grace                time.Duration
	MinAvailability      float64
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
	if c.ExtraFetchesPerFault == 0 {
		c.ExtraFetchesPerFault = DefaultExtraFetchesPerFault
	}
	r := &Report{Seed: h.Run.Seed, Build: h.Run.Build, Span: Duration(h.Run.End.Sub(h.Run.Start))}
	lives := make(map[string]Life, len(h.Tokens))
	for _, l := range h.Tokens {
		lives[l.Token] = l
	}
	injected := c.faults(r, h)
	windows := c.windows(h.Faults)
	c.reads(r, h, lives, windows)
	c.uses(r, h)
	c.fetches(r, h, injected)
	c.records(r, h)
	return *r
}

// faults counts the injected faults by kind and checks the required ones.
func (c Checker) faults(r *Report, h History) int {
	byKind := map[string]*FaultCount{}
	injected := 0
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
		injected++
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
	return injected
}

// window is a span of time in which reads may fail.
type window struct{ start, end time.Time }

func (c Checker) windows(faults []Fault) []window {
	var ws []window
	for _, f := range faults {
		if f.Missed == "" || !f.End.IsZero() {
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

// reads counts the reads per replica, finds dead tokens and measures
// availability outside faults.
func (c Checker) reads(r *Report, h History, lives map[string]Life, ws []window) {
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

// fetches counts the ledger per credential and finds overlapping calls.
func (c Checker) fetches(r *Report, h History, injected int) {
	bySeries := map[series][]Fetch{}
	for _, f := range h.Fetches {
		k := series{f.Kind, f.AppID}
		bySeries[k] = append(bySeries[k], f)
	}
	apps := map[series]App{}
	for _, a := range h.Apps {
		apps[series{a.Kind, a.AppID}] = a
		if _, ok := bySeries[series{a.Kind, a.AppID}]; !ok {
			bySeries[series{a.Kind, a.AppID}] = nil
		}
	}
	span := h.Run.End.Sub(h.Run.Start)
	concurrent := 0
	planOK := true
	var planGot, planWant []string
	for k, fs := range bySeries {
		slices.SortStableFunc(fs, func(a, b Fetch) int { return a.Start.Compare(b.Start) })
		st := FetchStats{App: apps[k].Name, Kind: k.kind, AppID: k.appID}
		var last Fetch
		for i, f := range fs {
			st.Calls++
			if f.Errcode != 0 {
				st.Failed++
			}
			inRun := !f.At.Before(h.Run.Start) && !f.At.After(h.Run.End)
			if f.Issued && inRun {
				st.Issued++
			}
			if i > 0 && f.Start.Before(last.At) {
				st.Concurrent++
				concurrent++
				r.violate(CheckConcurrent, f.Start, "%s %s: a call started at %s while the call started at %s was in flight (answered %v later)",
					k.kind, k.appID, clock(f.Start), clock(last.Start), last.At.Sub(f.Start).Round(time.Millisecond))
			}
			if i == 0 || f.At.After(last.At) {
				last = f
			}
		}
		if a, ok := apps[k]; ok && span > 0 {
			if ttl := h.Run.TokenTTL.D(); ttl > 0 {
				st.Minimum = int((span + ttl - 1) / ttl)
			}
			if every := a.RefreshEvery.D(); every > 0 {
				st.Planned = int((span+every-1)/every) + 1
				limit := st.Planned + c.ExtraFetchesPerFault*injected + 2
				planGot = append(planGot, fmt.Sprintf("%s %d", a.Name, st.Issued))
				planWant = append(planWant, fmt.Sprintf("%s <= %d", a.Name, limit))
				if st.Issued > limit {
					planOK = false
					r.violate(CheckFetchPlan, h.Run.End, "%s: %d tokens minted, more than the plan of %d plus %d per fault",
						a.Name, st.Issued, st.Planned, c.ExtraFetchesPerFault)
				}
			}
		}
		r.Fetches = append(r.Fetches, st)
	}
	slices.SortFunc(r.Fetches, func(a, b FetchStats) int {
		return cmp.Or(cmp.Compare(a.App, b.App), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.AppID, b.AppID))
	})
	slices.Sort(planGot)
	slices.Sort(planWant)
	r.check(CheckConcurrent, concurrent == 0, fmt.Sprint(concurrent), "0")
	r.check(CheckFetchPlan, planOK, join(planGot), join(planWant))
}

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
