package tokenstore

import "time"

// KeepUntil is the last instant r is surely valid if nothing replaces it
// early: the earlier of its expiry and its planned refresh plus overlap,
// WeChat's grace for the previous token once the next one is fetched. A
// record with no planned refresh is kept until it expires.
//
// A replica that follows etcd may serve r past KeepUntil (no refresh has
// happened, so WeChat has not killed it); one that does not follow etcd
// cannot know that and stops serving r at KeepUntil less its margin. A
// caller is told to keep r no longer than KeepUntil less the margin.
func (r Record) KeepUntil(overlap time.Duration) time.Time {
	until := r.ExpiresAt
	if !r.RefreshAt.IsZero() {
		if alt := r.RefreshAt.Add(overlap); alt.Before(until) {
			until = alt
		}
	}
	return until
}

// AliveUntil is the last instant a replica may take r to be alive, as
// every way of handing a token out (the API, the token file) judges it.
// One that follows etcd (synced) sees every fetch in flight and every
// publish: r lives to its expiry unless a fetch in flight it knows of
// (in, when known) may kill it earlier (Intent.DoomedAt). One cut off from
// etcd cannot know whether the planned refresh happened and stops at
// KeepUntil, or earlier at the doom of a fetch in flight it learnt of
// before it was cut off.
func AliveUntil(r Record, in Intent, known, synced bool, overlap time.Duration) time.Time {
	until := r.ExpiresAt
	if !synced {
		until = r.KeepUntil(overlap)
	}
	if known {
		if d := in.DoomedAt(overlap); d.Before(until) {
			until = d
		}
	}
	return until
}
