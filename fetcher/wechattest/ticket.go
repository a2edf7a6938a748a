package wechattest

import "net/http"

// ticketBody is the success answer of getticket.
type ticketBody struct {
	Errcode   int    `json:"errcode"`
	Errmsg    string `json:"errmsg"`
	Ticket    string `json:"ticket"`
	ExpiresIn int    `json:"expires_in"`
}

// handleTicket serves GET /cgi-bin/ticket/getticket?access_token=&type=.
// The access token must be a live classic or stable token. Each success
// mints a ticket for (appid, type); the previous one stays valid for
// Overlap more, as with classic tokens.
func (s *Sim) handleTicket(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tok := q.Get("access_token")
	s.mu.Lock()
	var owner string
	if k := s.tokens[tok]; k != nil && (k.kind == KindClassic || k.kind == KindStable) {
		owner = k.appID
	}
	s.mu.Unlock()
	c := call{kind: KindTicket, appID: owner, caller: callerIP(r), start: s.now()}
	if s.injectFault(w, r, c) {
		return
	}
	s.mu.Lock()
	rp := s.ticketLocked(c, tok, q.Get("type"))
	s.recordLocked(c, rp)
	s.mu.Unlock()
	writeReply(w, rp)
}

func (s *Sim) ticketLocked(c call, tok, typ string) reply {
	now := s.now()
	if tok == "" {
		return s.mpErrLocked(41001, "access_token missing", now)
	}
	if c.appID == "" {
		return s.mpErrLocked(40001, msgNotLatest, now)
	}
	switch s.tokens[tok].state(now) {
	case 40001:
		return s.mpErrLocked(40001, msgNotLatest, now)
	case 42001:
		return s.mpErrLocked(42001, msgExpired, now)
	}
	if typ != "jsapi" && typ != "wx_card" {
		return s.mpErrLocked(40097, "invalid args", now)
	}
	if !s.takeQuotaLocked(KindTicket, c.appID, s.cfg.DailyQuota, now) {
		return s.mpErrLocked(45009, "reach max api daily quota limit", now)
	}
	key := seriesKey{typ, c.appID}
	k := s.rotateLocked(s.seriesLocked(key), key, KindTicket, c.appID, now)
	return reply{
		body:   ticketBody{0, "ok", k.value, expiresIn(s.cfg.TokenTTL)},
		token:  k.value,
		issued: true,
	}
}
