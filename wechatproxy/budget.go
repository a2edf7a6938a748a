package wechatproxy

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/wxtoken/wxtoken/api"
)

// budget bounds the bytes of request bodies held at once across all calls,
// so that many large bodies cannot exhaust memory. Safe for concurrent use.
type budget struct {
	limit int64
	used  atomic.Int64
}

// take reserves n bytes and reports whether they were free.
func (b *budget) take(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

// give returns n bytes reserved by take.
func (b *budget) give(n int64) { b.used.Add(-n) }

// readBody holds r's body, within MaxBody and the budget. It returns the
// body, the bytes of budget held (to give back when the call is done) and
// whether to go on; if not, it has answered.
func (p *Proxy) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int64, bool) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, 0, true
	}
	want := r.ContentLength
	if want < 0 {
		want = p.maxBody
	}
	if !p.bodies.take(want) {
		w.Header().Set("Retry-After", "1")
		api.WriteError(w, &api.Error{Status: http.StatusServiceUnavailable, Code: "proxy_busy",
			Message: "the proxy holds as many request bodies as it may at once: retry shortly"})
		return nil, 0, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, p.maxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		p.tooLarge(w)
		return nil, want, false
	case err != nil:
		api.WriteError(w, &api.Error{Status: http.StatusBadRequest, Code: "bad_request", Message: "cannot read the request body"})
		return nil, want, false
	}
	held := int64(cap(body))
	if held < want {
		p.bodies.give(want - held)
	} else {
		held = want
	}
	return body, held, true
}
