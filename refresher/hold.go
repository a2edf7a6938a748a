package refresher

import (
	"context"
	"fmt"
	"time"

	"github.com/wxtoken/wxtoken/election"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// holds reports whether the fetch of in must hold its call (Config.Hold):
// it follows an unfinished call that may have minted, inside that call's
// overlap, so its own mint kills the published token at once.
func (r *Refresher) holds(in tokenstore.Intent) bool {
	return !r.cfg.Unsafe.NoHold && !r.cfg.Unsafe.SkipIntent &&
		in.Since.Before(in.Started) && in.Started.Before(in.Since.Add(r.cfg.Overlap))
}

// hold waits until callAt, when the replicas have seen the intent just
// written and stopped handing out the token the call dooms. It reports
// false if ctx ends meanwhile: the call is not made, and the intent stays
// for whoever fetches next (it waits the window out from callAt, as for
// a call).
func (r *Refresher) hold(ctx context.Context, c Cred, callAt time.Time) bool {
	d := callAt.Sub(r.cfg.Now())
	if d <= 0 {
		return true
	}
	r.log.Info("holding the call until the replicas stop serving the token it dooms", "cred", c.Name, "hold", d)
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// unheld reports (lost) that w's lease is in doubt, so no call may start,
// and what the step returns: a delegate waits (the leader moves the
// credential if the lease expires); a leader's term ends.
func (r *Refresher) unheld(w worker, c Cred) (next time.Time, lost bool, err error) {
	switch {
	case w.g.Held():
		return time.Time{}, false, nil
	case w.leader == nil:
		return r.cfg.Now().Add(r.cfg.OwnerCheck), true, nil
	}
	return time.Time{}, true, fmt.Errorf("%s: %w", c.Name, election.ErrNotLeader)
}
