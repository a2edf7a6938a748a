package checker

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// allowance is how many tokens beyond the plan a fault may cost.
func (c Checker) allowance(f Fault) int {
	switch {
	case f.Missed != "":
		return 0
	case len(f.Stops) > 0:
		return c.ExtraFetchesPerFault * len(f.Stops) // each stop may cost a recovery
	}
	return c.ExtraFetchesPerFault
}

// fetches counts the ledger per credential and finds overlapping calls
// of the cluster.
func (c Checker) fetches(r *Report, h History) {
	extra := 0
	for _, f := range h.Faults {
		extra += c.allowance(f)
	}
	bySeries := map[series][]Fetch{}
	for _, f := range h.Fetches {
		k, ok := credSeries(f)
		if !ok || slices.Contains(h.Run.Outside, f.Caller) {
			continue
		}
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
				limit := st.Planned + extra + 2
				planGot = append(planGot, fmt.Sprintf("%s %d", a.Name, st.Issued))
				planWant = append(planWant, fmt.Sprintf("%s <= %d", a.Name, limit))
				if st.Issued > limit {
					planOK = false
					r.violate(CheckFetchPlan, h.Run.End, "%s: %d tokens minted, more than the plan of %d plus %d for the faults",
						a.Name, st.Issued, st.Planned, extra)
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
