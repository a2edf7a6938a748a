package wechattest

import (
	"encoding/json"
	"net/http"
	"time"
)

// stableRequest is the JSON body of POST /cgi-bin/stable_token.
type stableRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

// handleStable serves POST /cgi-bin/stable_token.
//
// Normal mode returns the current stable token unchanged while more than
// Overlap of its life is left, and mints a new one inside that last window
// (the old one lives to its own expiry). Forced mode mints a new token and
// invalidates the previous ones at once, unless the previous forced refresh
// was less than ForceInterval ago; every forced call counts against
// ForceLimit, and every call against StableDailyQuota.
func (s *Sim) handleStable(w http.ResponseWriter, r *http.Request) {
	var req stableRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	badJSON := dec.Decode(&req) != nil
	c := call{kind: KindStable, appID: req.AppID, forced: req.ForceRefresh, caller: callerIP(r), start: s.now()}
	if s.injectFault(w, r, c) {
		return
	}
	s.mu.Lock()
	var rp reply
	if badJSON {
		rp = s.mpErrLocked(47001, "data format error", s.now())
	} else {
		rp = s.stableLocked(c, req)
	}
	s.recordLocked(c, rp)
	s.mu.Unlock()
	writeReply(w, rp)
}

func (s *Sim) stableLocked(c call, req stableRequest) reply {
	now := s.now()
	if rp, ok := s.checkAppLocked(c, req.GrantType, req.Secret, now); !ok {
		return rp
	}
	if !s.takeQuotaLocked(KindStable, c.appID, s.cfg.StableDailyQuota, now) {
		return s.mpErrLocked(45009, "reach max api daily quota limit", now)
	}
	key := seriesKey{KindStable, c.appID}
	sr := s.seriesLocked(key)
	cur := sr.cur
	live := cur != nil && cur.state(now) == 0
	if c.forced {
		if !s.takeQuotaLocked("force", c.appID, s.cfg.ForceLimit, now) {
			return s.mpErrLocked(45009, "reach max api daily quota limit", now)
		}
		last, ok := s.lastForced[c.appID]
		if live && ok && now.Sub(last) < s.cfg.ForceInterval {
			return stableReply(cur, false, now)
		}
		for _, old := range []*token{sr.prev, sr.cur} {
			if old != nil {
				old.kill(now)
			}
		}
		s.lastForced[c.appID] = now
		return stableReply(s.mintLocked(sr, key, KindStable, c.appID, now), true, now)
	}
	if live && cur.end().Sub(now) > s.cfg.Overlap {
		return stableReply(cur, false, now)
	}
	return stableReply(s.mintLocked(sr, key, KindStable, c.appID, now), true, now)
}

// stableReply answers with k and its remaining lifetime.
func stableReply(k *token, issued bool, now time.Time) reply {
	return reply{
		body:   tokenBody{k.value, expiresIn(k.end().Sub(now))},
		token:  k.value,
		issued: issued,
	}
}
