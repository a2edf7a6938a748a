// Package election runs a function only while this process leads an etcd
// election, with a context that ends the moment leadership is lost or in
// doubt, and a Guard that fences writes to the current term.
package election

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Defaults for Config.
const (
	DefaultTTL           = 10 * time.Second
	DefaultResignTimeout = 2 * time.Second
)

// ErrNotLeader reports that leadership was lost or is in doubt.
var ErrNotLeader = errors.New("election: not the leader")

// Config configures an Elector.
type Config struct {
	Client *clientv3.Client
	// Prefix is the election's key prefix, e.g. "/wxtoken/election".
	Prefix string
	// Node is the value this candidate proclaims (its node name).
	Node string
	// TTL is the session lease TTL, in whole seconds (at least 2 s).
	TTL time.Duration
	// Margin is subtracted from the TTL when deciding whether the newest
	// keepalive still proves leadership. Default: max(TTL/5, 500ms).
	Margin time.Duration
	// ResignTimeout bounds Resign and the lease revocation on step-down.
	ResignTimeout time.Duration
	// Retry is the pause between campaign attempts after an error.
	// Default: TTL/4 with jitter.
	Retry time.Duration
	// Logger defaults to a discarding logger.
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Elector campaigns for leadership. It is used by a single Run call.
type Elector struct {
	cfg Config
	log *slog.Logger
}

// New validates cfg and returns an Elector.
func New(cfg Config) (*Elector, error) {
	if cfg.Client == nil {
		return nil, errors.New("election: Client is nil")
	}
	if cfg.Prefix == "" || cfg.Node == "" {
		return nil, errors.New("election: Prefix and Node are required")
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < 2*time.Second {
		return nil, fmt.Errorf("election: TTL %v below 2s", cfg.TTL)
	}
	if cfg.Margin == 0 {
		cfg.Margin = max(cfg.TTL/5, 500*time.Millisecond)
	}
	if cfg.Margin >= cfg.TTL {
		return nil, fmt.Errorf("election: Margin %v must be below TTL %v", cfg.Margin, cfg.TTL)
	}
	if cfg.ResignTimeout == 0 {
		cfg.ResignTimeout = DefaultResignTimeout
	}
	if cfg.Retry == 0 {
		cfg.Retry = cfg.TTL / 4
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Elector{cfg: cfg, log: cfg.Logger.With("component", "election", "node", cfg.Node)}, nil
}

// HoldoffError asks Run to step down and stay out of the race for Duration.
// A lead function returns it (via Holdoff) when this host may not do the
// leader's work, so that another candidate takes over.
type HoldoffError struct {
	Duration time.Duration
	Err      error
}

func (e *HoldoffError) Error() string {
	return fmt.Sprintf("step down for %v: %v", e.Duration, e.Err)
}

func (e *HoldoffError) Unwrap() error { return e.Err }

// Holdoff wraps err so that Run steps down and waits d before campaigning.
func Holdoff(d time.Duration, err error) error {
	return &HoldoffError{Duration: d, Err: err}
}

// Run campaigns until ctx is done. Each time it wins, it calls lead with a
// context that is cancelled as soon as leadership is lost or in doubt, and
// a Guard for fenced writes. When lead returns, Run resigns (bounded by
// ResignTimeout, on a fresh context) and campaigns again; a HoldoffError
// makes it wait first. Run returns ctx's error once ctx is done and the
// current term, if any, has ended.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context, g *Guard) error) error {
	for {
		wait := e.jitter(e.cfg.Retry)
		err := e.term(ctx, lead)
		var ho *HoldoffError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &ho):
			e.log.Warn("stepping down and holding off", "for", ho.Duration, "err", ho.Err)
			wait = ho.Duration
		case err != nil:
			e.log.Warn("term ended", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (e *Elector) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d)
}

// term runs one session: campaign, lead, step down. The session is always
// closed (its lease revoked) on return, so no key of this term remains.
func (e *Elector) term(ctx context.Context, lead func(context.Context, *Guard) error) error {
	sctx, cancelSession := context.WithCancel(context.Background())
	defer cancelSession()
	ttl := int((e.cfg.TTL + time.Second - 1) / time.Second)
	kaStart := e.cfg.Now() // before the grant: the server times the lease from later
	grantCtx, cancelGrant := context.WithTimeout(ctx, e.cfg.TTL)
	lease, err := e.cfg.Client.Grant(grantCtx, int64(ttl))
	cancelGrant()
	if err != nil {
		return fmt.Errorf("grant lease: %w", err)
	}
	// Our own keepalive stream on the session's lease: the session's loop
	// eats its responses, this one times them.
	kaCtx, cancelKA := context.WithCancel(sctx)
	defer cancelKA()
	kas, err := e.cfg.Client.KeepAlive(kaCtx, lease.ID)
	if err != nil {
		e.revoke(lease.ID)
		return fmt.Errorf("keepalive: %w", err)
	}
	sess, err := concurrency.NewSession(e.cfg.Client, concurrency.WithLease(lease.ID),
		concurrency.WithTTL(ttl), concurrency.WithContext(sctx))
	if err != nil {
		e.revoke(lease.ID)
		return fmt.Errorf("session: %w", err)
	}
	defer e.closeSession(sess)

	g := &Guard{lease: lease.ID, margin: e.cfg.Margin, now: e.cfg.Now}
	g.renewed(kaStart, time.Duration(lease.TTL)*time.Second)
	kaDone := make(chan struct{})
	go func() {
		defer close(kaDone)
		for resp := range kas {
			g.renewed(e.cfg.Now(), time.Duration(resp.TTL)*time.Second)
		}
	}()

	// Campaign, cancelled if the session dies (etcd#19597).
	el := concurrency.NewElection(sess, e.cfg.Prefix)
	cctx, cancelCampaign := context.WithCancel(ctx)
	go func() {
		select {
		case <-sess.Done():
			cancelCampaign()
		case <-kaDone:
			cancelCampaign()
		case <-cctx.Done():
		}
	}()
	err = el.Campaign(cctx, e.cfg.Node)
	cancelCampaign()
	if err != nil {
		// Closing the session revokes the lease and with it any key the
		// failed campaign left behind (etcd#21128).
		return fmt.Errorf("campaign: %w", err)
	}
	if err := e.confirm(ctx, sess, el); err != nil {
		return err
	}
	g.key, g.rev = el.Key(), el.Rev()
	if !g.Held() {
		return fmt.Errorf("campaign won with a stale keepalive: %w", ErrNotLeader)
	}
	e.log.Info("became leader", "key", g.key, "rev", g.rev)
	defer e.log.Info("leadership ended", "key", g.key)

	lctx, cancelLead := context.WithCancelCause(ctx)
	defer cancelLead(nil)
	var watchers = make(chan struct{})
	go func() {
		defer close(watchers)
		e.watchTerm(lctx, cancelLead, sess, g, kaDone)
	}()
	err = lead(lctx, g)
	cancelLead(ErrNotLeader)
	<-watchers
	if cause := context.Cause(lctx); err == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	rctx, cancel := context.WithTimeout(context.Background(), e.cfg.ResignTimeout)
	defer cancel()
	if rerr := el.Resign(rctx); rerr != nil {
		e.log.Warn("resign", "err", rerr)
	}
	return err
}

// confirm re-reads the leader key after Campaign: the session must be alive
// and our key must be the lowest of the prefix.
func (e *Elector) confirm(ctx context.Context, sess *concurrency.Session, el *concurrency.Election) error {
	select {
	case <-sess.Done():
		return fmt.Errorf("session ended while campaigning: %w", ErrNotLeader)
	default:
	}
	gctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), e.cfg.TTL)
	defer cancel()
	resp, err := el.Leader(gctx)
	if err != nil {
		return fmt.Errorf("confirm leadership: %w", err)
	}
	kv := resp.Kvs[0]
	if string(kv.Key) != el.Key() || kv.CreateRevision != el.Rev() || clientv3.LeaseID(kv.Lease) != sess.Lease() {
		return fmt.Errorf("confirm leadership: leader is %q: %w", kv.Key, ErrNotLeader)
	}
	return nil
}

