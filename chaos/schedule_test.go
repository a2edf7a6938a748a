package chaos

import (
	"slices"
	"testing"
	"time"
)

func TestPlan(t *testing.T) {
	tests := []struct {
		name     string
		seed     int64
		d        time.Duration
		required []string
		pool     []string
		wantMin  int
	}{
		{"short run: every required kind", 1, 3*time.Minute + 30*time.Second, Required, DefaultPool, len(Required)},
		{"too short: the required kinds still all run", 2, time.Second, Required, DefaultPool, len(Required)},
		{"soak: the pool fills the time", 7, 30 * time.Minute, Required, DefaultPool, 60},
		{"one kind only", 3, 30 * time.Second, []string{WeChatLate}, []string{WeChat5xx}, 1},
		{"production suite", 1, Suites["production"].Duration, Suites["production"].Required, Suites["production"].Pool, len(ProductionRequired)},
		{"platform suite", 1, Suites["platform"].Duration, Suites["platform"].Required, Suites["platform"].Pool, len(PlatformRequired)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps := plan(tt.seed, tt.d, tt.required, tt.pool, DefaultTiming, 4, 3, 2, 4)
			if len(steps) < tt.wantMin {
				t.Fatalf("plan has %d steps, want at least %d", len(steps), tt.wantMin)
			}
			kinds := map[string]bool{}
			for _, s := range steps {
				kinds[s.Kind] = true
				if s.Hold <= 0 {
					t.Errorf("%s: hold %v, want positive", s.Kind, s.Hold)
				}
				if s.App < 0 || s.App >= 2 || s.Replica >= 4 || s.Authorizer < 0 || s.Authorizer >= 4 {
					t.Errorf("%s: target out of range: %+v", s.Kind, s)
				}
				for _, m := range s.Members {
					if m < 0 || m >= 3 {
						t.Errorf("%s: member %d out of range", s.Kind, m)
					}
				}
				if !slices.Contains(tt.required, s.Kind) && !slices.Contains(tt.pool, s.Kind) {
					t.Errorf("%s: neither required nor in the pool", s.Kind)
				}
			}
			for _, k := range tt.required {
				if !kinds[k] {
					t.Errorf("required kind %s not planned", k)
				}
			}
			again := plan(tt.seed, tt.d, tt.required, tt.pool, DefaultTiming, 4, 3, 2, 4)
			if !slices.EqualFunc(steps, again, func(a, b Step) bool {
				return a.Kind == b.Kind && a.Gap == b.Gap && a.Hold == b.Hold && a.App == b.App && a.Authorizer == b.Authorizer &&
					a.Replica == b.Replica && a.Param == b.Param && slices.Equal(a.Members, b.Members)
			}) {
				t.Error("the same seed planned two different schedules")
			}
		})
	}
}

