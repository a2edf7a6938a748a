package wechattest

import "net/http"

// wecomBody is the success answer of WeCom's gettoken.
type wecomBody struct {
	Errcode     int    `json:"errcode"`
	Errmsg      string `json:"errmsg"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
}

// handleWeCom serves GET /cgi-bin/gettoken (qyapi.weixin.qq.com). Each
// (corpid, secret) has its own token; repeated calls while it is valid
// return it unchanged with its remaining lifetime, and a new one is minted
// when there is none or it expired.
func (s *Sim) handleWeCom(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c := call{kind: KindWeCom, appID: q.Get("corpid"), caller: callerIP(r), start: s.now()}
	if s.injectFault(w, r, c) {
		return
	}
	s.mu.Lock()
	rp := s.wecomLocked(c, q.Get("corpsecret"))
	s.recordLocked(c, rp)
	s.mu.Unlock()
	writeReply(w, rp)
}

func (s *Sim) wecomLocked(c call, secret string) reply {
	now := s.now()
	secrets, known := s.corps[c.appID]
	switch {
	case c.appID == "":
		return s.weErrLocked(41002, "corpid missing", c.caller, now)
	case secret == "":
		return s.weErrLocked(41004, "corpsecret missing", c.caller, now)
	case !known:
		return s.weErrLocked(40013, "invalid corpid", c.caller, now)
	case !secrets[secret]:
		return s.weErrLocked(40001, "invalid credential", c.caller, now)
	case !s.allowedLocked(c.caller) || s.refusedLocked(c.appID, c.caller, now):
		return s.weErrLocked(60020, "not allow to access from your ip", c.caller, now)
	case !s.takeQuotaLocked(KindWeCom, c.appID, s.cfg.DailyQuota, now):
		return s.weErrLocked(45009, "api freq out of limit", c.caller, now)
	}
	sr := s.seriesLocked(seriesKey{KindWeCom, c.appID + "\x00" + secret})
	k, issued := sr.cur, false
	if k == nil || k.state(now) != 0 {
		k, issued = s.mintLocked(sr, seriesKey{KindWeCom, c.appID}, KindWeCom, c.appID, now), true
	}
	return reply{
		body:   wecomBody{0, "ok", k.value, expiresIn(k.end().Sub(now))},
		token:  k.value,
		issued: issued,
	}
}
