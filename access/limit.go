package access

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Caller is who made a request, as the Limiter tells callers apart.
type Caller struct {
	// Name is the client's name; "" for an anonymous caller.
	Name string
	// Addr is the remote IP address of an anonymous caller.
	Addr string
}

type callerKey struct{}

func withCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller a Guard put in the context of a request
// that may trigger a refresh (invalidate, proxy, preauth), and whether
// there is one.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

func callerOf(c *client, r *http.Request) Caller {
	if c.name != "" {
		return Caller{Name: c.name}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return Caller{Addr: host}
}

// maxKeys bounds the limiters a Limiter keeps per kind; past it, those at
// rest (full) are forgotten, and if none is, a new key is refused.
const maxKeys = 10000

// LimiterConfig configures a Limiter. Rates are per minute; as many may
// come at once.
type LimiterConfig struct {
	PerCaller     int // per client (anonymous callers: per remote address)
	PerCredential int // per credential, whoever reports
	Stats         *Stats
	Now           func() time.Time
}

// Limiter bounds reports of dead tokens that would make the leader
// refresh: per caller and per credential, token buckets refilled at the
// configured rate per minute. Safe for concurrent use.
type Limiter struct {
	perCaller, perCred int
	stats              *Stats
	now                func() time.Time

	mu      sync.Mutex
	callers map[Caller]*rate.Limiter
	creds   map[string]*rate.Limiter
}

// NewLimiter returns a Limiter; a rate below 1 counts as 1.
func NewLimiter(cfg LimiterConfig) *Limiter {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Limiter{
		perCaller: max(cfg.PerCaller, 1), perCred: max(cfg.PerCredential, 1), stats: cfg.Stats, now: cfg.Now,
		callers: map[Caller]*rate.Limiter{}, creds: map[string]*rate.Limiter{},
	}
}

// Allow takes one report of cred by the caller in ctx (see CallerFrom; a
// context without one is a caller of its own). It returns true, or false
// and how long until the report would be allowed.
func (l *Limiter) Allow(ctx context.Context, cred string) (time.Duration, bool) {
	caller, _ := CallerFrom(ctx)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	cl := limiterFor(l.callers, caller, l.perCaller, now)
	kl := limiterFor(l.creds, cred, l.perCred, now)
	if cl == nil || kl == nil {
		l.stats.refused("rate_limited")
		return time.Minute, false
	}
	cr := cl.ReserveN(now, 1)
	kr := kl.ReserveN(now, 1)
	wait := max(cr.DelayFrom(now), kr.DelayFrom(now))
	if wait > 0 {
		cr.CancelAt(now)
		kr.CancelAt(now)
		l.stats.refused("rate_limited")
		return wait, false
	}
	return 0, true
}

// limiterFor returns the limiter of key, making one if need be, or nil if
// there are too many keys and none at rest to forget.
func limiterFor[K comparable](m map[K]*rate.Limiter, key K, perMinute int, now time.Time) *rate.Limiter {
	if lim, ok := m[key]; ok {
		return lim
	}
	if len(m) >= maxKeys {
		for k, lim := range m {
			if lim.TokensAt(now) >= float64(lim.Burst()) {
				delete(m, k)
			}
		}
		if len(m) >= maxKeys {
			return nil
		}
	}
	lim := rate.NewLimiter(rate.Every(time.Minute/time.Duration(perMinute)), perMinute)
	m[key] = lim
	return lim
}
