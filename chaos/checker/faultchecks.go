package checker

import (
	"fmt"
	"time"
)

// stuckReports checks the repeated reports: a report of a token whose
// earlier report the leader rejected must be answered with a valid token
// at once (within a quarter of the replicas' invalidate wait), not wait
// for a refresh that will never come.
func (c Checker) stuckReports(r *Report, h History, lives map[string]Life) {
	bound := h.Run.InvalidateWait.D() / 4
	if bound <= 0 {
		bound = 10 * time.Second / 4
	}
	stuck, repeats := 0, 0
	for _, inv := range h.Invalidations {
		if !inv.Repeat {
			continue
		}
		repeats++
		took := inv.End.Sub(inv.Start)
		l, known := lives[inv.Answer]
		switch {
		case inv.Status != 200:
			stuck++
			r.violate(CheckStuckReports, inv.Start, "%s answered a repeated report of %s with %d %s after %v",
				inv.Replica, inv.App, inv.Status, inv.Code, took.Round(time.Millisecond))
		case took > bound:
			stuck++
			r.violate(CheckStuckReports, inv.Start, "%s answered a repeated report of %s after %v (want within %v)",
				inv.Replica, inv.App, took.Round(time.Millisecond), bound)
		case !known || !inv.Start.Before(l.End):
			stuck++
			r.violate(CheckStuckReports, inv.Start, "%s answered a repeated report of %s with a dead token", inv.Replica, inv.App)
		}
	}
	r.check(CheckStuckReports, stuck == 0, fmt.Sprintf("%d of %d repeated reports", stuck, repeats), "0")
}

// foreign checks that every token fetched outside the cluster was
// noticed once: the replicas counted one foreign fetch per fault.
func (c Checker) foreign(r *Report, h History) {
	injected, counted, wrong := 0, 0, 0
	for _, f := range h.Faults {
		if f.Kind != kindForeign || f.Missed != "" {
			continue
		}
		injected++
		if f.Counted > 0 {
			counted += f.Counted
		}
		if f.Counted != 1 {
			wrong++
			what := fmt.Sprintf("counted %d", f.Counted)
			if f.Counted < 0 {
				what = "could not ask the replicas"
			}
			r.violate(CheckForeign, f.Start, "%s fetched outside the cluster: %s, want 1", f.App, what)
		}
	}
	r.check(CheckForeign, wrong == 0, fmt.Sprint(counted), fmt.Sprint(injected))
}

// stops checks that every graceful stop ended by itself within its bound
// (the fetch timeout for a call in flight, plus resigning and draining).
func (c Checker) stops(r *Report, h History) {
	late, all := 0, 0
	for _, f := range h.Faults {
		for _, st := range f.Stops {
			all++
			if st.Killed || st.Took > st.Bound {
				late++
				how := "exited"
				if st.Killed {
					how = "was killed"
				}
				r.violate(CheckStops, st.At, "%s %s %v after SIGTERM (bound %v)", st.Replica, how, st.Took.D().Round(time.Millisecond), st.Bound.D())
			}
		}
	}
	r.check(CheckStops, late == 0, fmt.Sprintf("%d of %d past their bound", late, all), "0")
}
