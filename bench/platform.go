package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/seal"
	"github.com/wxtoken/wxtoken/tokenstore"
	"github.com/wxtoken/wxtoken/wxcrypt"
)

// The platform section's fixed settings.
const (
	platformName      = "saas"
	platformComponent = "wxbenchcomp00001"
	platformPrefix    = "/bench-platform"
	// platformPushers is how many authorizations (each a push to the
	// leader's event URL) the simulator makes at once.
	platformPushers = 16
	// platformFetchTimeout is refresh.fetch_timeout: not scaled (the
	// scaled 30 s would be 1 s), so that a call that a busy machine
	// answers late is not given up and retried.
	platformFetchTimeout = 2 * time.Second
)

// platformClock is the section's time: it runs scale times faster than
// production, so that a refresh cycle of 10,000 authorizers fits in
// minutes. Every refresh setting is scaled alike from its production
// value, keeping their ratios (before 8 of 120 minutes, jitter 1).
type platformClock struct{ scale int }

func (c platformClock) d(real time.Duration) time.Duration { return real / time.Duration(c.scale) }

// tokenTTL is the simulator's token lifetime: wxtoken takes 1 s off
// expires_in and so plans on the scaled 7,200 s.
func (c platformClock) tokenTTL() time.Duration { return c.d(7200*time.Second) + time.Second }

// timing is wxtoken's refresh timing. refresh.overlap is the least that
// start-up accepts (config.MinOverlap) if the scaled 5 minutes are less: only the recovery of an
// unfinished fetch reads it, and a run without faults has none.
func (c platformClock) timing(electionTTL time.Duration) *refreshTiming {
	t := &refreshTiming{Before: c.d(8 * time.Minute), Jitter: c.d(time.Minute), Margin: c.d(30 * time.Second),
		FetchTimeout: platformFetchTimeout, Overlap: c.d(5 * time.Minute)}
	t.Overlap = max(t.Overlap, config.MinOverlap(t.FetchTimeout, t.Margin, electionTTL))
	return t
}

// platformRun is one run of the section: the simulator, the leader, and
// the cache the figures are read from.
type platformRun struct {
	e      *env
	n      int
	clock  platformClock
	sim    *wechattest.Server
	leader *wxtokenProc
	cli    *clientv3.Client
	track  *authTracker
	margin time.Duration
	pc     procConfig // the leader's configuration

	stopCache context.CancelFunc
	cacheDone chan struct{}
}

// platformSection measures one platform with n authorizers (section 8):
// the fill (authorizations pushed to the leader's event URL, codes
// exchanged), a refresh cycle of every authorizer at scaled time, then
// the term start of a new leader.
func (e *env) platformSection(ctx context.Context, r *Report) error {
	// Tokens live 5 minutes (1 s is 24 s): the first refreshes fall due
	// 4.6 minutes after the first exchange, after a fill of 10,000 at
	// the 45 to 60 exchanges/s this machine manages, so that the refresh
	// cycle is measured alone; it lasts as long as the fill. Each
	// authorizer's refresh falls due one lifetime after its exchange, so
	// the cycle keeps up only if the refreshes run about as fast as the
	// exchanges did: a refresh may be late by refresh.before less the
	// jitter and the margin, 16 s here (6.5 minutes in production),
	// which 10,000 refreshes use up if they run 8% slower. -quick: tokens
	// of 2 minutes for 1,000 authorizers, 6.5 s to spare.
	n, clock := 10000, platformClock{scale: 24}
	if e.opts.quick {
		n, clock = 1000, platformClock{scale: 60}
	}
	p, err := e.startPlatform(ctx, n, clock)
	if p != nil {
		defer p.close()
	}
	if err != nil {
		return err
	}
	fill, err := p.fill(ctx, r)
	if err != nil {
		return err
	}
	if err := p.refreshCycle(ctx, r, fill); err != nil {
		return err
	}
	return p.termStart(ctx, r)
}

