package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// The token read is the hot route: every app host asks for its token. It
// is served before the mux, from a JSON body encoded once per record and
// per second of expires_in, with no allocation of its own.

const (
	tokenPrefix = "/v1/apps/"
	tokenSuffix = "/token"
)

// Header values of a token answer, shared by every answer: net/http copies
// them and never changes them in place.
var (
	jsonType = []string{"application/json"}
	noStore  = []string{"no-store"}
)

// tokenSlot is one app's token credential name and its last encoded
// answer.
type tokenSlot struct {
	cred string
	body atomic.Pointer[tokenBody]
}

// tokenBody is an encoded TokenResponse; immutable once stored.
type tokenBody struct {
	resp   TokenResponse
	json   []byte
	length []string // Content-Length
}

// tokenApp returns the app of a GET /v1/apps/{app}/token request whose
// path the mux would route, unchanged, to getToken.
func tokenApp(r *http.Request) (string, bool) {
	p := r.URL.Path
	if r.Method != http.MethodGet || r.URL.RawPath != "" || len(p) <= len(tokenPrefix)+len(tokenSuffix) ||
		!strings.HasPrefix(p, tokenPrefix) || !strings.HasSuffix(p, tokenSuffix) {
		return "", false
	}
	app := p[len(tokenPrefix) : len(p)-len(tokenSuffix)]
	if app == "." || app == ".." || strings.IndexByte(app, '/') >= 0 {
		return "", false
	}
	return app, true
}

// serveToken answers a token read like getToken, from the encoded body,
// and returns the answer's status.
func (a *API) serveToken(w http.ResponseWriter, app string) int {
	resp, err := a.Token(app)
	if err != nil {
		WriteError(w, err)
		return errorStatus(err)
	}
	b := a.tokenBody(resp)
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Cache-Control"] = noStore
	h["Content-Length"] = b.length
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.json)
	return http.StatusOK
}

// tokenBody returns resp encoded as writeJSON would, reusing the app's
// last encoding while resp is the same. Safe for concurrent use.
func (a *API) tokenBody(resp TokenResponse) *tokenBody {
	slot := a.tokens[resp.App]
	if slot != nil {
		if b := slot.body.Load(); b != nil && b.resp.Seq == resp.Seq && b.resp.ExpiresIn == resp.ExpiresIn &&
			b.resp.AccessToken == resp.AccessToken && b.resp.ExpiresAt.Equal(resp.ExpiresAt) && b.resp.Kind == resp.Kind {
			return b
		}
	}
	js, _ := json.Marshal(resp)
	js = append(js, '\n')
	b := &tokenBody{resp: resp, json: js, length: []string{strconv.Itoa(len(js))}}
	if slot != nil {
		slot.body.Store(b)
	}
	return b
}

// tokenCred is the name of app's token credential.
func (a *API) tokenCred(app string) string {
	if s := a.tokens[app]; s != nil {
		return s.cred
	}
	return tokenstore.CredName(app, "token")
}

// errorStatus is the status WriteError answers err with.
func errorStatus(err error) int {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Status
	}
	return http.StatusInternalServerError
}
