package tokenfile

import (
	"time"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// decision is what a file must hold at one instant.
type decision struct {
	serve  bool      // the record's value; otherwise nothing
	why    string    // why nothing, for the log
	until  time.Time // when time alone may change the decision (zero: never)
	onSync bool      // the decision depends on whether the source is synced
}

// decide applies the API's rule for token reads to rec at now: a record is
// served while it is usable (more than margin before its expiry) and, on a
// source that does not follow etcd, more than margin before its keep-until.
func decide(rec tokenstore.Record, found bool, now time.Time, margin, overlap time.Duration, synced bool) decision {
	switch {
	case !found:
		return decision{why: "no record"}
	case !rec.Usable(now, margin):
		return decision{why: "expired"}
	}
	expiry := rec.ExpiresAt.Add(-margin)
	keep := rec.KeepUntil(overlap).Add(-margin)
	if now.Before(keep) {
		return decision{serve: true, until: keep}
	}
	// Past keep-until: served only while the source follows etcd and so
	// would have seen the refresh that could kill the token.
	d := decision{serve: synced, until: expiry, onSync: true}
	if !synced {
		d.why = "past keep-until, not following etcd"
	}
	return d
}
