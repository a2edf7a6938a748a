package chaos

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/wxtoken/wxtoken/chaos/checker"
)

// inject carries out one step and returns the fault as it happened.
func (h *harness) inject(ctx context.Context, s Step) checker.Fault {
	f := checker.Fault{Kind: s.Kind}
	var err error
	switch s.Kind {
	case LeaderKill:
		err = h.leaderKill(ctx, s, &f)
	case LeaderPause, LeaderPauseLong:
		err = h.duringFetch(ctx, s, &f, fault{Mode: "timeout"}, h.pause)
	case LeaderPauseMinting:
		err = h.duringFetch(ctx, s, &f, fault{Mode: "latency", Latency: s.Param.String()}, h.pause)
	case LeaderKillMidFetch:
		err = h.duringFetch(ctx, s, &f, fault{Mode: "timeout"}, h.killAndRestart)
	case ReplicaBlackhole, ReplicaDelay:
		err = h.cutReplica(ctx, s, &f)
	case EtcdMemberRestart, EtcdQuorumLoss, EtcdClusterRestart:
		err = h.etcdDown(ctx, s, &f)
	case WeChatLate, WeChatLateRetry:
		f.App = h.cfg.apps[s.App].name
		err = h.duringFetch(ctx, s, &f, fault{Mode: "latency", Latency: s.Param.String()}, func(ctx context.Context, _ *replica, s Step, f *checker.Fault) error {
			f.Start = time.Now()
			f.Detail = fmt.Sprintf("one call answered (and minted) after %v, fetch timeout %v; then an overlap for what it doomed to die", s.Param, h.cfg.Timing.FetchTimeout)
			err := sleep(ctx, s.Hold)
			f.End = time.Now()
			return err
		})
	case WeChatRefuseApp:
		err = h.refuseApp(ctx, s, &f)
	case WeChatRefuseLeader:
		err = h.refuseLeader(ctx, s, &f)
	case RollingRestart:
		err = h.rollingRestart(ctx, s, &f)
	case ReportLateReject:
		err = h.reportLateReject(ctx, s, &f)
	case ForeignFetch:
		err = h.foreignFetch(ctx, s, &f)
	case PlatformKillMidExchange, PlatformKillMidRefresh, PlatformTicketStop, PlatformWrongKey:
		err = h.platformFault(ctx, s, &f)
	default:
		err = h.wechat(ctx, s, &f)
	}
	if err != nil && f.Missed == "" && f.Start.IsZero() {
		f.Missed = err.Error()
	} else if err != nil {
		f.Detail = strings.TrimSpace(f.Detail + " (" + err.Error() + ")")
	}
	if f.End.IsZero() {
		f.End = time.Now()
	}
	if f.Start.IsZero() {
		f.Start = f.End
	}
	return f
}

func (h *harness) leaderKill(ctx context.Context, s Step, f *checker.Fault) error {
	l, err := h.leader(ctx)
	if err != nil {
		return err
	}
	f.Target = l.name + " (leader)"
	return h.killAndRestart(ctx, l, s, f)
}

// killAndRestart kills r with SIGKILL, waits the hold, and starts it again.
func (h *harness) killAndRestart(ctx context.Context, r *replica, s Step, f *checker.Fault) error {
	f.Start = time.Now()
	if err := r.proc.kill(); err != nil {
		return err
	}
	if err := sleep(ctx, s.Hold); err != nil {
		return err
	}
	err := h.restart(ctx, r)
	f.End = time.Now()
	return err
}

// pause stops r with SIGSTOP for the hold, then continues it.
func (h *harness) pause(ctx context.Context, r *replica, s Step, f *checker.Fault) error {
	f.Start = time.Now()
	if err := r.proc.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	err := sleep(ctx, s.Hold)
	if cerr := r.proc.signal(syscall.SIGCONT); cerr != nil && err == nil {
		err = cerr
	}
	f.End = time.Now()
	return err
}

// restart starts r again, retrying while it exits at once (it cannot
// start while etcd does not answer), until it answers /healthz.
func (h *harness) restart(ctx context.Context, r *replica) error {
	return poll(ctx, 30*time.Second, func(ctx context.Context) bool {
		if !r.proc.running() {
			if err := r.proc.start(); err != nil {
				return false
			}
		}
		return r.waitUp(ctx, 2*time.Second) == nil
	})
}

