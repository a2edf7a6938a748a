package chaos

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/wxtoken/wxtoken/chaos/checker"
)

// Prefix is the etcd prefix the replicas use.
const Prefix = "/wxtoken"

// Timing is the run's clock: every duration that WeChat and the replicas'
// config dictate, scaled down so that a run covers dozens of refreshes.
type Timing struct {
	ElectionTTL  time.Duration // election.ttl
	TokenTTL     time.Duration // the simulator's token lifetime
	Overlap      time.Duration // how long WeChat keeps the previous classic token; refresh.overlap
	Before       time.Duration // refresh.before
	Jitter       time.Duration // refresh.jitter
	FetchTimeout time.Duration // refresh.fetch_timeout
	Margin       time.Duration // refresh.margin
	Holdoff      time.Duration // election.holdoff: how long a host WeChat refused stays out
	// ReadWait and InvalidateWait are refresh.read_wait and
	// refresh.invalidate_wait; zero leaves the replicas' defaults (2 s
	// and 10 s) and writes no key. The leader's check of a reported
	// token is bounded by FetchTimeout: InvalidateWait must be shorter
	// for a rejection to come after the report gave up.
	ReadWait, InvalidateWait time.Duration
	// TicketEvery and TicketTTL are the simulator's component_verify_ticket
	// push interval and lifetime, for a run with a platform.
	TicketEvery, TicketTTL time.Duration
}

// DefaultTiming keeps production's ratios (overlap 300 s, fetch_timeout
// 30 s, margin 30 s, invalidate_wait 10 s, 2-hour tokens refreshed 8
// minutes early, a 10-minute holdoff): the overlap is 10 x fetch_timeout
// and 5 x the recovery window (fetch_timeout + margin); a refresh begins
// more than an overlap before expiry; the planned refresh interval
// (TokenTTL - Before - jitter) is longer than the overlap, so that a token
// fetched outside the cluster kills the published one before the next
// planned refresh, as in production; the holdoff is 2 x the overlap; a
// report waits a third of fetch_timeout. The read wait keeps the
// replicas' default (2 s).
var DefaultTiming = Timing{
	ElectionTTL:  3 * time.Second,
	TokenTTL:     75 * time.Second,
	Overlap:      30 * time.Second,
	Before:       32 * time.Second,
	Jitter:       2 * time.Second,
	FetchTimeout: 3 * time.Second,
	Margin:       3 * time.Second,
	Holdoff:      60 * time.Second,
	// InvalidateWait: a third of FetchTimeout, as in production.
	InvalidateWait: time.Second,
	// WeChat pushes a ticket every 10 minutes, a twelfth of a 2-hour
	// token's life. A ticket lives 12 hours, six token lives; here a
	// little more than one, so that pushes stopped for longer than a
	// component token's life outlive the ticket within a run.
	TicketEvery: 6250 * time.Millisecond,
	TicketTTL:   90 * time.Second,
}

// invalidateWait is the replicas' refresh.invalidate_wait.
func (t Timing) invalidateWait() time.Duration {
	if t.InvalidateWait > 0 {
		return t.InvalidateWait
	}
	return 10 * time.Second
}

// readWait is the replicas' refresh.read_wait.
func (t Timing) readWait() time.Duration {
	if t.ReadWait > 0 {
		return t.ReadWait
	}
	return 2 * time.Second
}

// Config configures a run.
type Config struct {
	// Duration is how long consumers read; the schedule fills it, though
	// the required faults always all run. Default 3m30s.
	Duration time.Duration
	Seed     int64
	// Replicas is the number of wxtoken processes (3 to 5; default 4); all
	// but the last are candidates.
	Replicas int
	// Required are the fault kinds the run must inject; default Required.
	Required []string
	// Pool are the kinds drawn after the required ones; default
	// DefaultPool.
	Pool []string
	// ReadEvery is each consumer's pause between reads; default 25ms.
	ReadEvery time.Duration
	// UnsafeOff names protections to switch off in every replica
	// (--unsafe-off, in a binary built with -tags wxunsafe; see
	// Protections). The run then shows what each protection is for.
	UnsafeOff []string
	Timing    Timing // zero: DefaultTiming
	// Platform adds a WeChat Open Platform third-party platform to the
	// cluster (and with it encryption.key_files, which seals every
	// record): its component token and Authorizers authorizer tokens are
	// read and judged like the apps' tokens. It is set whenever Required
	// or Pool holds a platform fault (the "platform" and "all" suites).
	Platform bool
	// Authorizers is how many accounts authorize the platform at start
	// (1 to 10; default 4).
	Authorizers int
	// Dir holds data, configs and logs; default a new temporary directory,
	// removed afterwards unless Keep.
	Dir  string
	Keep bool
	// EtcdBin and WxtokenBin are the binaries; empty builds them from the
	// module (go build go.etcd.io/etcd/server/v3, go build ./cmd/wxtoken).
	EtcdBin, WxtokenBin string
	// ModuleDir is the module root to build from; default ".".
	ModuleDir string
	// Log receives progress lines; default os.Stderr.
	Log io.Writer

	apps     []app
	platform *platformSetup // with Platform, made by Run
}

