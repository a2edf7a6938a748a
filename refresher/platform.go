package refresher

import (
	"container/heap"
	"context"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// Kinds of an Open Platform third-party platform's credentials.
const (
	// KindComponent is a platform's component_access_token, fetched with
	// the newest component_verify_ticket that WeChat pushed.
	KindComponent = "component"
	// KindAuthorizer is an authorizer_access_token, fetched with the
	// authorizer's refresh token (or, first, its authorization code) and
	// the component token. Authorizers are created at run time, from what
	// the platform's event URL stored.
	KindAuthorizer = "authorizer"
)

// Platform is a third-party platform whose credentials the leader keeps.
type Platform struct {
	Name           string
	ComponentAppID string
	Secret         string // component appsecret; never logged, never stored
	Budget         int    // component token fetches per China-time day
}

// PlatformFetcher makes a platform's WeChat calls; *fetcher.Client
// implements it.
type PlatformFetcher interface {
	ComponentToken(ctx context.Context, componentAppID, secret, ticket string) (fetcher.Token, error)
	StartPushTicket(ctx context.Context, componentAppID, secret string) error
	QueryAuth(ctx context.Context, componentToken, componentAppID, code string) (fetcher.Authorization, error)
	AuthorizerToken(ctx context.Context, componentToken, componentAppID, authorizerAppID, refreshToken string) (fetcher.AuthorizerToken, error)
	AuthorizerList(ctx context.Context, componentToken, componentAppID string, offset, count int) (fetcher.AuthorizerPage, error)
}

var _ PlatformFetcher = (*fetcher.Client)(nil)

// platformCreds are the component credentials of ps.
func platformCreds(ps []Platform) []Cred {
	out := make([]Cred, 0, len(ps))
	for _, p := range ps {
		out = append(out, Cred{Name: tokenstore.ComponentCred(p.Name), App: p.Name, Kind: KindComponent,
			AppID: p.ComponentAppID, Secret: p.Secret, Budget: p.Budget, Platform: p.Name})
	}
	return out
}

// platforms keeps what the leader knows of the platforms at run time.
type platforms struct {
	byName map[string]Platform
	mu     sync.Mutex
	creds  map[string]*Cred     // authorizer credentials made so far
	kicked map[string]time.Time // last api_start_push_ticket per platform
}

// cred returns the credential named name: a configured one, or an
// authorizer of a configured platform.
func (r *Refresher) cred(name string) (*Cred, bool) {
	if c, ok := r.byName[name]; ok {
		return c, true
	}
	platform, appID, ok := tokenstore.ParseAuthorizerCred(name)
	if !ok {
		return nil, false
	}
	p, ok := r.plat.byName[platform]
	if !ok {
		return nil, false
	}
	r.plat.mu.Lock()
	defer r.plat.mu.Unlock()
	if c, ok := r.plat.creds[name]; ok {
		return c, true
	}
	c := &Cred{Name: name, App: platform, Kind: KindAuthorizer, AppID: appID, Platform: platform,
		Component: p.ComponentAppID, Token: tokenstore.ComponentCred(platform)}
	r.plat.creds[name] = c
	return c, true
}

// addAuthorizer queues the authorizer name on s, unless s has it. With
// snaps (the term start's bulk read, whose reports are relayed), its
// first step uses its snapshot; otherwise it reads it alone and looks for
// reports.
func (r *Refresher) addAuthorizer(s *sched, w worker, name string, snaps map[string]tokenstore.Snapshot) {
	c, ok := r.cred(name)
	if !ok || c.Kind != KindAuthorizer || s.has(name) {
		return
	}
	e := &entry{c: c, w: w, at: r.cfg.Now(), t: term{scanReports: snaps == nil}}
	if snaps != nil {
		snap, ok := snaps[name]
		if !ok {
			snap = tokenstore.Snapshot{Cred: name, Day: tokenstore.Day(e.at)}
		}
		e.snap = &snap
	}
	s.add(e)
}

// startPlatforms queues every authorizer known to etcd (by an event key or
// a record), with its snapshot in snaps if that is not nil, and returns the
// revision to watch events from.
func (r *Refresher) startPlatforms(ctx context.Context, s *sched, w worker, snaps map[string]tokenstore.Snapshot) (int64, error) {
	k := r.cfg.Store.Keys()
	var rev int64
	for name := range r.plat.byName {
		for _, prefix := range []string{k.Platform(name), k.Creds() + name + "/authorizer/"} {
			resp, err := r.cfg.Store.Client().Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
			if err != nil {
				return 0, err
			}
			if rev == 0 {
				rev = resp.Header.Revision
			}
			for _, kv := range resp.Kvs {
				if cred := r.eventCred(string(kv.Key)); cred != "" {
					r.addAuthorizer(s, w, cred, snaps)
				} else if strings.HasPrefix(string(kv.Key), k.Creds()) {
					r.addAuthorizer(s, w, string(kv.Key[len(k.Creds()):]), snaps)
				}
			}
		}
	}
	return rev, nil
}

// eventCred is the authorizer credential an event key names, or "".
func (r *Refresher) eventCred(key string) string {
	rest, ok := strings.CutPrefix(key, r.cfg.Store.Keys().PlatformEvents())
	if !ok {
		return ""
	}
	parts := strings.SplitN(rest, "/", 4) // <name>/code/<appid>/<digest> or <name>/authorizer/<appid>
	if len(parts) < 3 || (parts[1] != "code" && parts[1] != "authorizer") {
		return ""
	}
	return tokenstore.AuthorizerCred(parts[0], parts[2])
}

// watchPlatforms follows what the platforms' event URLs store, from rev:
// a new ticket wakes the platform's component token, a code or an
// authorizer state wakes (or creates) the authorizer. It re-lists after a
// broken watch.
func (r *Refresher) watchPlatforms(ctx context.Context, s *sched, w worker, rev int64) {
	k := r.cfg.Store.Keys()
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for resp := range r.cfg.Store.Client().Watch(wctx, k.PlatformEvents(), clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithFilterDelete()) {
			if resp.Err() != nil {
				break
			}
			for _, ev := range resp.Events {
				rev = ev.Kv.ModRevision + 1
				key := string(ev.Kv.Key)
				if cred := r.eventCred(key); cred != "" {
					r.addAuthorizer(s, w, cred, nil)
					s.wakeNow(cred)
				} else if name, ok := strings.CutSuffix(strings.TrimPrefix(key, k.PlatformEvents()), "/ticket"); ok {
					s.wakeNow(tokenstore.ComponentCred(name))
				}
			}
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("platform events watch ended: listing again")
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		lctx, lcancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
		next, err := r.startPlatforms(lctx, s, w, nil)
		lcancel()
		if err == nil {
			rev = next + 1
			for name := range r.plat.byName {
				s.wakeNow(tokenstore.ComponentCred(name)) // a ticket may have come meanwhile
			}
		}
	}
}

// wakeAwaiting steps every queued authorizer that waits for the component
// token comp as soon as the cache holds its record seq, just published.
func (r *Refresher) wakeAwaiting(ctx context.Context, comp string, seq uint64) {
	wctx, cancel := context.WithTimeout(ctx, r.cfg.FetchTimeout)
	_, err := r.cfg.Cache.Wait(wctx, comp, seq-1)
	cancel()
	if err != nil {
		return // they look again on their own
	}
	r.mu.Lock()
	scheds := make([]*sched, 0, len(r.scheds))
	for s := range r.scheds {
		scheds = append(scheds, s)
	}
	r.mu.Unlock()
	for _, s := range scheds {
		s.mu.Lock()
		now := r.cfg.Now()
		for _, e := range s.byCred {
			if e.idx >= 0 && e.t.awaits && e.c.Token == comp {
				e.t.awaits = false
				e.at = now
				heap.Fix(&s.heap, e.idx)
			}
		}
		s.poke()
		s.mu.Unlock()
	}
}

// kickPushes asks WeChat to push a ticket again (api_start_push_ticket),
// at most once per kickEvery per platform: the component token cannot be
// fetched without one.
func (r *Refresher) kickPushes(ctx context.Context, c Cred) {
	p, ok := r.plat.byName[c.Platform]
	if !ok {
		return
	}
	now := r.cfg.Now()
	r.plat.mu.Lock()
	last := r.plat.kicked[p.Name]
	if !last.IsZero() && now.Sub(last) < kickEvery*r.cfg.FetchTimeout {
		r.plat.mu.Unlock()
		return
	}
	r.plat.kicked[p.Name] = now
	r.plat.mu.Unlock()
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.FetchTimeout)
	defer cancel()
	if err := r.cfg.Platform.StartPushTicket(kctx, p.ComponentAppID, p.Secret); err != nil {
		r.log.Warn("ask WeChat to push the component_verify_ticket again", "platform", p.Name, "err", err)
		return
	}
	r.log.Warn("no usable component_verify_ticket: asked WeChat to push one again (api_start_push_ticket)", "platform", p.Name)
}

// kickEvery, in fetch timeouts, is the least time between two
// api_start_push_ticket calls of one platform: 10 minutes (WeChat's push
// interval) at the default fetch timeout of 30 s, scaled with it.
const kickEvery = 20
