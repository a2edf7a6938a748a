package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/api"
	"github.com/wxtoken/wxtoken/internal/replicatest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// newAPI builds an API over a running replica's cache with clock now.
func newAPI(t testing.TB, env *replicatest.Env, now func() time.Time) *api.API {
	t.Helper()
	a, err := api.New(api.Config{
		Cache: env.Replica.Cache(), Store: tokenstore.New(nil, env.Config.Etcd.Prefix),
		Apps:   []api.App{{Name: replicatest.App, Kind: "classic", AppID: replicatest.AppID}},
		Margin: env.Config.Refresh.Margin, Overlap: env.Config.Refresh.Overlap, Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func serve(a http.Handler, method, target string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	a.ServeHTTP(w, httptest.NewRequest(method, target, nil))
	return w
}

// TestTokenFastPath checks that the token route served before the mux
// answers exactly what the mux's handler answers, and that paths the fast
// path does not take still reach the mux.
func TestTokenFastPath(t *testing.T) {
	env := replicatest.Start(t, replicatest.Options{})
	now := time.Now()
	a := newAPI(t, env, func() time.Time { return now })

	fast := serve(a, http.MethodGet, "/v1/apps/demo/token")
	// An escaped but equal path is routed by the mux to the same handler.
	slow := serve(a, http.MethodGet, "/v1/apps/de%6do/token")
	if fast.Code != http.StatusOK || slow.Code != http.StatusOK {
		t.Fatalf("status: fast %d, mux %d, want 200", fast.Code, slow.Code)
	}
	if got, want := fast.Body.String(), slow.Body.String(); got != want {
		t.Errorf("body:\n got %s\nwant %s", got, want)
	}
	for _, h := range []string{"Content-Type", "Cache-Control"} {
		if got, want := fast.Header().Get(h), slow.Header().Get(h); got != want {
			t.Errorf("%s: got %q, want %q", h, got, want)
		}
	}
	if got, want := fast.Header().Get("Content-Length"), "0"; got == want || got == "" {
		t.Errorf("Content-Length: got %q", got)
	}

	tests := []struct {
		name, method, target string
		code                 int
		errCode              string
	}{
		{"unknown app", http.MethodGet, "/v1/apps/nope/token", http.StatusNotFound, "unknown_app"},
		{"no app", http.MethodGet, "/v1/apps/token", http.StatusNotFound, "not_found"},
		{"two segments", http.MethodGet, "/v1/apps/a/b/token", http.StatusNotFound, "not_found"},
		{"wrong method", http.MethodPost, "/v1/apps/demo/token", http.StatusNotFound, "not_found"},
		{"head", http.MethodHead, "/v1/apps/demo/token", http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(a, tt.method, tt.target)
			if w.Code != tt.code {
				t.Fatalf("status: got %d, want %d (%s)", w.Code, tt.code, w.Body)
			}
			if tt.errCode != "" {
				var e api.Error
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code != tt.errCode {
					t.Errorf("error code: got %q (%v), want %q", e.Code, err, tt.errCode)
				}
			}
		})
	}
}

// TestTokenBodyPerSecond checks that the cached body follows expires_in
// as the clock moves, and stays right under concurrent reads.
func TestTokenBodyPerSecond(t *testing.T) {
	env := replicatest.Start(t, replicatest.Options{})
	var mu sync.Mutex
	// Past the planned refresh, keep-for counts down to refresh + overlap
	// (further away, it is capped at the overlap and stands still).
	now := env.Current(t, replicatest.App, "token").RefreshAt.Add(time.Second)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	a := newAPI(t, env, clock)
	read := func() api.TokenResponse {
		var tr api.TokenResponse
		w := serve(a, http.MethodGet, "/v1/apps/demo/token")
		if err := json.Unmarshal(w.Body.Bytes(), &tr); err != nil {
			t.Fatalf("body %q: %v", w.Body, err)
		}
		return tr
	}
	first := read()
	mu.Lock()
	now = now.Add(3 * time.Second)
	mu.Unlock()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if got, want := read().ExpiresIn, first.ExpiresIn-3; got != want {
					t.Errorf("expires_in after 3 s: got %d, want %d", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	want, err := a.Token("demo")
	if err != nil {
		t.Fatal(err)
	}
	got := read()
	if got.AccessToken != want.AccessToken || got.Seq != want.Seq || got.ExpiresIn != want.ExpiresIn || !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Errorf("answer: got %+v, want %+v", got, want)
	}
}
