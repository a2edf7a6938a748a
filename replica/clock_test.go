package replica_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/replica"
)

// TestClockBehindLeader: a replica whose clock is behind the leader's
// shows by how much (from the leader's heartbeats) in
// wxtoken_clock_behind_leader_seconds and warns once, past half of
// refresh.margin; once its clock is right again the gauge falls back and
// it says so. The leader, on its own beats, shows 0.
func TestClockBehindLeader(t *testing.T) {
	const behind = 5 * time.Second
	e := newEnv(t, 1, wechattest.Config{TokenTTL: time.Hour})
	a := e.start(e.testConfig("a"), nil)
	e.leader(10 * time.Second)

	var offset atomic.Int64
	offset.Store(int64(behind))
	cfg := e.testConfig("b")
	cfg.Election.Candidate = false
	e.options = func(o *replica.Options) {
		o.Now = func() time.Time { return time.Now().Add(-time.Duration(offset.Load())) }
	}
	b := e.start(cfg, nil)
	e.options = nil

	gauge := func(r *rep) float64 { return clockGauge(t, r) }
	// A beat takes well under a second to arrive here: b is behind by
	// more than 4 s and by no more than 5.
	waitFor(t, 10*time.Second, "b to measure its clock behind the leader's", func() bool {
		v := gauge(b)
		return v > (behind-time.Second).Seconds() && v <= behind.Seconds()
	})
	waitFor(t, 5*time.Second, "b's warning", func() bool {
		return strings.Contains(e.logs.String(), "clock is behind the leader's")
	})
	if v := gauge(a); v != 0 {
		t.Errorf("the leader is %v s behind its own clock; want 0", v)
	}

	offset.Store(0) // NTP set b's clock right
	waitFor(t, 10*time.Second, "b's gauge to fall back", func() bool { return gauge(b) < 1 })
	waitFor(t, 5*time.Second, "b to say its clock is back in step", func() bool {
		return strings.Contains(e.logs.String(), "clock back in step")
	})
	if n := strings.Count(e.logs.String(), "clock is behind the leader's"); n != 1 {
		t.Errorf("warned %d times; want once while behind", n)
	}
}

// clockGauge scrapes wxtoken_clock_behind_leader_seconds from r.
func clockGauge(t *testing.T, r *rep) float64 {
	t.Helper()
	code, body := get(t, r.URL()+"/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics of %s: %d", r.node, code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics of %s: %v", r.node, err)
	}
	v, ok := value(families["wxtoken_clock_behind_leader_seconds"], nil)
	if !ok {
		t.Fatalf("%s exports no wxtoken_clock_behind_leader_seconds", r.node)
	}
	return v
}

// TestClockBehindCutOff: a serve-only replica whose clock is 5 s behind
// the leader's (more than fifteen times refresh.margin) is cut off from
// etcd; it hands out its cached token until the end the leader's clock
// gives it, not 5 s later: consumers reading from every replica through
// two refreshes get no token WeChat killed. (WXTOKEN_UNSAFE_OFF=clock
// serves on the host's clock: dead tokens.)
func TestClockBehindCutOff(t *testing.T) {
	const behind = 5 * time.Second
	e := newEnv(t, 2, wechattest.Config{TokenTTL: 8 * time.Second, Overlap: 3 * time.Second})
	a := e.start(e.testConfig("a"), nil) // on member 0
	if e.leader(10*time.Second) != a {
		t.Fatal("a does not lead")
	}
	cfg := e.testConfig("b")
	cfg.Election.Candidate = false
	e.options = func(o *replica.Options) {
		o.Now = func() time.Time { return time.Now().Add(-behind) }
	}
	b := e.start(cfg, nil) // on member 1
	e.options = nil
	waitFor(t, 10*time.Second, "b to measure its clock behind", func() bool { return clockGauge(t, b) > (behind - time.Second).Seconds() })
	first, _ := a.Cache().Get("shop/token")

	cons := e.consume("shop")
	bridge := e.clus.Members[e.member(b)].Bridge()
	bridge.Blackhole()
	// Tokens live 8 s and are refreshed 2 s before: two refreshes take
	// b's token past its expiry on any clock.
	waitFor(t, 30*time.Second, "two refreshes by a", func() bool {
		r, ok := a.Cache().Get("shop/token")
		return ok && r.Seq >= first.Seq+2
	})
	bridge.Unblackhole()
	ok, _ := cons.check(t, e.sim)
	if ok == 0 {
		t.Fatal("no read served a token")
	}
}
