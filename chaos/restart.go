package chaos

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/wxtoken/wxtoken/chaos/checker"
)

// drainBound is how long a replica may take to stop after SIGTERM beyond
// the fetch timeout (for a call in flight): resigning and draining the
// HTTP API are bounded by 5 s each (replica.DrainTimeout), plus slack.
const drainBound = 12 * time.Second

// rollingRestart stops every replica in turn with SIGTERM, as a rolling
// deploy does: the leader first (and whoever leads next, while it has not
// been restarted), each time while the leader's token call is held for
// s.Param. It waits for the process to exit by itself (killing it only
// past its bound), starts it again and waits until it is ready.
func (h *harness) rollingRestart(ctx context.Context, s Step, f *checker.Fault) error {
	f.Target = "every replica"
	done := map[*replica]bool{}
	var names []string
	for len(done) < len(h.replicas) {
		target, err := h.nextToRestart(ctx, done)
		if err != nil {
			return err
		}
		step := s
		step.App = h.soonestApp(ctx)
		err = h.duringFetch(ctx, step, &checker.Fault{}, fault{Mode: "latency", Latency: s.Param.String()},
			func(ctx context.Context, l *replica, _ Step, _ *checker.Fault) error {
				if f.Start.IsZero() {
					f.Start = time.Now()
				}
				st, err := h.gracefulStop(target, target == l)
				f.Stops = append(f.Stops, st)
				return err
			})
		if err != nil {
			return fmt.Errorf("stop %s: %w", target.name, err)
		}
		done[target] = true
		last := f.Stops[len(f.Stops)-1]
		names = append(names, fmt.Sprintf("%s%s %v", target.name, map[bool]string{true: " (leader)"}[last.Leader], last.Took.D().Round(10*time.Millisecond)))
		if err := h.restart(ctx, target); err != nil {
			return fmt.Errorf("restart %s: %w", target.name, err)
		}
		if err := poll(ctx, 20*time.Second, target.ready); err != nil {
			return fmt.Errorf("%s not ready after its restart: %w", target.name, err)
		}
		if err := sleep(ctx, s.Hold); err != nil {
			return err
		}
	}
	f.End = time.Now()
	f.Detail = "stopped in " + strings.Join(names, ", ")
	return nil
}

// nextToRestart is the leader if it has not been restarted yet, else the
// first replica that has not.
func (h *harness) nextToRestart(ctx context.Context, done map[*replica]bool) (*replica, error) {
	if l, err := h.leader(ctx); err == nil && !done[l] {
		return l, nil
	}
	for _, r := range h.replicas {
		if !done[r] {
			return r, nil
		}
	}
	return nil, fmt.Errorf("every replica was restarted")
}

// gracefulStop sends r SIGTERM and waits for it to exit by itself,
// bounded by the fetch timeout plus drainBound; past that it is killed.
func (h *harness) gracefulStop(r *replica, leader bool) (checker.Stop, error) {
	bound := h.cfg.Timing.FetchTimeout + drainBound
	st := checker.Stop{Replica: r.name, Leader: leader, At: time.Now(), Bound: checker.Duration(bound)}
	if err := r.proc.signal(syscall.SIGTERM); err != nil {
		return st, err
	}
	err := r.proc.wait(bound)
	st.Took = checker.Duration(time.Since(st.At))
	if err != nil {
		st.Killed = true
		h.logf("  %s did not stop within %v of SIGTERM: killed", r.name, bound)
		return st, r.proc.kill()
	}
	return st, nil
}

// soonestApp is the app whose planned refresh comes first.
func (h *harness) soonestApp(ctx context.Context) int {
	best, at := 0, time.Time{}
	for i, a := range h.cfg.apps {
		rec, err := h.record(ctx, a.name)
		if err != nil {
			continue
		}
		if r := rec.RefreshAt; r.After(time.Now().Add(500*time.Millisecond)) && (at.IsZero() || r.Before(at)) {
			best, at = i, r
		}
	}
	return best
}
