package fetcher_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
)

const (
	simApp    = "wxsim00000000001"
	simSecret = "sim-secret-0123456789"
	simCorp   = "wwsim00000000001"
)

func newSim(t *testing.T, cfg wechattest.Config) (*wechattest.Server, *fetcher.Client) {
	t.Helper()
	sim := wechattest.NewServer(cfg)
	t.Cleanup(sim.Close)
	sim.AddApp(simApp, simSecret)
	sim.AddCorp(simCorp, simSecret)
	c, err := fetcher.New(fetcher.Config{
		BaseURL: sim.URL, WeComBaseURL: sim.URL, MaxAttempts: 3,
		NewBackOff: func() backoff.BackOff { return &backoff.ZeroBackOff{} },
	})
	if err != nil {
		t.Fatal(err)
	}
	return sim, c
}

// TestAgainstSimulator runs every error class the simulator can produce
// through each client method.
func TestAgainstSimulator(t *testing.T) {
	type call func(ctx context.Context, c *fetcher.Client) (fetcher.Token, error)
	classic := func(id, s string) call {
		return func(ctx context.Context, c *fetcher.Client) (fetcher.Token, error) { return c.Classic(ctx, id, s) }
	}
	stable := func(id, s string) call {
		return func(ctx context.Context, c *fetcher.Client) (fetcher.Token, error) {
			return c.Stable(ctx, id, s, false)
		}
	}
	wecom := func(id, s string) call {
		return func(ctx context.Context, c *fetcher.Client) (fetcher.Token, error) { return c.WeCom(ctx, id, s) }
	}
	for _, tc := range []struct {
		name     string
		call     call
		fault    wechattest.Fault
		allow    []string
		class    fetcher.Class
		code     int
		attempts int // calls the simulator saw
	}{
		{"classic ok", classic(simApp, simSecret), wechattest.Fault{}, nil, fetcher.ClassUnknown, 0, 1},
		{"stable ok", stable(simApp, simSecret), wechattest.Fault{}, nil, fetcher.ClassUnknown, 0, 1},
		{"wecom ok", wecom(simCorp, simSecret), wechattest.Fault{}, nil, fetcher.ClassUnknown, 0, 1},
		{"busy once then ok", classic(simApp, simSecret), wechattest.Fault{Mode: wechattest.FaultBusy, Count: 1}, nil, fetcher.ClassUnknown, 0, 2},
		{"busy always", classic(simApp, simSecret), wechattest.Fault{Mode: wechattest.FaultBusy}, nil, fetcher.Transient, -1, 3},
		{"minute limit", stable(simApp, simSecret), wechattest.Fault{Mode: wechattest.FaultMinuteLimit}, nil, fetcher.Transient, 45011, 3},
		{"5xx", wecom(simCorp, simSecret), wechattest.Fault{Mode: wechattest.Fault5xx}, nil, fetcher.Ambiguous, 0, 1},
		{"broken json", classic(simApp, simSecret), wechattest.Fault{Mode: wechattest.FaultBadJSON}, nil, fetcher.Ambiguous, 0, 1},
		{"quota", classic(simApp, simSecret), wechattest.Fault{Mode: wechattest.FaultQuota}, nil, fetcher.Quota, 45009, 1},
		{"unknown appid", classic("wxnope0000000000", simSecret), wechattest.Fault{}, nil, fetcher.Permanent, 40013, 1},
		{"wrong secret", classic(simApp, "wrong"), wechattest.Fault{}, nil, fetcher.Permanent, 40125, 1},
		{"missing appid", classic("", simSecret), wechattest.Fault{}, nil, fetcher.Permanent, 41002, 1},
		{"missing secret", stable(simApp, ""), wechattest.Fault{}, nil, fetcher.Permanent, 41004, 1},
		{"wecom wrong secret", wecom(simCorp, "wrong"), wechattest.Fault{}, nil, fetcher.Permanent, 40001, 1},
		{"ip not whitelisted", classic(simApp, simSecret), wechattest.Fault{}, []string{"10.1.2.3"}, fetcher.Permanent, 40164, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim, c := newSim(t, wechattest.Config{})
			if tc.fault.Mode != "" {
				sim.SetFault(tc.fault)
			}
			if tc.allow != nil {
				sim.SetAllowIPs(tc.allow)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tok, err := tc.call(ctx, c)
			if got := len(sim.Ledger()); got != tc.attempts {
				t.Errorf("simulator saw %d calls, want %d", got, tc.attempts)
			}
			if tc.class == fetcher.ClassUnknown {
				if err != nil || tok.Value == "" || tok.ExpiresIn <= 0 {
					t.Fatalf("got %+v, %v; want a token", tok, err)
				}
				if !sim.Valid(tok.Value, time.Now()) {
					t.Error("the simulator does not know the token as valid")
				}
				return
			}
			if err == nil {
				t.Fatalf("got %+v, want an error of class %v", tok, tc.class)
			}
			if got := fetcher.ClassOf(err); got != tc.class {
				t.Errorf("class %v, want %v (err %v)", got, tc.class, err)
			}
			var apiErr *fetcher.APIError
			if tc.code != 0 && (!errors.As(err, &apiErr) || apiErr.Code != tc.code) {
				t.Errorf("err %v, want errcode %d", err, tc.code)
			}
			if tc.code == 40164 && !apiErr.HostSpecific() {
				t.Error("40164 is not host-specific")
			}
			if strings.Contains(err.Error(), simSecret) {
				t.Errorf("secret in error %q", err)
			}
		})
	}
}

