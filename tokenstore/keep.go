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