// startPlatform starts the simulator (every WeChat call answered after
// fillLatency), a `wxtoken serve` leader with one platform, and a cache
// over the platform's records, and waits for the component token.
func (e *env) startPlatform(ctx context.Context, n int, clock platformClock) (*platformRun, error) {
	p := &platformRun{e: e, n: n, clock: clock, track: newAuthTracker(platformName)}
	p.sim = wechattest.NewServer(wechattest.Config{TokenTTL: clock.tokenTTL(), Overlap: clock.d(5 * time.Minute),
		DailyQuota: 100000, PushClient: &http.Client{Timeout: 30 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: platformPushers}}})
	p.sim.SetFault(wechattest.Fault{Mode: wechattest.FaultLatency, Latency: fillLatency})

	var key [seal.KeySize]byte
	_, _ = rand.Read(key[:])
	keyPath := filepath.Join(e.dir, "platform.key")
	if err := os.WriteFile(keyPath, []byte(hex.EncodeToString(key[:])+"\n"), 0o600); err != nil {
		return p, err
	}
	k, err := seal.NewKey(key[:])
	if err != nil {
		return p, err
	}
	ring, err := seal.NewRing(k)
	if err != nil {
		return p, err
	}
	plat := wechattest.Platform{AppID: platformComponent, Secret: randomText(16), Token: randomText(16),
		EncodingAESKey: randomAESKey(), TicketEvery: clock.d(wechattest.DefaultTicketEvery)}
	const ttl = 10 * time.Second
	timing := clock.timing(ttl)
	p.margin = timing.Margin
	pc := procConfig{Node: "platform-leader", Prefix: platformPrefix, Candidate: true, TTL: ttl,
		Concurrency: scaleConcurrency, SimURL: p.sim.URL, Timing: timing,
		Env: []string{"BENCH_COMPONENT_SECRET=" + plat.Secret, "BENCH_MSG_TOKEN=" + plat.Token, "BENCH_AES_KEY=" + plat.EncodingAESKey},
		Extra: fmt.Sprintf("encryption:\n  key_files: [%s]\nplatforms:\n  - name: %s\n    component_appid: %s\n"+
			"    component_secret: ${BENCH_COMPONENT_SECRET}\n    token: ${BENCH_MSG_TOKEN}\n    encoding_aes_key: ${BENCH_AES_KEY}\n",
			keyPath, platformName, platformComponent)}

	if p.cli, err = e.etcd.client(-1); err != nil {
		return p, err
	}
	cache := tokenstore.NewCache(tokenstore.CacheConfig{Client: p.cli, Prefix: platformPrefix, Apps: []string{platformName},
		Sealing: tokenstore.Sealing{Sealer: ring}, OnApply: p.track.apply})
	cctx, cancel := context.WithCancel(ctx)
	p.stopCache, p.cacheDone = cancel, make(chan struct{})
	go func() {
		defer close(p.cacheDone)
		_ = cache.Run(cctx)
	}()
	select {
	case <-cache.Loaded():
	case <-ctx.Done():
		return p, ctx.Err()
	}

	p.pc = pc
	if p.leader, err = e.startNode(ctx, pc); err != nil {
		return p, err
	}
	keys := tokenstore.Keys{Prefix: platformPrefix}
	if err := waitUntil(ctx, time.Minute, 50*time.Millisecond, "a leader", func() bool {
		return countKeys(ctx, p.cli, keys.Election()) > 0
	}); err != nil {
		return p, err
	}
	plat.PushURL = p.leader.url + "/v1/platforms/" + platformName + "/events"
	if err := p.sim.AddPlatform(plat); err != nil { // pushes a ticket at once
		return p, err
	}
	if err := p.track.wait(ctx, time.Minute, "the component token", func() bool { return p.track.comp != nil }); err != nil {
		return p, err
	}
	return p, nil
}

func (p *platformRun) close() {
	if p.leader != nil {
		p.leader.stop(30 * time.Second)
	}
	if p.stopCache != nil {
		p.stopCache()
		<-p.cacheDone
	}
	if p.cli != nil {
		p.cli.Close()
	}
	p.sim.Close()
}

// authorizerIDs are the appids of the section's n authorizers.
func authorizerIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("wxpbench%010d", i+1)
	}
	return ids
}

// authorizeAll authorizes every appid at the simulator, platformPushers at
// a time (each a push to the leader's event URL), and returns how many
// pushes the event URL accepted and when the last answer came.
func (p *platformRun) authorizeAll(ctx context.Context, ids []string) (accepted int, err error) {
	var ok atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, platformPushers)
	for w := range platformPushers {
		wg.Go(func() {
			for i := w; i < len(ids) && ctx.Err() == nil; i += platformPushers {
				a, err := p.sim.Authorize(ctx, platformComponent, ids[i], wechattest.AuthorizeOptions{})
				if err != nil && errs[w] == nil {
					errs[w] = fmt.Errorf("authorize %s: %w", ids[i], err)
				}
				if a.Push.Accepted() {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return int(ok.Load()), err
		}
	}
	return int(ok.Load()), ctx.Err()
}

// randomText is n random bytes in hex.
func randomText(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// randomAESKey is a random EncodingAESKey (43 characters).
func randomAESKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)[:wxcrypt.EncodingKeyLen]
}
