package platformrecover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// Defaults of Config.
const (
	// DefaultRounds is how many walks Recover makes at most: the first,
	// and one more for each round in which another writer changed a
	// refresh token Recover meant to restore.
	DefaultRounds = 3
	// MinComponentLife is how long the stored component token must still
	// live for Recover to use it.
	MinComponentLife = time.Minute
)

// ErrNoComponentToken is returned when etcd holds no component token that
// Recover may use: none yet, or one about to expire. A leader fetches it
// (it needs a component_verify_ticket pushed to the event URL).
var ErrNoComponentToken = errors.New("no usable component token in etcd (a leader fetches it once a component_verify_ticket has been pushed)")

// Store is what Recover reads and writes in etcd; *tokenstore.Store
// implements it.
type Store interface {
	Record(ctx context.Context, cred string) (tokenstore.Record, bool, error)
	RefreshStates(ctx context.Context, platform string) (map[string]tokenstore.RefreshState, error)
	RefreshToken(ctx context.Context, cred string) (tokenstore.RefreshToken, bool, error)
	PutRefreshToken(ctx context.Context, f tokenstore.Fence, cred string, t tokenstore.RefreshToken, rev int64) error
	AuthorizerStates(ctx context.Context, platform string) ([]tokenstore.AuthorizerState, error)
	PutAuthorizerState(ctx context.Context, platform string, st tokenstore.AuthorizerState) (bool, error)
}

var _ Store = (*tokenstore.Store)(nil)

// Config configures Recover.
type Config struct {
	Platform       string // the platform's name
	ComponentAppID string
	Store          Store
	Lister         Lister
	// Node is recorded with the authorizer states Recover writes.
	Node string
	// Rounds bounds the walks; default DefaultRounds.
	Rounds int
	Now    func() time.Time
	Logger *slog.Logger
}

// Counts is what Recover did.
type Counts struct {
	Listed   int // accounts WeChat listed as authorized
	Restored int // refresh tokens written: none stored, rejected (61023) or unreadable
	Fine     int // a readable, not rejected refresh token was stored: left untouched
	// Skipped is every listed account neither restored nor fine:
	// NoRefreshToken + Unauthorized + Changing + Invalid.
	Skipped        int
	NoRefreshToken int // listed without a refresh token (its code was never exchanged)
	Unauthorized   int // etcd's newest event unauthorized it after the listed authorization
	Changing       int // another writer changed its refresh token in every round
	Invalid        int // an appid that cannot name a credential
	States         int // authorized states written (none was stored)
}

