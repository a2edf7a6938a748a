package checker

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kinds of fault the checker treats apart. A fault of another kind is
// judged by its App alone.
const (
	kindRefuseApp    = "wechat-refuse-app"
	kindRefuseLeader = "wechat-refuse-leader"
	kindForeign      = "foreign-fetch"
)

// serving are the app-scoped kinds that must not cost their app any
// read: the cluster has a way to keep serving through them (another host,
// a waited-out window, a prompt answer, the last good ticket), so their
// spans count towards the app's availability. A foreign fetch's dead
// reads are excused separately (see excusedSpans).
var serving = map[string]bool{
	kindRefuseLeader:     true,
	"wechat-late":        true,
	"wechat-late-retry":  true,
	"report-late-reject": true,
	kindForeign:          true,
	kindTicketStop:       true,
	"platform-wrong-key": true,
}

// touches reports whether reads of app may fail during f: f is a fault
// of the whole cluster, or of app and of a kind that may cost reads.
func touches(f Fault, app string) bool {
	return f.App == "" || (f.App == app && !serving[f.Kind])
}

// spans are, per app, the spans in which its dead reads are excused.
type spans map[string][]window

func (s spans) covers(app string, t time.Time) bool { return inWindow(s[app], t) }

// excusedSpans finds, for each foreign-fetch fault, the span in which no
// product could know that the token it doomed was dead: from the token's
// death to the first report of it plus the fetch timeout and margin (the
// time to confirm it and fetch anew). Dead reads of the app in that span
// are excused and listed apart; later ones count.
func excusedSpans(h History, lives map[string]Life) spans {
	s := spans{}
	grace := h.Run.FetchTimeout.D() + h.Run.Margin.D()
	for _, f := range h.Faults {
		if f.Kind != kindForeign || f.Missed != "" || f.Token == "" {
			continue
		}
		l, ok := lives[f.Token]
		if !ok {
			continue
		}
		end := l.End
		first := time.Time{}
		for _, inv := range h.Invalidations {
			if inv.Token == f.Token && !inv.Start.Before(l.End) && (first.IsZero() || inv.Start.Before(first)) {
				first = inv.Start
			}
		}
		if !first.IsZero() {
			end = first.Add(grace)
		}
		s[f.App] = append(s[f.App], window{l.End, end})
	}
	return s
}

// appAvailability measures each app's reads outside the faults that may
// touch it (and their grace): an app's own refusal excuses it, another
// app's refusal does not.
func (c Checker) appAvailability(r *Report, h History, lives map[string]Life, excused spans) {
	names := appNames(h)
	ok := len(names) > 0
	var got []string
	for _, app := range names {
		ws := c.windows(h.Faults, func(f Fault) bool { return touches(f, app) })
		st := AppStats{App: app}
		for _, rd := range h.Reads {
			if rd.App != app || inWindow(ws, rd.Start) {
				continue
			}
			l, known := lives[rd.Token]
			valid := rd.OK() && known && rd.Start.Before(l.End)
			if rd.OK() && known && !valid && excused.covers(app, rd.Start) {
				continue // listed with the excused dead reads
			}
			st.Reads++
			if valid {
				st.Valid++
			}
		}
		st.Availability = 1
		if st.Reads > 0 {
			st.Availability = float64(st.Valid) / float64(st.Reads)
		}
		if st.Reads == 0 || st.Availability < c.MinAppAvailability {
			ok = false
			r.violate(CheckAppAvailability, h.Run.End, "%s: %d of %d reads outside its own faults returned a valid token (%.3f%%)",
				app, st.Valid, st.Reads, 100*st.Availability)
		}
		got = append(got, fmt.Sprintf("%s %.2f%% of %d", app, 100*st.Availability, st.Reads))
		r.Apps = append(r.Apps, st)
	}
	r.check(CheckAppAvailability, ok, strings.Join(got, ", "), fmt.Sprintf(">= %.2f%% each", 100*c.MinAppAvailability))
}

// appNames are the apps of the run, from h.Apps and the reads.
func appNames(h History) []string {
	var names []string
	for _, a := range h.Apps {
		names = append(names, a.Name)
	}
	for _, rd := range h.Reads {
		if !slices.Contains(names, rd.App) {
			names = append(names, rd.App)
		}
	}
	slices.Sort(names)
	return names
}

// isolation checks that while one app is refused, every other app is
// still served and still fetched: its reads in the refusal's span (and
// grace), outside faults of the cluster, reach the per-app availability,
// and no gap between two of its mints that overlaps the span is longer
// than its refresh plan allows.
func (c Checker) isolation(r *Report, h History, lives map[string]Life) {
	blocked := 0
	refusals := 0
	cluster := c.windows(h.Faults, func(f Fault) bool { return f.App == "" })
	for _, f := range h.Faults {
		if (f.Kind != kindRefuseApp && f.Kind != kindRefuseLeader) || f.Missed != "" || f.App == "" {
			continue
		}
		refusals++
		span := window{f.Start, f.End.Add(c.Grace)}
		for _, a := range h.Apps {
			if a.Name == f.App {
				continue
			}
			reads, valid := 0, 0
			for _, rd := range h.Reads {
				if rd.App != a.Name || rd.Start.Before(span.start) || rd.Start.After(span.end) || inWindow(cluster, rd.Start) {
					continue
				}
				reads++
				if l, known := lives[rd.Token]; rd.OK() && known && rd.Start.Before(l.End) {
					valid++
				}
			}
			if reads > 0 && float64(valid) < c.MinAppAvailability*float64(reads) {
				blocked++
				r.violate(CheckIsolation, f.Start, "%s refused (%s): %s served %d of %d reads", f.App, f.Kind, a.Name, valid, reads)
			}
			if gap, from := longestGap(h, a, span); gap > 0 {
				blocked++
				r.violate(CheckIsolation, from, "%s refused (%s): no token of %s minted for %v (plan: every %v)",
					f.App, f.Kind, a.Name, gap.Round(time.Second), a.RefreshEvery.D().Round(time.Second))
			}
		}
	}
	r.check(CheckIsolation, blocked == 0, fmt.Sprintf("%d in %d refusals", blocked, refusals), "0")
}

// longestGap returns the longest time without a mint of a, among the gaps
// that overlap span and exceed its plan (a quarter of the interval and
// 5 s of slack), and where it began; 0 if none does. A gap still open at
// the run's end counts up to the end.
func longestGap(h History, a App, span window) (time.Duration, time.Time) {
	every := a.RefreshEvery.D()
	if every <= 0 {
		return 0, time.Time{}
	}
	var mints []time.Time
	for _, f := range h.Fetches {
		if f.AppID == a.AppID && f.Kind == a.Kind && f.Issued && !slices.Contains(h.Run.Outside, f.Caller) {
			mints = append(mints, f.At)
		}
	}
	slices.SortFunc(mints, func(x, y time.Time) int { return x.Compare(y) })
	mints = append(mints, h.Run.End)
	limit := every + every/4 + 5*time.Second
	var worst time.Duration
	var from time.Time
	for i := 1; i < len(mints); i++ {
		g := window{mints[i-1], mints[i]}
		if g.end.Before(span.start) || g.start.After(span.end) {
			continue
		}
		if d := g.end.Sub(g.start); d > limit && d > worst {
			worst, from = d, g.start
		}
	}
	return worst, from
}