// TestTicketWithDeadTokenAgainstSimulator: a ticket asked with a token the
// simulator killed is TokenDead; with the live token it works.
func TestTicketWithDeadTokenAgainstSimulator(t *testing.T) {
	clock := wechattest.NewFakeClock(time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC))
	sim, c := newSim(t, wechattest.Config{Now: clock.Now})
	ctx := context.Background()
	old, err := c.Classic(ctx, simApp, simSecret)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := c.Classic(ctx, simApp, simSecret)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(wechattest.DefaultOverlap + time.Second)
	_, err = c.Ticket(ctx, old.Value, fetcher.TicketJSAPI)
	if fetcher.ClassOf(err) != fetcher.TokenDead {
		t.Fatalf("ticket with a killed token: %v (class %v), want TokenDead", err, fetcher.ClassOf(err))
	}
	if strings.Contains(err.Error(), old.Value) {
		t.Errorf("access token in error %q", err)
	}
	tk, err := c.Ticket(ctx, cur.Value, fetcher.TicketJSAPI)
	if err != nil || tk.Value == "" {
		t.Fatalf("ticket with the live token: %+v, %v", tk, err)
	}
	ips, err := c.CallbackIP(ctx, "", cur.Value)
	if err != nil || len(ips) == 0 {
		t.Fatalf("getcallbackip with the live token: %v, %v", ips, err)
	}
	if _, err := c.CallbackIP(ctx, "", old.Value); fetcher.ClassOf(err) != fetcher.TokenDead {
		t.Fatalf("getcallbackip with the killed token: %v, want TokenDead", err)
	}
	// Two tokens and two ticket calls, the refused one included.
	if len(sim.Ledger()) != 4 {
		t.Errorf("ledger has %d lines, want 4", len(sim.Ledger()))
	}
}

// TestTimeoutAgainstSimulator: a call the simulator holds is bounded by
// the context and classified ambiguous: WeChat may still mint.
func TestTimeoutAgainstSimulator(t *testing.T) {
	sim, c := newSim(t, wechattest.Config{})
	sim.SetFault(wechattest.Fault{Mode: wechattest.FaultTimeout})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Classic(ctx, simApp, simSecret)
	if fetcher.ClassOf(err) != fetcher.Ambiguous || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v (class %v), want an ambiguous deadline error", err, fetcher.ClassOf(err))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v, want it bounded by the 300 ms context", d)
	}
	if strings.Contains(err.Error(), simSecret) {
		t.Errorf("secret in error %q", err)
	}
}
