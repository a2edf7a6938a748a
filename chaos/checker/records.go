package checker

import (
	"fmt"
	"slices"
	"time"
)

// records finds seqs that go backwards on a replica or in etcd, records
// that etcd lost after they were served, and seqs with two values.
func (c Checker) records(r *Report, h History) {
	lost := 0
	// A replica must never serve a lower seq than one it served before.
	byReplica := map[string][]Read{}
	var served []Read
	for _, rd := range h.Reads {
		if rd.OK() {
			byReplica[rd.Replica] = append(byReplica[rd.Replica], rd)
			served = append(served, rd)
		}
	}
	for name, reads := range byReplica {
		lost += backwards(r, reads, func(rd Read, seq uint64) {
			r.violate(CheckLost, rd.Start, "%s served %s seq %d after it had served seq %d", name, rd.App, rd.Seq, seq)
		})
	}
	// etcd must hold, at every later read, a seq at least as high as any
	// seq served (a replica serves only what etcd committed), and its seq
	// must never go down.
	byEnd := slices.Clone(served)
	slices.SortFunc(byEnd, func(a, b Read) int { return a.End.Compare(b.End) })
	snaps := slices.Clone(h.Records)
	slices.SortStableFunc(snaps, func(a, b Snapshot) int { return a.At.Compare(b.At) })
	maxServed := map[string]uint64{}
	maxSnap := map[string]uint64{}
	i := 0
	for _, s := range snaps {
		for ; i < len(byEnd) && byEnd[i].End.Before(s.At); i++ {
			maxServed[byEnd[i].App] = max(maxServed[byEnd[i].App], byEnd[i].Seq)
		}
		after := ""
		if s.After != "" {
			after = " (after " + s.After + ")"
		}
		switch {
		case s.Seq < maxServed[s.App]:
			lost++
			r.violate(CheckLost, s.At, "etcd holds %s seq %d%s, but seq %d was served before", s.App, s.Seq, after, maxServed[s.App])
		case s.Seq < maxSnap[s.App]:
			lost++
			r.violate(CheckLost, s.At, "etcd's %s went back from seq %d to %d%s", s.App, maxSnap[s.App], s.Seq, after)
		}
		maxSnap[s.App] = max(maxSnap[s.App], s.Seq)
	}
	r.check(CheckLost, lost == 0, fmt.Sprint(lost), "0")

	// One seq, one token: a second value means a stale leader published.
	type key struct {
		app string
		seq uint64
	}
	seen := map[key]string{}
	forked := map[key]bool{}
	note := func(app string, seq uint64, token string, at time.Time, where string) {
		if seq == 0 || token == "" {
			return
		}
		k := key{app, seq}
		prev, ok := seen[k]
		switch {
		case !ok:
			seen[k] = token
		case prev != token && !forked[k]:
			forked[k] = true
			r.violate(CheckForked, at, "%s seq %d has two tokens (%s, and %s in %s)", app, seq, short(prev), short(token), where)
		}
	}
	for _, rd := range served {
		note(rd.App, rd.Seq, rd.Token, rd.Start, rd.Replica)
	}
	for _, s := range snaps {
		note(s.App, s.Seq, s.Token, s.At, "etcd")
	}
	r.check(CheckForked, len(forked) == 0, fmt.Sprint(len(forked)), "0")
}

// backwards reports reads whose seq is below that of a read of the same
// app that ended before they started, and returns how many there were.
func backwards(r *Report, reads []Read, report func(Read, uint64)) int {
	byStart := slices.Clone(reads)
	slices.SortFunc(byStart, func(a, b Read) int { return a.Start.Compare(b.Start) })
	byEnd := slices.Clone(reads)
	slices.SortFunc(byEnd, func(a, b Read) int { return a.End.Compare(b.End) })
	high := map[string]uint64{}
	n, j := 0, 0
	for _, rd := range byStart {
		for ; j < len(byEnd) && byEnd[j].End.Before(rd.Start); j++ {
			high[byEnd[j].App] = max(high[byEnd[j].App], byEnd[j].Seq)
		}
		if rd.Seq < high[rd.App] {
			n++
			report(rd, high[rd.App])
		}
	}
	return n
}
