package access

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	stats := &Stats{}
	l := NewLimiter(LimiterConfig{PerCaller: 3, PerCredential: 2, Stats: stats, Now: func() time.Time { return now }})
	a := withCaller(context.Background(), Caller{Name: "a"})
	b := withCaller(context.Background(), Caller{Name: "b"})
	anon1 := withCaller(context.Background(), Caller{Addr: "192.0.2.1"})

	// Per credential: two at once, then one each 30 s, whoever reports.
	for i, ctx := range []context.Context{a, b} {
		if _, ok := l.Allow(ctx, "shop/token"); !ok {
			t.Fatalf("report %d of shop/token: refused, want allowed", i)
		}
	}
	wait, ok := l.Allow(anon1, "shop/token")
	if ok || wait <= 0 || wait > 30*time.Second {
		t.Fatalf("third report of shop/token: got %v, %v; want refused with a wait up to 30s", wait, ok)
	}
	// Per caller: a has used one of three; a refused report costs nothing.
	for i := range 2 {
		if _, ok := l.Allow(a, "other/token"+strings.Repeat("x", i)); !ok {
			t.Fatalf("report %d by a: refused, want allowed", i)
		}
	}
	if _, ok := l.Allow(a, "third/token"); ok {
		t.Fatal("fourth report by a: allowed, want refused")
	}
	// Time refills both.
	now = now.Add(30 * time.Second)
	if _, ok := l.Allow(anon1, "shop/token"); !ok {
		t.Fatal("report of shop/token 30s later: refused, want allowed")
	}
	now = now.Add(20 * time.Second)
	if _, ok := l.Allow(a, "third/token"); !ok {
		t.Fatal("report by a 50s later: refused, want allowed")
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(stats)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || mfs[0].GetName() != "wxtoken_http_refused_total" {
		t.Fatalf("gathered %v, %v; want wxtoken_http_refused_total", mfs, err)
	}
	got := map[string]float64{}
	for _, m := range mfs[0].GetMetric() {
		got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
	}
	if got["rate_limited"] != 2 || got["unauthorized"] != 0 || len(got) != 6 {
		t.Errorf("refusals by code: %v, want rate_limited 2 and every other code at 0", got)
	}
}

// TestLimiterKeys: the limiter forgets callers at rest rather than grow
// without bound, and refuses new ones while all are busy.
func TestLimiterKeys(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := NewLimiter(LimiterConfig{PerCaller: 1, PerCredential: maxKeys * 2, Now: func() time.Time { return now }})
	for i := range maxKeys {
		ctx := withCaller(context.Background(), Caller{Addr: "10.0.0." + string(rune('a'+i%26)) + strings.Repeat("x", i/26)})
		if _, ok := l.Allow(ctx, "c"); !ok {
			t.Fatalf("caller %d refused", i)
		}
	}
	newcomer := withCaller(context.Background(), Caller{Addr: "192.0.2.9"})
	if _, ok := l.Allow(newcomer, "c"); ok {
		t.Fatal("a new caller while every other is busy: allowed, want refused")
	}
	now = now.Add(time.Minute)
	if _, ok := l.Allow(newcomer, "c"); !ok {
		t.Fatal("a new caller once the others are at rest: refused, want allowed")
	}
	if got := len(l.callers); got != 1 {
		t.Errorf("callers kept: got %d, want 1", got)
	}
}
