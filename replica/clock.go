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
// leader's by more than refresh.margin would hand a token out past its end
// whenever the cache is all it has (etcd cut off, a leader dead
// mid-fetch). A beat reaches a replica after the leader wrote it, so one
// dated later than this clock's now shows this clock behind by at least
// the difference. The replica serves on its clock moved forward by that
// much (Now): never later than the leader's clock allows, and, until the
// next beat, as the last one measured, cut off from etcd included.
type clockCheck struct {
	behind prometheus.Gauge
	base   func() time.Time // this host's clock
	ahead  atomic.Int64     // the correction Now adds, in nanoseconds
	warnAt time.Duration    // half the margin
	log    *slog.Logger
	warned atomic.Bool
	// off leaves Now uncorrected (Unsafe.NoClockCorrection).
	off bool
}

func newClockCheck(m *metrics, margin time.Duration, base func() time.Time, off bool, log *slog.Logger) (*clockCheck, error) {
	c := &clockCheck{
		behind: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wxtoken_clock_behind_leader_seconds",
			Help: "How far this replica's clock is behind the leader's, at least, from the newest heartbeat (0: not behind); the replica serves on its clock moved forward by as much.",
		}),
		base: base, warnAt: margin / 2, off: off, log: log.With("component", "clock"),
	}
	return c, m.register(c.behind)
}

// Now is the clock this replica serves on: its own, moved forward by how
// far the newest heartbeat showed it behind the leader's.
func (c *clockCheck) Now() time.Time { return c.base().Add(time.Duration(c.ahead.Load())) }

// beat takes one heartbeat the cache's watch delivered.
func (c *clockCheck) beat(b tokenstore.Beat) {
	d := max(b.At.Sub(c.base()), 0)
	c.behind.Set(d.Seconds())
	if !c.off {
		c.ahead.Store(int64(d))
	}
	switch {
	case d > c.warnAt && c.warned.CompareAndSwap(false, true):
		c.log.Warn("this replica's clock is behind the leader's: it serves on the leader's time as measured, but check its time synchronisation (NTP)",
			"behind", d.Round(time.Millisecond), "leader", b.Node, "warn_at", c.warnAt)
	case d <= c.warnAt/2 && c.warned.CompareAndSwap(true, false):
		c.log.Info("clock back in step with the leader's", "behind", d.Round(time.Millisecond), "leader", b.Node)
	}
}
