package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/wxtoken/wxtoken/chaos/checker"
)

// The Open Platform's faults. Each ends when what it broke is back (the
// killed leader started again, pushes accepted again); the run then
// checks every authorizer's refresh token (checkRefreshTokens).

// platformFault injects one of the platform's faults.
func (h *harness) platformFault(ctx context.Context, s Step, f *checker.Fault) error {
	p := h.cfg.platform
	if p == nil {
		f.Missed = "the run has no platform"
		return nil
	}
	switch s.Kind {
	case PlatformKillMidExchange:
		return h.killMidExchange(ctx, s, f)
	case PlatformKillMidRefresh:
		a := p.authorizers[s.Authorizer]
		wf := fault{Mode: "latency", Latency: s.Param.String(), AppID: a, Kind: "authorizer"}
		return h.duringCall(ctx, p.authorizerCred(a), a, s, f, wf, func(ctx context.Context, l *replica, s Step, f *checker.Fault) error {
			f.Detail = fmt.Sprintf("the refresh answers (and rotates %s's refresh token) %v into the call, while no leader lives", a, s.Param)
			return h.killAndRestart(ctx, l, s, f)
		})
	case PlatformTicketStop:
		return h.ticketStop(ctx, s, f)
	}
	return h.wrongKey(ctx, s, f)
}

// authorizeOne has WeChat push an authorization of appid and records its
// code; it returns the code ("" if the simulator made none).
func (h *harness) authorizeOne(ctx context.Context, appid string) string {
	at := time.Now()
	code, push, err := h.sim.authorize(ctx, h.cfg.platform.compAppID, appid)
	if code == "" {
		h.logf("  authorize %s: %v", appid, err)
		return ""
	}
	h.mu.Lock()
	h.codes = append(h.codes, checker.Code{Authorizer: appid, Code: code, At: at, Status: push.Status})
	h.mu.Unlock()
	return code
}

// killMidExchange re-authorizes an account while WeChat holds the
// exchange of its code (api_query_auth) for s.Param, kills the leader
// once the call is in flight (WeChat exchanges the code, issuing a new
// refresh token and killing the old, while no leader lives), and has a
// second account authorize before a successor is elected, so that a code
// is pending. The killed leader starts again after s.Hold.
func (h *harness) killMidExchange(ctx context.Context, s Step, f *checker.Fault) error {
	p := h.cfg.platform
	a := p.authorizers[s.Authorizer]
	b := p.authorizers[(s.Authorizer+1)%len(p.authorizers)]
	if _, err := h.leader(ctx); err != nil {
		return err
	}
	if err := h.sim.setFault(ctx, fault{Mode: "latency", Latency: s.Param.String(), Count: 1, AppID: a, Kind: "query_auth"}); err != nil {
		return err
	}
	if h.authorizeOne(ctx, a) == "" {
		_ = h.sim.clearFault(ctx)
		return fmt.Errorf("authorize %s: no code", a)
	}
	if !h.faultTaken(ctx, 10*time.Second) {
		f.Missed = fmt.Sprintf("the exchange of %s's code did not reach WeChat within 10s", a)
		return nil
	}
	l, err := h.leader(ctx)
	if err != nil {
		return err
	}
	f.Target = fmt.Sprintf("%s (leader), exchanging a code of %s", l.name, a)
	f.Start = time.Now()
	if err := l.proc.kill(); err != nil {
		return err
	}
	h.authorizeOne(ctx, b)
	f.Detail = fmt.Sprintf("WeChat answers the exchange %v into the call, while no leader lives; %s authorized before a successor is elected", s.Param, b)
	if err := sleep(ctx, s.Hold); err != nil {
		return err
	}
	err = h.restart(ctx, l)
	f.End = time.Now()
	return err
}

