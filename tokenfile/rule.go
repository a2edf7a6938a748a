package tokenfile

import (
	"time"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// decision is what a file must hold at one instant.
type decision struct {
	serve bool      // the record's value; otherwise nothing
	why   string    // why nothing, for the log
	until time.Time // when time alone ends the decision (zero: never)
}

// decide applies the API's rule for token reads to rec at now: a record is
// served while it is usable (more than margin before its expiry) and more
// than margin before limit, the last instant it is surely alive (see
// Sink.limit); limitWhy says why it is not served past limit.
func decide(rec tokenstore.Record, found bool, now time.Time, margin time.Duration, limit time.Time, limitWhy string) decision {
	switch {
	case !found:
		return decision{why: "no record"}
	case !rec.Usable(now, margin):
		return decision{why: "expired"}
	}
	end := limit.Add(-rec.Margin(margin))
	if !now.Before(end) {
		return decision{why: limitWhy}
	}
	return decision{serve: true, until: end}
}

// limit is the last instant rec is surely alive, as the API judges it
// (tokenstore.AliveUntil), and why it is not served past it.
func (s *Sink) limit(rec tokenstore.Record, synced bool) (time.Time, string) {
	in, known := s.cfg.Source.Intent(rec.Cred)
	until := tokenstore.AliveUntil(rec, in, known, synced, s.cfg.Overlap)
	switch {
	case !until.Before(rec.ExpiresAt):
	case known && until.Equal(in.DoomedAt(s.cfg.Overlap)):
		return until, "a fetch in flight may kill it"
	case !synced:
		return until, "past keep-until, not following etcd"
	}
	return until, "expired"
}
