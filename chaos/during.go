package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/wxtoken/wxtoken/chaos/checker"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// Faults that act while a WeChat call is in flight: they wait for a
// credential's planned refresh, arm a one-call fault in the simulator that
// holds or slows that call, and act once the call took it.

// duringFetch arms a one-call WeChat fault for an app just before its next
// planned refresh, waits until the leader's call takes it (so the call is
// in flight, held or slowed by the simulator), and then acts on the leader.
func (h *harness) duringFetch(ctx context.Context, s Step, f *checker.Fault, wf fault,
	act func(context.Context, *replica, Step, *checker.Fault) error) error {
	a := h.cfg.apps[s.App]
	wf.AppID = a.appID
	return h.duringCall(ctx, tokenstore.CredName(a.name, "token"), a.name, s, f, wf, act)
}

// duringCall is duringFetch for the credential cred (named name in
// messages), whose calls wf matches.
func (h *harness) duringCall(ctx context.Context, cred, name string, s Step, f *checker.Fault, wf fault,
	act func(context.Context, *replica, Step, *checker.Fault) error) error {
	wf.Count = 1
	taken := false
	for try := 0; try < 2 && !taken; try++ {
		if err := h.alignCred(ctx, cred, name); err != nil {
			return err
		}
		if err := h.sim.setFault(ctx, wf); err != nil {
			return err
		}
		taken = h.faultTaken(ctx, 15*time.Second)
	}
	if !taken {
		return fmt.Errorf("no fetch of %s came twice within 15s of its planned time", name)
	}
	l, err := h.leader(ctx)
	if err != nil {
		return err
	}
	f.Target = fmt.Sprintf("%s (leader), fetching %s", l.name, name)
	return act(ctx, l, s, f)
}

// faultTaken waits, bounded by d, until a one-call fault has been taken
// by a call (which is then in flight, if the fault holds it); if none
// took it, it clears the fault and reports false.
func (h *harness) faultTaken(ctx context.Context, d time.Duration) bool {
	taken := poll(ctx, d, func(ctx context.Context) bool {
		mode, err := h.sim.faultMode(ctx)
		return err == nil && mode == ""
	}) == nil
	if !taken {
		_ = h.sim.clearFault(ctx)
	}
	return taken
}

// alignFetch waits until shortly before app a's next planned refresh.
func (h *harness) alignFetch(ctx context.Context, a app) error {
	return h.alignCred(ctx, tokenstore.CredName(a.name, "token"), a.name)
}

// alignCred waits until shortly before the next planned refresh of the
// credential cred (named name in messages).
func (h *harness) alignCred(ctx context.Context, cred, name string) error {
	rec, err := h.credRecord(ctx, cred)
	if err != nil {
		return err
	}
	wait := time.Until(rec.RefreshAt) - 300*time.Millisecond
	if wait > 2*h.cfg.Timing.TokenTTL {
		return fmt.Errorf("%s: next refresh %v away", name, wait.Round(time.Second))
	}
	if wait > 0 {
		return sleep(ctx, wait)
	}
	return nil
}