func (h *harness) cutReplica(ctx context.Context, s Step, f *checker.Fault) error {
	var r *replica
	if s.Replica < 0 {
		l, err := h.leader(ctx)
		if err != nil {
			return err
		}
		r, f.Target = l, l.name+" (leader)"
	} else {
		r, f.Target = h.replicas[s.Replica], h.replicas[s.Replica].name
	}
	if s.Kind == ReplicaBlackhole {
		a := h.cfg.apps[s.App]
		if err := h.alignFetch(ctx, a); err != nil {
			return err
		}
		f.Detail = "cut before a refresh of " + a.name
	}
	f.Start = time.Now()
	if s.Kind == ReplicaBlackhole {
		r.cut()
	} else {
		f.Detail = fmt.Sprintf("%v each way", s.Param)
		r.slow(s.Param)
	}
	err := sleep(ctx, s.Hold)
	r.heal()
	f.End = time.Now()
	return err
}

func (h *harness) etcdDown(ctx context.Context, s Step, f *checker.Fault) error {
	var names []string
	for _, i := range s.Members {
		names = append(names, h.etcd.members[i].name)
	}
	f.Target = strings.Join(names, ",")
	f.Start = time.Now()
	for _, i := range s.Members {
		if err := h.etcd.members[i].proc.kill(); err != nil {
			return err
		}
	}
	if err := sleep(ctx, s.Hold); err != nil {
		return err
	}
	for _, i := range s.Members {
		if err := h.etcd.members[i].proc.start(); err != nil {
			return err
		}
	}
	err := h.etcd.waitHealthy(ctx, 30*time.Second)
	f.End = time.Now()
	h.snapshot(ctx, s.Kind)
	return err
}

// wechat injects a fault on one app's token calls, starting just before
// its next planned refresh so that the fault meets at least one call.
func (h *harness) wechat(ctx context.Context, s Step, f *checker.Fault) error {
	a := h.cfg.apps[s.App]
	if err := h.alignFetch(ctx, a); err != nil {
		return err
	}
	wf := fault{AppID: a.appID}
	switch s.Kind {
	case WeChatBusy:
		wf.Mode = "busy"
	case WeChatSlow:
		wf.Mode, wf.Latency = "latency", s.Param.String()
		f.Detail = "answers after " + s.Param.String()
	case WeChatTimeout:
		wf.Mode = "timeout"
	case WeChatQuota:
		wf.Mode = "quota"
	case WeChat5xx:
		wf.Mode = "5xx"
	case WeChatBadJSON:
		wf.Mode = "badjson"
	}
	f.Target, f.App = "app "+a.name, a.name
	if err := h.sim.setFault(ctx, wf); err != nil {
		return err
	}
	f.Start = time.Now()
	err := sleep(ctx, s.Hold)
	if cerr := h.sim.clearFault(ctx); cerr != nil && err == nil {
		err = cerr
	}
	if err == nil && s.Kind == WeChatQuota {
		err = h.nextDay(ctx, a, f)
	}
	f.End = time.Now()
	return err
}

// nextDay stands in for the China-time midnight that ends a quota block:
// if the leader met 45009, it is restarted (gracefully), and its
// successor fetches again.
func (h *harness) nextDay(ctx context.Context, a app, f *checker.Fault) error {
	ledger, err := h.sim.ledger(ctx)
	if err != nil {
		return err
	}
	hit := 0
	for _, e := range ledger {
		if e.AppID == a.appID && e.Errcode == 45009 && !e.At.Before(f.Start) {
			hit++
		}
	}
	if hit == 0 {
		f.Detail = "no call met the quota"
		return nil
	}
	l, err := h.leader(ctx)
	if err != nil {
		return err
	}
	f.Detail = fmt.Sprintf("%d calls refused; next day: %s restarted", hit, l.name)
	f.App = "" // the restart touches every app
	if err := l.proc.stop(10 * time.Second); err != nil {
		return err
	}
	return h.restart(ctx, l)
}