// app is one credential of the run.
type app struct {
	name, kind, appID, secret string
	refreshEvery              time.Duration
}

func (c *Config) defaults() error {
	if c.Duration == 0 {
		c.Duration = 3*time.Minute + 30*time.Second
	}
	if c.Replicas == 0 {
		c.Replicas = 4
	}
	if c.Replicas < 3 || c.Replicas > 5 {
		return fmt.Errorf("chaos: %d replicas (want 3 to 5)", c.Replicas)
	}
	if c.Required == nil {
		c.Required = Required
	}
	if c.Pool == nil {
		c.Pool = DefaultPool
	}
	for _, k := range append(slices.Clone(c.Required), c.Pool...) {
		if !known(k) {
			return fmt.Errorf("chaos: unknown fault kind %q (want one of %v)", k, AllKinds)
		}
		c.Platform = c.Platform || platformKind(k) // a platform's fault needs one
	}
	if c.ReadEvery == 0 {
		c.ReadEvery = 25 * time.Millisecond
	}
	if c.Timing == (Timing{}) {
		c.Timing = DefaultTiming
	}
	if c.Platform && c.Authorizers == 0 {
		c.Authorizers = 4
	}
	if c.Platform && (c.Authorizers < 1 || c.Authorizers > 10) {
		return fmt.Errorf("chaos: %d authorizers (want 1 to 10)", c.Authorizers)
	}
	if c.Platform && (c.Timing.TicketEvery <= 0 || c.Timing.TicketTTL <= c.Timing.TicketEvery) {
		return fmt.Errorf("chaos: ticket push every %v, tickets living %v: want a positive interval shorter than the life", c.Timing.TicketEvery, c.Timing.TicketTTL)
	}
	if c.Log == nil {
		c.Log = os.Stderr
	}
	if c.ModuleDir == "" {
		c.ModuleDir = "."
	}
	t := c.Timing
	c.apps = []app{
		// A classic token is replaced Before (plus its jitter share) ahead
		// of expiry; a stable one half an Overlap (plus its share of the
		// jitter, at most a quarter Overlap) ahead.
		// A token too short for that is replaced at half its life.
		{name: "shop", kind: "classic", appID: "wxc4a05e5h0p0001", refreshEvery: max(t.TokenTTL-t.Before-t.Jitter/2, t.TokenTTL/2)},
		{name: "mini", kind: "stable", appID: "wxc4a05m1n1p0002", refreshEvery: max(t.TokenTTL-t.Overlap/2-min(t.Jitter, t.Overlap/4)/2, t.TokenTTL/2)},
	}
	for i := range c.apps {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		c.apps[i].secret = hex.EncodeToString(b)
	}
	return nil
}

func known(kind string) bool { return slices.Contains(AllKinds, kind) }

// Protections are what a wxunsafe build of wxtoken can switch off with
// --unsafe-off (see README.md, "Fault-injection suite"); the binary
// checks the names.
var Protections = []string{"intent", "isolation", "blind-retry", "drain", "recovery", "report-limit", "foreign", "short-scale", "code-claim", "hold"}

// targets are the token routes that consumers read: the apps', then the
// platform's.
func (c *Config) targets() []target {
	var ts []target
	for _, a := range c.apps {
		ts = append(ts, appTarget(a.name))
	}
	if c.platform != nil {
		ts = append(ts, c.platform.targets()...)
	}
	return ts
}

// credentials describe the run's credentials to the checker: the apps,
// then the platform's component and authorizer tokens, which are planned
// like classic tokens (and named by credential).
func (c *Config) credentials() []checker.App {
	var out []checker.App
	for _, a := range c.apps {
		out = append(out, checker.App{Name: a.name, Kind: a.kind, AppID: a.appID, RefreshEvery: checker.Duration(a.refreshEvery)})
	}
	if p := c.platform; p != nil {
		t := c.Timing
		every := checker.Duration(max(t.TokenTTL-t.Before-t.Jitter/2, t.TokenTTL/2))
		out = append(out, checker.App{Name: p.componentCred(), Kind: "component", AppID: p.compAppID, RefreshEvery: every})
		for _, a := range p.authorizers {
			out = append(out, checker.App{Name: p.authorizerCred(a), Kind: "authorizer", AppID: a, RefreshEvery: every})
		}
	}
	return out
}