func TestPlanTargets(t *testing.T) {
	steps := plan(5, time.Hour, AllKinds, AllKinds, DefaultTiming, 4, 3, 2, 4)
	for _, s := range steps {
		switch s.Kind {
		case EtcdQuorumLoss:
			if len(s.Members) != 2 || s.Members[0] == s.Members[1] {
				t.Errorf("quorum loss of 3 members takes down %v, want two distinct", s.Members)
			}
			if s.Hold <= DefaultTiming.ElectionTTL {
				t.Errorf("quorum loss holds %v, want longer than the TTL %v", s.Hold, DefaultTiming.ElectionTTL)
			}
		case EtcdClusterRestart:
			if len(s.Members) != 3 {
				t.Errorf("cluster restart takes down %v, want all three", s.Members)
			}
		case LeaderPause:
			window := DefaultTiming.ElectionTTL + DefaultTiming.FetchTimeout + DefaultTiming.Margin
			if s.Hold <= DefaultTiming.ElectionTTL || s.Hold >= window-time.Second {
				t.Errorf("pause holds %v, want longer than the TTL %v and a second shorter than %v", s.Hold, DefaultTiming.ElectionTTL, window)
			}
		case LeaderPauseLong:
			if window := DefaultTiming.ElectionTTL + DefaultTiming.FetchTimeout + DefaultTiming.Margin; s.Hold <= window {
				t.Errorf("long pause holds %v, want longer than %v", s.Hold, window)
			}
		case WeChatSlow:
			if s.Param >= DefaultTiming.FetchTimeout {
				t.Errorf("slow answers after %v, want under the fetch timeout %v", s.Param, DefaultTiming.FetchTimeout)
			}
		case WeChatLate:
			if s.Param <= DefaultTiming.FetchTimeout+time.Second {
				t.Errorf("late answers after %v, want after the fetch timeout and the first retry", s.Param)
			}
		case WeChatLateRetry:
			// Past the old per-try timeout (a third of the fetch timeout)
			// and inside the fetch's deadline.
			if s.Param <= DefaultTiming.FetchTimeout/3 || s.Param >= DefaultTiming.FetchTimeout || s.App != 0 {
				t.Errorf("late-retry holds app %d for %v, want the classic app 0 for between %v and %v",
					s.App, s.Param, DefaultTiming.FetchTimeout/3, DefaultTiming.FetchTimeout)
			}
		case WeChatRefuseApp, WeChatRefuseLeader:
			if period := DefaultTiming.TokenTTL - DefaultTiming.Before; s.Hold <= period {
				t.Errorf("%s holds %v, want longer than a refresh period %v", s.Kind, s.Hold, period)
			}
		case ReportLateReject:
			if s.Param <= DefaultTiming.invalidateWait() || s.Param >= DefaultTiming.FetchTimeout {
				t.Errorf("the check is held %v, want longer than the invalidate wait %v and shorter than the fetch timeout %v",
					s.Param, DefaultTiming.invalidateWait(), DefaultTiming.FetchTimeout)
			}
		case ForeignFetch:
			if s.App != 0 || s.Hold < DefaultTiming.Overlap {
				t.Errorf("foreign fetch of app %d held %v, want the classic app 0 and at least an overlap", s.App, s.Hold)
			}
		case PlatformKillMidExchange, PlatformKillMidRefresh:
			// WeChat answers while no leader lives: before a successor
			// can be elected.
			if s.Param <= 0 || s.Param >= DefaultTiming.ElectionTTL || s.Param >= DefaultTiming.FetchTimeout {
				t.Errorf("%s answers after %v, want within the election TTL %v and the fetch timeout", s.Kind, s.Param, DefaultTiming.ElectionTTL)
			}
		case PlatformTicketStop:
			if s.Hold <= DefaultTiming.TicketTTL+DefaultTiming.TokenTTL {
				t.Errorf("ticket stop bounded by %v, want more than a ticket's and a token's life", s.Hold)
			}
		case PlatformWrongKey:
			if s.Hold < 2*DefaultTiming.TicketEvery {
				t.Errorf("wrong key for %v, want at least two pushes (every %v)", s.Hold, DefaultTiming.TicketEvery)
			}
		}
	}
}

// TestDefaultTiming checks the ratios the suite keeps from production.
func TestDefaultTiming(t *testing.T) {
	d := DefaultTiming
	if d.Overlap != 10*d.FetchTimeout {
		t.Errorf("overlap %v, want 10 x fetch timeout %v", d.Overlap, d.FetchTimeout)
	}
	if d.Overlap < 5*(d.FetchTimeout+d.Margin) {
		t.Errorf("overlap %v, want at least 5 x (fetch timeout + margin) %v", d.Overlap, d.FetchTimeout+d.Margin)
	}
	if d.Before <= d.Overlap {
		t.Errorf("before %v, want more than the overlap %v", d.Before, d.Overlap)
	}
	if every := d.TokenTTL - d.Before - d.Jitter; every <= d.Overlap+d.FetchTimeout+d.Margin {
		t.Errorf("classic refresh every %v, want more than the overlap plus the recovery window (%v): a foreign fetch must kill the token before the next planned refresh",
			every, d.Overlap+d.FetchTimeout+d.Margin)
	}
	if d.InvalidateWait != d.FetchTimeout/3 {
		t.Errorf("invalidate wait %v, want a third of the fetch timeout %v", d.InvalidateWait, d.FetchTimeout)
	}
	if d.Holdoff != 2*d.Overlap {
		t.Errorf("holdoff %v, want 2 x the overlap", d.Holdoff)
	}
	if d.TicketEvery != d.TokenTTL/12 {
		t.Errorf("ticket pushed every %v, want a twelfth of a token's life (10 minutes of 2 hours)", d.TicketEvery)
	}
	if d.TicketTTL <= d.TokenTTL {
		t.Errorf("tickets live %v, want longer than a component token (%v): pushes stopped past the token's life leave a good ticket", d.TicketTTL, d.TokenTTL)
	}
}
