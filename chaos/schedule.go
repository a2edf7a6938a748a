package chaos

import (
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Step is one fault of a schedule.
type Step struct {
	Kind string
	// Gap is the quiet time before the fault, after the system settled
	// from the previous one.
	Gap time.Duration
	// Hold is how long the fault lasts.
	Hold time.Duration
	// Target names what the fault hits: "leader", a replica index, etcd
	// member indexes, or an app index, by kind.
	Replica int   // for replica faults: -1 the leader at the time, else an index
	Members []int // for etcd faults
	App     int   // for WeChat faults and faults aligned to a fetch
	// Authorizer is, for the platform's faults, an authorizer's index.
	Authorizer int
	// Param is a latency or delay, by kind.
	Param time.Duration
}

// planner draws a schedule from a seed.
type planner struct {
	rng         *rand.Rand
	timing      Timing
	replicas    int
	members     int
	apps        int
	authorizers int
}

func (p *planner) between(lo, hi time.Duration) time.Duration {
	return (lo + time.Duration(p.rng.Int64N(int64(hi-lo)+1))).Round(100 * time.Millisecond)
}

func (p *planner) step(kind string) Step {
	ttl := p.timing.ElectionTTL
	s := Step{Kind: kind, Gap: p.between(4*time.Second, 7*time.Second), Replica: -1, App: p.rng.IntN(p.apps)}
	switch kind {
	case LeaderKill:
		s.Hold = p.between(2*time.Second, 5*time.Second)
	case LeaderKillMidFetch:
		s.Hold = p.between(2*time.Second, 5*time.Second)
		s.App = 0 // a stray classic fetch is the one that kills a token
	case LeaderPause:
		// Longer than the TTL, so a successor takes over, but shorter than
		// the TTL plus the window it then waits out (fetch timeout and
		// margin): the design bounds concurrent calls only so far.
		s.Hold = ttl + p.between(time.Second, p.timing.FetchTimeout)
		s.App = 0
	case LeaderPauseLong:
		s.Hold = ttl + p.timing.FetchTimeout + p.timing.Margin + p.between(2*time.Second, 4*time.Second)
		s.App = 0
	case LeaderPauseMinting:
		s.App = 0
		s.Hold = ttl + p.between(3*time.Second, 5*time.Second)
		s.Param = ttl + 2*time.Second
	case ReplicaBlackhole:
		// Cut just before a refresh, so the replica misses a publish.
		s.Hold = p.between(6*time.Second, 14*time.Second)
		if p.rng.IntN(2) == 0 {
			s.Replica = p.rng.IntN(p.replicas)
		}
	case ReplicaDelay:
		s.Hold = p.between(6*time.Second, 14*time.Second)
		s.Param = p.between(200*time.Millisecond, 1200*time.Millisecond)
		if p.rng.IntN(2) == 0 {
			s.Replica = p.rng.IntN(p.replicas)
		}
	case EtcdMemberRestart:
		s.Hold = p.between(2*time.Second, 6*time.Second)
		s.Members = []int{p.rng.IntN(p.members)}
	case EtcdQuorumLoss:
		s.Hold = ttl + p.between(2*time.Second, 8*time.Second)
		s.Members = p.rng.Perm(p.members)[:p.members/2+1]
		slices.Sort(s.Members)
	case EtcdClusterRestart:
		s.Hold = p.between(1*time.Second, 4*time.Second)
		for i := range p.members {
			s.Members = append(s.Members, i)
		}
	case WeChatBusy, WeChat5xx, WeChatBadJSON:
		s.Hold = p.between(4*time.Second, 10*time.Second)
	case WeChatSlow:
		s.Hold = p.between(8*time.Second, 16*time.Second)
		s.Param = p.between(time.Second, p.timing.FetchTimeout-500*time.Millisecond)
	case WeChatTimeout:
		s.Hold = p.between(5*time.Second, 12*time.Second)
	case WeChatQuota:
		s.Hold = p.between(6*time.Second, 14*time.Second)
	case WeChatLate:
		// Answered after the caller gave up and after its first retry
		// (1 s later) began. The fault lasts an overlap more: a token the
		// late mint doomed dies within it.
		s.App = 0
		s.Param = p.timing.FetchTimeout + 1500*time.Millisecond
		s.Hold = s.Param + p.timing.Overlap + 2*time.Second
	case WeChatLateRetry:
		// Past a per-try timeout of a third of the fetch timeout (and the
		// retry's backoff), well inside the fetch's deadline. A classic
		// token, since only a classic mint kills the token before it.
		s.App = 0
		s.Param = p.timing.FetchTimeout / 2
		s.Hold = s.Param + p.timing.Overlap + 2*time.Second
	case WeChatRefuseApp, WeChatRefuseLeader:
		// Longer than a classic refresh period, so the refused app's
		// token expires unless another host fetches it.
		s.Hold = p.timing.TokenTTL - p.timing.Before + p.between(3*time.Second, 6*time.Second)
	case RollingRestart:
		// Each stop meets a call held for half the fetch timeout; Hold is
		// the pause between two replicas.
		s.Param = p.timing.FetchTimeout / 2
		s.Hold = p.between(time.Second, 3*time.Second)
	case ReportLateReject:
		// The leader's check answers after the report gave up, and
		// before the check's own bound (the fetch timeout).
		s.Replica = p.rng.IntN(p.replicas)
		s.Param = (p.timing.invalidateWait() + p.timing.FetchTimeout) / 2
		s.Hold = s.Param
	case ForeignFetch:
		s.App = 0 // a classic token: the foreign mint kills it one overlap later
		s.Param = p.between(time.Second, 3*time.Second)
		s.Hold = s.Param + p.timing.Overlap + p.timing.FetchTimeout + p.timing.Margin
	case PlatformKillMidExchange, PlatformKillMidRefresh:
		// WeChat answers (and mints, and rotates the refresh token) half
		// a fetch timeout into the call, while no leader lives; the
		// killed leader starts again after Hold.
		s.Authorizer = p.rng.IntN(max(p.authorizers, 1))
		s.Param = p.timing.FetchTimeout / 2
		s.Hold = p.between(2*time.Second, 5*time.Second)
	case PlatformTicketStop:
		// The bound on the stop: the ticket in force expires within
		// TicketTTL, the component token's next refresh meets it within
		// a token life, and the cluster then asks WeChat to push again.
		s.Hold = p.timing.TicketTTL + p.timing.TokenTTL + 30*time.Second
	case PlatformWrongKey:
		s.Hold = p.between(3*p.timing.TicketEvery, 5*p.timing.TicketEvery)
	}
	return s
}

// cost estimates the wall time of s, settling included, under timing t.
func (s Step) cost(t Timing) time.Duration {
	c := s.Gap + s.Hold + 3*time.Second
	// Waiting for a planned fetch takes half a refresh period on average.
	align := (t.TokenTTL - t.Before) / 2
	switch s.Kind {
	case LeaderPause, LeaderPauseLong, LeaderPauseMinting, LeaderKillMidFetch, WeChatLate, WeChatLateRetry,
		ReplicaBlackhole, WeChatBusy, WeChatSlow, WeChatTimeout, WeChatQuota, WeChat5xx, WeChatBadJSON,
		WeChatRefuseLeader, ReportLateReject, ForeignFetch:
		c += align
	case WeChatRefuseApp:
		c += 2*align + t.Holdoff // a refresh chosen for its timing, then the refused app's recovery
	case RollingRestart:
		c += 4 * (align + t.FetchTimeout + 5*time.Second) // one stop and start per replica
	case PlatformKillMidExchange:
		c += t.ElectionTTL + t.FetchTimeout + t.Margin + 5*time.Second // the successor's recovery, checked
	case PlatformKillMidRefresh:
		c += align + t.ElectionTTL + t.FetchTimeout + t.Margin + 5*time.Second
	case PlatformTicketStop:
		c = s.Gap + t.TicketTTL + align + 3*time.Second // Hold is only its bound
	case PlatformWrongKey:
		c += t.TicketEvery
	}
	return c
}

// plan draws the schedule: every required kind once, in a random order,
// then kinds from pool until the steps fill d.
func plan(seed int64, d time.Duration, required, pool []string, t Timing, replicas, members, apps, authorizers int) []Step {
	p := &planner{rng: rand.New(rand.NewPCG(uint64(seed), 0x5eed)), timing: t, replicas: replicas, members: members, apps: apps, authorizers: authorizers}
	var steps []Step
	var total time.Duration
	req := slices.Clone(required)
	p.rng.Shuffle(len(req), func(i, j int) { req[i], req[j] = req[j], req[i] })
	for _, k := range req {
		s := p.step(k)
		steps = append(steps, s)
		total += s.cost(t)
	}
	for len(pool) > 0 {
		s := p.step(pool[p.rng.IntN(len(pool))])
		if total+s.cost(t) > d {
			break
		}
		steps = append(steps, s)
		total += s.cost(t)
	}
	return steps
}

// describe renders s with names from the run; plat is nil without a
// platform.
func (s Step) describe(replicas []*replica, etcd *etcdCluster, apps []app, plat *platformSetup) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-26s hold %-6v", s.Kind, s.Hold)
	switch s.Kind {
	case LeaderKill, LeaderPause, LeaderPauseLong, LeaderKillMidFetch, LeaderPauseMinting:
		b.WriteString(" target the leader")
	case RollingRestart:
		b.WriteString(" target every replica in turn, the leader first")
	case WeChatRefuseApp:
		b.WriteString(" target an app chosen when the other's refresh falls inside the refusal")
	case WeChatRefuseLeader:
		b.WriteString(" target app " + apps[s.App].name + " from the leader's address")
	case ReportLateReject:
		b.WriteString(" target app " + apps[s.App].name + " via " + replicas[s.Replica].name)
	case ReplicaBlackhole, ReplicaDelay:
		if s.Kind == ReplicaBlackhole {
			b.WriteString(" before a refresh of app " + apps[s.App].name + ",")
		}
		if s.Replica < 0 {
			b.WriteString(" target the leader")
		} else {
			b.WriteString(" target " + replicas[s.Replica].name)
		}
	case EtcdMemberRestart, EtcdQuorumLoss, EtcdClusterRestart:
		var names []string
		for _, i := range s.Members {
			names = append(names, etcd.members[i].name)
		}
		b.WriteString(" target " + strings.Join(names, ","))
	case PlatformKillMidExchange, PlatformKillMidRefresh:
		what := "the exchange of a new code of "
		if s.Kind == PlatformKillMidRefresh {
			what = "a refresh of "
		}
		b.WriteString(" target the leader, during " + what + plat.authorizerName(s.Authorizer))
	case PlatformTicketStop:
		b.WriteString(" target the ticket pushes to platform " + platformName + ", until the cluster restarts them (at most the hold)")
	case PlatformWrongKey:
		b.WriteString(" target the pushes to platform " + platformName)
	default:
		b.WriteString(" target app " + apps[s.App].name)
	}
	switch s.Kind {
	case LeaderPause, LeaderPauseLong, LeaderKillMidFetch, LeaderPauseMinting:
		b.WriteString(" during a fetch of app " + apps[s.App].name)
	}
	if s.Param > 0 {
		fmt.Fprintf(&b, " (%v)", s.Param)
	}
	return b.String()
}

// printSchedule writes the schedule, one step a line.
func printSchedule(w io.Writer, seed int64, steps []Step, replicas []*replica, etcd *etcdCluster, apps []app, plat *platformSetup) {
	fmt.Fprintf(w, "chaos: schedule for seed %d (%d faults):\n", seed, len(steps))
	for i, s := range steps {
		fmt.Fprintf(w, "  %2d. after %-5v %s\n", i+1, s.Gap, s.describe(replicas, etcd, apps, plat))
	}
}
