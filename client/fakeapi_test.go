package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fakeAPI serves the token routes of apps, platforms' component tokens
// and authorizers, with the answers and error codes of the replica's
// handlers (api, platformapi), written here field by field rather than
// from Token's tags. Each credential's token is "<cred>#<seq>", from seq 1;
// a report of the current one moves it to the next seq. It counts
// requests per credential and can hold them until released.
type fakeAPI struct {
	srv     *httptest.Server
	arrived chan string // the credential of each request, if not nil
	gate

	mu        sync.Mutex
	keep      int64
	seqs      map[string]uint64
	gets      map[string]int
	posts     map[string]int
	revoked   map[string]bool // authorizer credentials
	platforms map[string]bool
	seen      []string // the path values of each request, "name|appid"
	bodies    []string // the bodies of the preauth requests
}

func newFakeAPI(t testing.TB, platforms ...string) *fakeAPI {
	f := &fakeAPI{keep: 60, seqs: map[string]uint64{}, gets: map[string]int{}, posts: map[string]int{},
		revoked: map[string]bool{}, platforms: map[string]bool{}}
	for _, p := range platforms {
		f.platforms[p] = true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/apps/{app}/token", f.token)
	mux.HandleFunc("POST /v1/apps/{app}/token/invalidate", f.token)
	mux.HandleFunc("GET /v1/platforms/{name}/token", f.token)
	mux.HandleFunc("POST /v1/platforms/{name}/token/invalidate", f.token)
	mux.HandleFunc("GET /v1/platforms/{name}/authorizers/{appid}/token", f.token)
	mux.HandleFunc("POST /v1/platforms/{name}/authorizers/{appid}/token/invalidate", f.token)
	mux.HandleFunc("GET /v1/platforms/{name}/authorizers", f.authorizers)
	mux.HandleFunc("POST /v1/platforms/{name}/preauth", f.preauth)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func fakeValue(cred string, seq uint64) string { return cred + "#" + strconv.FormatUint(seq, 10) }

// fakeError writes the replica's JSON error.
func fakeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg})
}

func fakeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// token serves every token route: app/<app>, component/<name> or
// authorizer/<name>/<appid>.
func (f *fakeAPI) token(w http.ResponseWriter, r *http.Request) {
	name, appid, app := r.PathValue("name"), r.PathValue("appid"), r.PathValue("app")
	cred, kind := "app/"+app, "classic"
	switch {
	case appid != "":
		cred, kind = "authorizer/"+name+"/"+appid, "authorizer"
	case name != "":
		cred, kind = "component/"+name, "component"
	}
	if f.arrived != nil {
		f.arrived <- cred
	}
	f.mu.Lock()
	f.seen = append(f.seen, name+"|"+appid)
	if r.Method == http.MethodPost {
		f.posts[cred]++
	} else {
		f.gets[cred]++
	}
	f.mu.Unlock()
	if !f.pass(r) {
		return
	}
	var report struct {
		AccessToken string `json:"access_token"`
	}
	if r.Method == http.MethodPost && (json.NewDecoder(r.Body).Decode(&report) != nil || report.AccessToken == "") {
		fakeError(w, http.StatusBadRequest, "bad_request", `body must be JSON {"access_token":"..."}`)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case name != "" && !f.platforms[name]:
		fakeError(w, http.StatusNotFound, "unknown_platform", "no platform of that name is configured")
		return
	case f.revoked[cred]:
		fakeError(w, http.StatusNotFound, "unauthorized_authorizer", "the account has cancelled its authorization of this platform")
		return
	}
	if f.seqs[cred] == 0 {
		f.seqs[cred] = 1
	}
	if report.AccessToken != "" && report.AccessToken == fakeValue(cred, f.seqs[cred]) {
		f.seqs[cred]++
	}
	seq := f.seqs[cred]
	ans := map[string]any{"app": app + name, "kind": kind, "access_token": fakeValue(cred, seq),
		"expires_at": time.Now().Add(2 * time.Hour).UTC(), "expires_in": f.keep, "seq": seq}
	if appid != "" {
		ans["authorizer_appid"] = appid
	}
	fakeJSON(w, ans)
}

// requests returns the GETs and POSTs of cred so far.
func (f *fakeAPI) requests(cred string) (gets, posts int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets[cred], f.posts[cred]
}

// seenSoFar returns the path values and the preauth bodies of the
// requests so far.
func (f *fakeAPI) seenSoFar() (seen, bodies []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seen), slices.Clone(f.bodies)
}

// fakeAuthorizers are the authorizers of every platform of a fakeAPI, in
// appid order.
var fakeAuthorizers = []string{"wxauth01", "wxauth02", "wxauth03"}

// authorizers serves the list as platformapi does: ?limit 1 to 10000,
// ?after an appid; wxauth02 is unauthorized, the others have scopes.
func (f *fakeAPI) authorizers(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	f.mu.Lock()
	f.seen = append(f.seen, name+"|?"+r.URL.RawQuery)
	known := f.platforms[name]
	f.mu.Unlock()
	if !known {
		fakeError(w, http.StatusNotFound, "unknown_platform", "no platform of that name is configured")
		return
	}
	limit := 10000
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			fakeError(w, http.StatusBadRequest, "bad_request", "limit must be 1 to 10000")
			return
		}
		limit = n
	}
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	page := []map[string]any{}
	next := ""
	for i, id := range fakeAuthorizers {
		if id <= r.URL.Query().Get("after") {
			continue
		}
		if len(page) == limit {
			next = page[len(page)-1]["appid"].(string)
			break
		}
		it := map[string]any{"appid": id, "state": "authorized", "state_at": at.Add(time.Duration(i) * time.Minute),
			"authorized_at": at.Add(time.Duration(i)*time.Minute + time.Second), "scopes": []int{1, 15}}
		if id == "wxauth02" {
			it = map[string]any{"appid": id, "state": "unauthorized", "state_at": at, "scopes": []int{}}
		}
		page = append(page, it)
	}
	ans := map[string]any{"platform": name, "authorizers": page}
	if next != "" {
		ans["next_after"] = next
	}
	fakeJSON(w, ans)
}

// preauth serves a pre-auth code as platformapi does, checking only that
// the body is {"redirect_uri": an https URL}.
func (f *fakeAPI) preauth(w http.ResponseWriter, r *http.Request) {
	var req map[string]any
	err := json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	f.bodies = append(f.bodies, fmt.Sprint(req))
	f.mu.Unlock()
	uri, _ := req["redirect_uri"].(string)
	if err != nil || len(req) != 1 || len(uri) < 8 || uri[:8] != "https://" {
		fakeError(w, http.StatusBadRequest, "bad_request", "redirect_uri must be an absolute https:// (or http://) URL")
		return
	}
	fakeJSON(w, map[string]any{"pre_auth_code": "preauthcode@@@secret", "expires_in": 1800,
		"auth_url": "https://mp.weixin.qq.com/cgi-bin/componentloginpage?component_appid=wxcomp&pre_auth_code=preauthcode%40%40%40secret"})
}
