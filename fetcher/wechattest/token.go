package wechattest

import (
	"encoding/base64"
	"time"
)

// token is one issued access token or ticket.
type token struct {
	value   string
	kind    string // KindClassic, KindStable, KindWeCom, KindTicket
	appID   string // appid or corpid
	issued  time.Time
	expires time.Time
	dead    time.Time // zero, or the instant it was invalidated before expiry
}

// kill invalidates k from t on, unless it ends earlier anyway.
func (k *token) kill(t time.Time) {
	if t.Before(k.end()) {
		k.dead = t
	}
}

// end is the first instant k is no longer valid.
func (k *token) end() time.Time {
	if !k.dead.IsZero() {
		return k.dead
	}
	return k.expires
}

// state is 0 if k is valid at t, 42001 if it expired by time, 40001 if it
// was invalidated (or not yet issued).
func (k *token) state(t time.Time) int {
	switch {
	case t.Before(k.issued):
		return 40001
	case !k.dead.IsZero() && !t.Before(k.dead):
		return 40001
	case !t.Before(k.expires):
		return 42001
	}
	return 0
}

// seriesKey names one line of succession: a classic or stable token of an
// app, a WeCom token of a (corpid, secret), a ticket of an (appid, type).
type seriesKey struct {
	name string // "classic", "stable", "wecom", "jsapi", "wx_card"
	id   string // appid; corpid + "\x00" + secret for WeCom
}

// series holds the newest token of a line and the one before it.
type series struct {
	cur, prev *token
}

func (s *Sim) seriesLocked(k seriesKey) *series {
	sr := s.series[k]
	if sr == nil {
		sr = &series{}
		s.series[k] = sr
	}
	return sr
}

// mintLocked issues a new token as the newest of sr. The caller decides
// beforehand what happens to the previous ones.
func (s *Sim) mintLocked(sr *series, newest seriesKey, kind, appID string, now time.Time) *token {
	var v string
	for {
		b := make([]byte, 108) // 144 characters of [A-Za-z0-9_-]
		for i := range b {
			b[i] = byte(s.rng.Uint32())
		}
		v = base64.RawURLEncoding.EncodeToString(b)
		if _, dup := s.tokens[v]; !dup {
			break
		}
	}
	k := &token{value: v, kind: kind, appID: appID, issued: now, expires: now.Add(s.cfg.TokenTTL)}
	s.tokens[v] = k
	sr.prev, sr.cur = sr.cur, k
	s.newest[newest] = v
	return k
}

// rotateLocked mints the next token of a line that behaves like the classic
// token: the previous one stays valid for Overlap more, older ones die now.
func (s *Sim) rotateLocked(sr *series, newest seriesKey, kind, appID string, now time.Time) *token {
	if sr.prev != nil {
		sr.prev.kill(now)
	}
	if sr.cur != nil {
		sr.cur.kill(now.Add(s.cfg.Overlap))
	}
	return s.mintLocked(sr, newest, kind, appID, now)
}

// Valid reports whether token (an access token or ticket issued by s) was
// valid at instant at. It is the oracle tests check clients against.
func (s *Sim) Valid(token string, at time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.tokens[token]
	return ok && k.state(at) == 0
}

// Current returns the newest token of kind (KindClassic, KindStable,
// KindWeCom; KindTicket or "jsapi" for the jsapi ticket, "wx_card" for the
// card ticket) issued to appID (the corpid for WeCom), or "" if none was.
// It says nothing about validity; see Valid.
func (s *Sim) Current(appID, kind string) string {
	if kind == KindTicket {
		kind = "jsapi"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newest[seriesKey{kind, appID}]
}