// watchTerm cancels the term when the session ends, the keepalive goes
// stale, or the leader key is deleted or cannot be watched. The watch runs
// apart from the timers: opening a watch on a cut-off member can block.
func (e *Elector) watchTerm(ctx context.Context, cancel context.CancelCauseFunc, sess *concurrency.Session, g *Guard, kaDone <-chan struct{}) {
	wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer wcancel()
	watchDone := make(chan struct{})
	defer func() { <-watchDone }()
	go func() {
		defer close(watchDone)
		for resp := range e.cfg.Client.Watch(wctx, g.key, clientv3.WithRev(g.rev+1)) {
			if resp.Err() != nil || resp.Canceled {
				cancel(fmt.Errorf("leader key watch ended: %w", ErrNotLeader))
				return
			}
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					cancel(fmt.Errorf("leader key deleted: %w", ErrNotLeader))
					return
				}
			}
		}
		if wctx.Err() == nil {
			cancel(fmt.Errorf("leader key watch closed: %w", ErrNotLeader))
		}
	}()
	for {
		timer := time.NewTimer(g.remaining())
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-sess.Done():
			timer.Stop()
			cancel(fmt.Errorf("session ended: %w", ErrNotLeader))
			return
		case <-kaDone:
			timer.Stop()
			cancel(fmt.Errorf("keepalive ended: %w", ErrNotLeader))
			return
		case <-timer.C:
			if !g.Held() {
				cancel(fmt.Errorf("keepalive older than TTL less margin: %w", ErrNotLeader))
				return
			}
		}
	}
}

func (e *Elector) closeSession(sess *concurrency.Session) {
	// Close revokes the lease, bounded by the TTL on the session's own
	// context, which is still live here.
	if err := sess.Close(); err != nil {
		e.log.Debug("close session", "err", err)
	}
}

func (e *Elector) revoke(id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.ResignTimeout)
	defer cancel()
	_, _ = e.cfg.Client.Revoke(ctx, id)
}

// Leader returns the node name of the current leader, or "" when there is
// none.
func (e *Elector) Leader(ctx context.Context) (string, error) {
	return Leader(ctx, e.cfg.Client, e.cfg.Prefix)
}

// Leader returns the node name that leads the election at prefix, or "".
func Leader(ctx context.Context, c *clientv3.Client, prefix string) (string, error) {
	resp, err := c.Get(ctx, prefix+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return "", fmt.Errorf("get leader: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}
