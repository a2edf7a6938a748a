package wechattest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// expiresIn reports d in whole seconds, rounded up, at least 1.
func expiresIn(d time.Duration) int {
	n := int((d + time.Second - 1) / time.Second)
	return max(n, 1)
}

// apiError is WeChat's error body.
type apiError struct {
	Errcode int    `json:"errcode"`
	Errmsg  string `json:"errmsg"`
}

// mpErrLocked builds an api.weixin.qq.com error, whose errmsg ends in a
// request id.
func (s *Sim) mpErrLocked(code int, msg string, now time.Time) reply {
	rid := fmt.Sprintf("%08x-%08x-%08x", uint32(now.Unix()), s.rng.Uint32(), s.rng.Uint32())
	return reply{errcode: code, body: apiError{code, msg + " rid: " + rid}}
}

// weErrLocked builds a qyapi.weixin.qq.com error, with WeCom's hint suffix.
func (s *Sim) weErrLocked(code int, msg, caller string, now time.Time) reply {
	msg = fmt.Sprintf("%s, hint: [%d_%08x], from ip: %s, more info at https://open.work.weixin.qq.com/devtool/query?e=%d",
		msg, now.Unix(), s.rng.Uint32(), caller, code)
	return reply{errcode: code, body: apiError{code, msg}}
}

// reply is the outcome of one API call.
type reply struct {
	status  int // 0 means 200
	body    any
	errcode int
	token   string
	issued  bool
	refresh string // authorizer refresh token returned
}

// writeReply sends rp the way WeChat does: HTTP 200 and JSON, errors
// included.
func writeReply(w http.ResponseWriter, rp reply) {
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	if rp.status != 0 {
		w.WriteHeader(rp.status)
	}
	_ = json.NewEncoder(w).Encode(rp.body)
}
