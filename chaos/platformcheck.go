package chaos

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/wxtoken/wxtoken/chaos/checker"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// checkRefreshTokens checks, after a platform fault healed (after names
// it) and at the end of the run, that no refresh token was lost: for
// every authorizer WeChat still has authorized, it waits (bounded by a
// successor's recovery: the election TTL and two fetch windows, plus
// 10 s) until etcd holds WeChat's newest refresh token for it, opened
// with the run's key, and every running replica serves a token WeChat
// accepts. The outcome of each is recorded for the checker.
func (h *harness) checkRefreshTokens(ctx context.Context, after string) {
	p := h.cfg.platform
	t := h.cfg.Timing
	start := time.Now()
	deadline := start.Add(t.ElectionTTL + 2*(t.FetchTimeout+t.Margin) + 10*time.Second)
	store := tokenstore.New(h.cli, Prefix)
	store.SetSealing(tokenstore.Sealing{Sealer: p.ring})
	lost := 0
	for _, a := range p.authorizers {
		c := checker.RefreshCheck{After: after, Authorizer: a}
		checked := false
		_ = poll(ctx, max(time.Until(deadline), 0), func(ctx context.Context) bool {
			newest, authorized, err := h.sim.refreshToken(ctx, p.compAppID, a)
			if err != nil {
				return false
			}
			checked = authorized
			if !authorized {
				return true // unauthorized: nothing to keep
			}
			c.Stored = h.storedRefresh(ctx, store, p.authorizerCred(a), newest)
			c.Served = c.Stored == checker.RefreshNewest && h.servedValidEverywhere(ctx, p.authorizerTarget(a))
			return c.OK()
		})
		if !checked {
			continue
		}
		c.At, c.Took = time.Now(), checker.Duration(time.Since(start))
		if !c.OK() {
			lost++
			h.logf("  refresh token of %s after %s: etcd holds %s, valid token served everywhere %v", a, after, c.Stored, c.Served)
		}
		h.mu.Lock()
		h.refreshes = append(h.refreshes, c)
		h.mu.Unlock()
	}
	if lost == 0 {
		h.logf("  refresh tokens after %s: every authorizer's newest in etcd, served (%v)", after, time.Since(start).Round(time.Millisecond))
	}
}

// storedRefresh compares cred's refresh token in etcd with newest.
func (h *harness) storedRefresh(ctx context.Context, store *tokenstore.Store, cred, newest string) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	rt, ok, err := store.RefreshToken(ctx, cred)
	switch {
	case errors.Is(err, tokenstore.ErrRecordUnreadable):
		return checker.RefreshUnreadable
	case err != nil || !ok:
		return checker.RefreshMissing
	case rt.Rejected:
		return checker.RefreshRejected
	case rt.Value != newest:
		return checker.RefreshStale
	}
	return checker.RefreshNewest
}

// servedValidEverywhere reports whether every running replica serves tg with
// a token WeChat accepts now.
func (h *harness) servedValidEverywhere(ctx context.Context, tg target) bool {
	for _, r := range h.replicas {
		if !r.proc.running() {
			continue
		}
		rd := (&consumer{url: r.url(), hc: &http.Client{Timeout: 2 * time.Second}}).read(ctx, tg)
		if !rd.OK() || !h.sim.valid(ctx, rd.Token) {
			return false
		}
	}
	return true
}

// platformHistory collects what the checker needs of the platform beyond
// the reads and the ledger: the codes, the refresh-token checks, the
// simulator's in-flight counts and its pushes.
func (h *harness) platformHistory(ctx context.Context) (*checker.Platform, error) {
	p := h.cfg.platform
	h.mu.Lock()
	out := &checker.Platform{Name: p.name, ComponentAppID: p.compAppID, Authorizers: slices.Clone(p.authorizers),
		Codes: slices.Clone(h.codes), Refreshes: slices.Clone(h.refreshes)}
	h.mu.Unlock()
	ask := func(kind, id string) error {
		n, err := h.sim.inFlight(ctx, kind, id)
		if err == nil {
			out.InFlight = append(out.InFlight, checker.InFlight{Kind: kind, ID: id, Max: n})
		}
		return err
	}
	if err := ask("component", p.compAppID); err != nil {
		return nil, err
	}
	for _, a := range p.authorizers {
		if err := ask("authorizer", a); err != nil {
			return nil, err
		}
	}
	for _, c := range out.Codes {
		if err := ask("query_auth", c.Code); err != nil {
			return nil, err
		}
	}
	pushes, err := h.sim.pushes(ctx)
	if err != nil {
		return nil, err
	}
	for _, ps := range pushes {
		out.Pushes = append(out.Pushes, ps.checker())
	}
	return out, nil
}
