package replica

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// clockCheck compares the leader's heartbeats with this replica's clock.
// A replica judges on its own clock when a token it holds must no longer
// be handed out (its expiry, its keep-until, a dead leader's window), from
// times the leader wrote on the leader's clock: a clock behind the
// leader's by more than refresh.margin hands a token out past its end
// whenever the cache is all it has (etcd cut off, a leader dead
// mid-fetch). A beat reaches a replica after the leader wrote it, so one
// dated later than this clock's now shows this clock behind by at least
// the difference.
type clockCheck struct {
	behind prometheus.Gauge
	now    func() time.Time
	warnAt time.Duration // half the margin
	log    *slog.Logger
	warned atomic.Bool
}

func newClockCheck(m *metrics, margin time.Duration, now func() time.Time, log *slog.Logger) (*clockCheck, error) {
	c := &clockCheck{
		behind: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wxtoken_clock_behind_leader_seconds",
			Help: "How far this replica's clock is behind the leader's, at least, from the newest heartbeat (0: not behind). Past refresh.margin, a replica cut off from etcd may hand out a token after its end.",
		}),
		now: now, warnAt: margin / 2, log: log.With("component", "clock"),
	}
	return c, m.register(c.behind)
}

// beat takes one heartbeat the cache's watch delivered.
func (c *clockCheck) beat(b tokenstore.Beat) {
	d := max(b.At.Sub(c.now()), 0)
	c.behind.Set(d.Seconds())
	switch {
	case d > c.warnAt && c.warned.CompareAndSwap(false, true):
		c.log.Warn("this replica's clock is behind the leader's: cut off from etcd it may hand out a token after its end; check its time synchronisation (NTP)",
			"behind", d.Round(time.Millisecond), "leader", b.Node, "warn_at", c.warnAt)
	case d <= c.warnAt/2 && c.warned.CompareAndSwap(true, false):
		c.log.Info("clock back in step with the leader's", "behind", d.Round(time.Millisecond), "leader", b.Node)
	}
}
