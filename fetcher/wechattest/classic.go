package wechattest

import (
	"fmt"
	"net/http"
	"net/netip"
	"time"
)

// tokenBody is the success answer of /cgi-bin/token and stable_token:
// no errcode, as on WeChat.
type tokenBody struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
}

// handleClassic serves GET /cgi-bin/token. Every successful call mints a
// new token; the previous one stays valid for Overlap more.
func (s *Sim) handleClassic(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c := call{kind: KindClassic, appID: q.Get("appid"), caller: callerIP(r), start: s.now()}
	if s.injectFault(w, r, c) {
		return
	}
	s.mu.Lock()
	rp := s.classicLocked(c, q.Get("grant_type"), q.Get("secret"))
	s.recordLocked(c, rp)
	s.mu.Unlock()
	writeReply(w, rp)
}

func (s *Sim) classicLocked(c call, grantType, secret string) reply {
	now := s.now()
	if rp, ok := s.checkAppLocked(c, grantType, secret, now); !ok {
		return rp
	}
	if !s.takeQuotaLocked(KindClassic, c.appID, s.cfg.DailyQuota, now) {
		return s.mpErrLocked(45009, "reach max api daily quota limit", now)
	}
	key := seriesKey{KindClassic, c.appID}
	k := s.rotateLocked(s.seriesLocked(key), key, KindClassic, c.appID, now)
	return reply{
		body:   tokenBody{k.value, expiresIn(s.cfg.TokenTTL)},
		token:  k.value,
		issued: true,
	}
}

// checkAppLocked validates the credentials of an api.weixin.qq.com token
// call, in WeChat's order: missing fields, grant type, appid, secret,
// caller IP (the whitelist, and any Refusal of the appid).
func (s *Sim) checkAppLocked(c call, grantType, secret string, now time.Time) (reply, bool) {
	switch {
	case c.appID == "":
		return s.mpErrLocked(41002, "appid missing", now), false
	case secret == "":
		return s.mpErrLocked(41004, "appsecret missing", now), false
	case grantType != "client_credential":
		return s.mpErrLocked(40002, "invalid grant_type", now), false
	}
	want, ok := s.apps[c.appID]
	switch {
	case !ok:
		return s.mpErrLocked(40013, "invalid appid", now), false
	case secret != want:
		return s.mpErrLocked(40125, "invalid appsecret", now), false
	case !s.allowedLocked(c.caller) || s.refusedLocked(c.appID, c.caller, now):
		return s.mpErrLocked(40164, fmt.Sprintf("invalid ip %s ipv6 %s, not in whitelist", c.caller, ipv6Form(c.caller)), now), false
	}
	return reply{}, true
}

// ipv6Form writes an IPv4 address the way WeChat's error message does,
// as ::ffff:a.b.c.d.
func ipv6Form(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() {
		return ip
	}
	return "::ffff:" + ip
}