// Recover walks api_get_authorizer_list with the component token stored
// in etcd and, for every listed account with a refresh token, writes that
// token if the stored one is missing, rejected (61023) or unreadable, and
// an authorized state (At: the listed auth_time) if etcd has none. A
// stored token that is readable and not rejected is never touched.
//
// Every write is a compare-and-swap on the mod revision read before the
// list call that returned the token, so that a refresh token a leader
// publishes meanwhile (newer than the listed one, perhaps) is never
// overwritten: such an account is read again and judged by another walk
// (at most Rounds walks). An account etcd says unauthorized after its
// listed auth_time is skipped. It blocks for the walks and stops when ctx
// ends; it logs each restored account, never a token.
func Recover(ctx context.Context, cfg Config) (Counts, error) {
	if cfg.Store == nil || cfg.Lister == nil || cfg.Platform == "" || cfg.ComponentAppID == "" {
		return Counts{}, errors.New("platformrecover: Platform, ComponentAppID, Store and Lister are required")
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = DefaultRounds
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &run{cfg: cfg, log: cfg.Logger.With("component", "platform-recover", "platform", cfg.Platform)}
	return r.recover(ctx)
}

// run is one Recover.
type run struct {
	cfg     Config
	log     *slog.Logger
	counts  Counts
	refresh map[string]tokenstore.RefreshState // as read before the current walk
	states  map[string]tokenstore.AuthorizerState
}

func (r *run) recover(ctx context.Context) (Counts, error) {
	comp, err := r.componentToken(ctx)
	if err != nil {
		return Counts{}, err
	}
	// Read before the first list call: see Recover.
	if r.refresh, err = r.cfg.Store.RefreshStates(ctx, r.cfg.Platform); err != nil {
		return Counts{}, err
	}
	states, err := r.cfg.Store.AuthorizerStates(ctx, r.cfg.Platform)
	if err != nil {
		return Counts{}, err
	}
	r.states = make(map[string]tokenstore.AuthorizerState, len(states))
	for _, st := range states {
		r.states[st.AppID] = st
	}
	var pending map[string]bool // nil: every account (the first walk)
	for round := 1; ; round++ {
		changed, judged := map[string]bool{}, map[string]bool{}
		err := Walk(ctx, r.cfg.Lister, comp.Value, r.cfg.ComponentAppID, func(en fetcher.AuthorizerEntry) (bool, error) {
			if judged[en.AppID] || (pending != nil && !pending[en.AppID]) {
				return false, nil // listed twice (the pages shifted), or not to judge again
			}
			judged[en.AppID] = true
			if pending == nil {
				r.counts.Listed++
			}
			again, err := r.judge(ctx, en)
			if again {
				changed[en.AppID] = true
			}
			return pending != nil && len(judged) == len(pending), err
		})
		if err != nil {
			if fetcher.ClassOf(err) == fetcher.TokenDead {
				return r.counts, fmt.Errorf("WeChat refused the component token of seq %d (a leader replaces it; run again then): %w", comp.Seq, err)
			}
			return r.counts, err
		}
		if len(changed) == 0 {
			break
		}
		if round == r.cfg.Rounds {
			r.counts.Changing = len(changed)
			break
		}
		// Read again before the next list call.
		for id := range changed {
			if err := r.reread(ctx, id); err != nil {
				return r.counts, err
			}
		}
		pending = changed
	}
	c := &r.counts
	c.Skipped = c.NoRefreshToken + c.Unauthorized + c.Changing + c.Invalid
	return *c, nil
}

// componentToken is the platform's component token as stored in etcd.
func (r *run) componentToken(ctx context.Context) (tokenstore.Record, error) {
	rec, ok, err := r.cfg.Store.Record(ctx, tokenstore.ComponentCred(r.cfg.Platform))
	switch {
	case err != nil:
		return tokenstore.Record{}, fmt.Errorf("read the component token: %w", err)
	case !ok || rec.Revoked || !rec.Usable(r.cfg.Now(), MinComponentLife):
		return tokenstore.Record{}, ErrNoComponentToken
	}
	return rec, nil
}

// judge restores en's refresh token if need be, and its state. again
// reports that another writer changed the token since it was read: judge
// it on the next walk.
func (r *run) judge(ctx context.Context, en fetcher.AuthorizerEntry) (again bool, err error) {
	st, hasState := r.states[en.AppID]
	switch {
	case !tokenstore.ValidAuthorizer(en.AppID):
		r.counts.Invalid++
		return false, nil
	case en.RefreshToken == "":
		r.counts.NoRefreshToken++
		return false, nil
	case hasState && st.State == tokenstore.AuthorizerUnauthorized && !en.AuthTime.After(st.At):
		r.counts.Unauthorized++
		return false, nil
	}
	cred := tokenstore.AuthorizerCred(r.cfg.Platform, en.AppID)
	cur, stored := r.refresh[en.AppID]
	why := ""
	switch {
	case !stored:
		why = "missing"
	case cur.Unreadable:
		why = "unreadable"
	case cur.Rejected:
		why = "rejected"
	}
	if why == "" {
		r.counts.Fine++
	} else {
		t := tokenstore.RefreshToken{Value: en.RefreshToken, Source: tokenstore.RefreshFromRecover, UpdatedAt: r.cfg.Now()}
		switch err := r.cfg.Store.PutRefreshToken(ctx, nil, cred, t, cur.Rev); {
		case errors.Is(err, tokenstore.ErrFenced):
			r.log.Info("refresh token changed since it was read: judged again", "authorizer", en.AppID)
			return true, nil
		case err != nil:
			return false, err
		}
		r.counts.Restored++
		r.log.Info("restored refresh token", "authorizer", en.AppID, "was", why)
	}
	return false, r.state(ctx, en, st, hasState)
}

// state records en as authorized at its auth_time if etcd has no state
// for it, or an unauthorized one older than that (a newer event always
// wins: PutAuthorizerState compares).
func (r *run) state(ctx context.Context, en fetcher.AuthorizerEntry, st tokenstore.AuthorizerState, has bool) error {
	if en.AuthTime.IsZero() || (has && !(st.State == tokenstore.AuthorizerUnauthorized && en.AuthTime.After(st.At))) {
		return nil
	}
	ns := tokenstore.AuthorizerState{AppID: en.AppID, State: tokenstore.AuthorizerAuthorized, At: en.AuthTime, Node: r.cfg.Node}
	stored, err := r.cfg.Store.PutAuthorizerState(ctx, r.cfg.Platform, ns)
	if err != nil {
		return err
	}
	if stored {
		r.counts.States++
		r.states[en.AppID] = ns
	}
	return nil
}

// reread reads one account's stored refresh token again.
func (r *run) reread(ctx context.Context, appID string) error {
	t, ok, err := r.cfg.Store.RefreshToken(ctx, tokenstore.AuthorizerCred(r.cfg.Platform, appID))
	switch {
	case errors.Is(err, tokenstore.ErrRecordUnreadable):
		r.refresh[appID] = tokenstore.RefreshState{Rev: t.Rev, Unreadable: true}
	case err != nil:
		return err
	case !ok:
		delete(r.refresh, appID)
	default:
		r.refresh[appID] = tokenstore.RefreshState{Rev: t.Rev, Rejected: t.Rejected}
	}
	return nil
}
