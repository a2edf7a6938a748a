package wechattest

import (
	"sync"
	"testing"
	"time"
)

// TestConcurrentFetches runs a refresh storm: many goroutines fetch every
// kind at once while the clock moves. The simulator must stay consistent:
// one ledger line per call, every issued token unique, the rules of each
// kind kept.
func TestConcurrentFetches(t *testing.T) {
	e := newEnv(t, Config{})
	const workers, rounds = 16, 12
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				switch (w + i) % 5 {
				case 0:
					if a := e.classic(); a.Errcode == 0 {
						e.use(a.AccessToken)
					}
				case 1:
					e.stable(false)
				case 2:
					e.stable(true)
				case 3:
					e.wecomAs(corpID, corpSecret)
				case 4:
					if a := e.classic(); a.Errcode == 0 {
						e.ticket(a.AccessToken, "jsapi")
					}
				}
				if i%4 == 0 {
					e.clock.Advance(7 * time.Second)
				}
			}
		})
	}
	wg.Wait()

	calls, forcedCalls := 0, 0
	for w := range workers {
		for i := range rounds {
			switch (w + i) % 5 {
			case 4:
				calls += 2
			case 2:
				forcedCalls++
				calls++
			default:
				calls++
			}
		}
	}
	l := e.srv.Ledger()
	if len(l) != calls {
		t.Errorf("ledger has %d lines, want %d", len(l), calls)
	}
	issued := map[string]bool{}
	kindOf := map[string]string{}
	count := map[string]int{} // "kind errcode issued" -> lines
	for i, f := range l {
		if i > 0 && f.At.Before(l[i-1].At) {
			t.Errorf("ledger[%d] answered before ledger[%d]", i, i-1)
		}
		switch {
		case f.Errcode == 0:
		case f.Kind == KindStable && f.Forced && f.Errcode == 45009: // past ForceLimit
		case f.Kind == KindTicket && f.Errcode == 40001: // its classic token was killed by the storm
		default:
			t.Errorf("ledger[%d] = %+v, want success", i, f)
		}
		if f.Errcode != 0 {
			count[f.Kind+" error"]++
			continue
		}
		if !tokenShape.MatchString(f.Token) {
			t.Errorf("ledger[%d] token %q does not look like a WeChat token", i, f.Token)
		}
		if f.Issued {
			if issued[f.Token] {
				t.Errorf("ledger[%d]: token issued twice", i)
			}
			issued[f.Token] = true
			kindOf[f.Token] = f.Kind
			count[f.Kind+" issued"]++
		} else {
			if !issued[f.Token] {
				t.Errorf("ledger[%d]: reused token was never issued", i)
			}
			count[f.Kind+" reused"]++
		}
		if f.Forced {
			count["forced ok"]++
		}
	}

	now := e.clock.Now()
	var classicLive int
	for tok := range issued {
		if kindOf[tok] == KindClassic && e.srv.Valid(tok, now) {
			classicLive++
		}
	}
	tests := []struct {
		name      string
		got, want int
	}{
		{"classic calls that did not mint", count["classic reused"] + count["classic error"], 0},
		{"wecom tokens minted", count["wecom issued"], 1},
		{"forced calls within the limit", count["forced ok"], min(forcedCalls, DefaultForceLimit)},
		{"forced calls past the limit", count["stable error"], max(forcedCalls-DefaultForceLimit, 0)},
		{"classic tokens valid at the end", classicLive, 2},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	for _, kind := range []string{KindClassic, KindStable, KindWeCom, KindTicket} {
		if cur := e.srv.Current(appID, kind) + e.srv.Current(corpID, kind); !e.srv.Valid(cur, now) {
			t.Errorf("Current %s token is not valid at the end", kind)
		}
	}
}
