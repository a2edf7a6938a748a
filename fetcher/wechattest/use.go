package wechattest

import "net/http"

// Error messages of calls that use a token.
const (
	msgNotLatest = "invalid credential, access_token is invalid or not latest"
	msgExpired   = "access_token expired"
)

// callbackIPs is what getcallbackip answers: a sample of WeChat's ranges.
var callbackIPs = []string{
	"101.226.103.0/25", "101.226.62.0/26", "101.226.233.128/25",
	"58.247.206.128/25", "182.254.86.128/25", "103.7.30.64/26",
	"58.251.80.32/27", "183.3.234.32/27", "121.51.130.64/27",
}

// handleCallbackIP serves GET /cgi-bin/getcallbackip?access_token=, a cheap
// call that "uses" a token: any live classic, stable or WeCom token works,
// a dead one gets 40001 and an expired one 42001. It is counted in Uses,
// not in the ledger, and never faulted; a UseLatency holds it first, and
// the token is judged when the hold ends.
func (s *Sim) handleCallbackIP(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("access_token")
	if d, cleared, ok := s.takeUseLatency(callerIP(r)); ok {
		s.wait(r.Context(), d, cleared)
	}
	s.mu.Lock()
	now := s.now()
	var rp reply
	k := s.tokens[tok]
	switch {
	case tok == "":
		rp = s.mpErrLocked(41001, "access_token missing", now)
	case k == nil || k.kind == KindTicket:
		s.usesDead++
		rp = s.mpErrLocked(40001, msgNotLatest, now)
	case k.state(now) == 42001:
		s.usesDead++
		rp = s.mpErrLocked(42001, msgExpired, now)
	case k.state(now) != 0:
		s.usesDead++
		rp = s.mpErrLocked(40001, msgNotLatest, now)
	default:
		s.usesOK++
		rp = reply{body: map[string][]string{"ip_list": callbackIPs}}
	}
	s.mu.Unlock()
	writeReply(w, rp)
}