// ticketStop stops WeChat's scheduled ticket pushes and waits (bounded
// by s.Hold) until they run again, which only the cluster's
// api_start_push_ticket does: the ticket in force ages out meanwhile,
// and the component token is refreshed with it until it does.
func (h *harness) ticketStop(ctx context.Context, s Step, f *checker.Fault) error {
	p := h.cfg.platform
	f.Target, f.App = "pushes to "+p.name, p.componentCred()
	seen, err := h.sim.pushes(ctx)
	if err != nil {
		return err
	}
	if err := h.sim.setPushFault(ctx, p.compAppID, pushFault{Stopped: true}); err != nil {
		return err
	}
	f.Start = time.Now()
	// A push made before the stop may still be on its way: only a ticket
	// created after the stop shows the pushes restarted.
	restarted := h.nextTicketPush(ctx, len(seen), f.Start, s.Hold)
	if restarted.IsZero() {
		_ = h.sim.setPushFault(context.WithoutCancel(ctx), p.compAppID, pushFault{})
	}
	f.End = time.Now()
	minted, expired := h.componentCalls(ctx, f.Start, f.End)
	if restarted.IsZero() {
		f.Detail = fmt.Sprintf("pushes not restarted within %v (cleared by the harness); %d component tokens minted, %d calls answered 61005", s.Hold, minted, expired)
		return nil
	}
	f.Detail = fmt.Sprintf("pushes restarted after %v (tickets live %v, component tokens %v); meanwhile %d component tokens minted with the last ticket, %d calls answered 61005 (ticket expired)",
		restarted.Sub(f.Start).Round(time.Second), h.cfg.Timing.TicketTTL, h.cfg.Timing.TokenTTL, minted, expired)
	return nil
}

// wrongKey has WeChat encrypt its pushes with a wrong key for s.Hold,
// then waits (bounded) for the next push to be accepted.
func (h *harness) wrongKey(ctx context.Context, s Step, f *checker.Fault) error {
	p := h.cfg.platform
	f.Target, f.App = "pushes to "+p.name, p.componentCred()
	seen, err := h.sim.pushes(ctx)
	if err != nil {
		return err
	}
	if err := h.sim.setPushFault(ctx, p.compAppID, pushFault{WrongKey: true}); err != nil {
		return err
	}
	f.Start = time.Now()
	err = sleep(ctx, s.Hold)
	if cerr := h.sim.setPushFault(context.WithoutCancel(ctx), p.compAppID, pushFault{}); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		f.End = time.Now()
		return err
	}
	healed := time.Now()
	next := h.nextTicketPush(ctx, len(seen), time.Time{}, 3*h.cfg.Timing.TicketEvery)
	f.End = time.Now()
	all, _ := h.sim.pushes(ctx)
	wrong, refused := 0, 0
	for _, ps := range all[min(len(seen), len(all)):] {
		if ps.WrongKey {
			wrong++
			if !ps.accepted() {
				refused++
			}
		}
	}
	f.Detail = fmt.Sprintf("%d pushes with a wrong key, %d refused", wrong, refused)
	if !next.IsZero() {
		f.Detail += fmt.Sprintf("; the next push accepted %v after the key was right again", next.Sub(healed).Round(time.Millisecond))
	}
	return nil
}

// nextTicketPush waits, bounded by d, for a ticket push after the first
// skip ones, created after since (its CreateTime, whole seconds), that
// has no wrong key and that the event URL accepted, and returns when it
// saw it (zero if none came).
func (h *harness) nextTicketPush(ctx context.Context, skip int, since time.Time, d time.Duration) time.Time {
	var at time.Time
	_ = poll(ctx, d, func(ctx context.Context) bool {
		ps, err := h.sim.pushes(ctx)
		if err != nil || len(ps) <= skip {
			return false
		}
		for _, p := range ps[skip:] {
			if p.Ticket != "" && !p.WrongKey && p.accepted() && p.At.After(since) {
				at = time.Now()
				return true
			}
		}
		return false
	})
	return at
}

// componentCalls counts the component token calls between from and to
// that minted a token, and those answered 61005 (ticket expired).
func (h *harness) componentCalls(ctx context.Context, from, to time.Time) (minted, expired int) {
	ledger, err := h.sim.ledger(ctx)
	if err != nil {
		return 0, 0
	}
	for _, l := range ledger {
		if l.Kind != "component" || l.Start.Before(from) || l.Start.After(to) {
			continue
		}
		if l.Issued {
			minted++
		}
		if l.Errcode == 61005 {
			expired++
		}
	}
	return minted, expired
}
