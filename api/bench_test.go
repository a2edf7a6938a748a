package api_test

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wxtoken/wxtoken/access"
	"github.com/wxtoken/wxtoken/api"
	"github.com/wxtoken/wxtoken/internal/replicatest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// discard is a ResponseWriter that keeps nothing but the status, so that
// the benchmark counts the handler's own work and allocations.
type discard struct {
	h      http.Header
	status int
	n      int
}

func (d *discard) Header() http.Header  { return d.h }
func (d *discard) WriteHeader(code int) { d.status = code }
func (d *discard) Write(b []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	d.n += len(b)
	return len(b), nil
}

// BenchmarkServeToken measures the hot route, GET /v1/apps/{app}/token,
// through the API's ServeHTTP, on a cache fed by a real replica.
func BenchmarkServeToken(b *testing.B) {
	env := replicatest.Start(b, replicatest.Options{})
	a, err := api.New(api.Config{
		Cache: env.Replica.Cache(), Store: tokenstore.New(nil, env.Config.Etcd.Prefix),
		Apps:   []api.App{{Name: replicatest.App, Kind: "classic", AppID: replicatest.AppID}},
		Margin: env.Config.Refresh.Margin, Overlap: env.Config.Refresh.Overlap,
	})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/v1/apps/"+replicatest.App+"/token", nil)
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.status = 0
		a.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

// BenchmarkServeTokenGuarded is BenchmarkServeToken behind the access
// Guard, with a bearer token checked against three clients: the cost of
// authentication on the hot route.
func BenchmarkServeTokenGuarded(b *testing.B) {
	env := replicatest.Start(b, replicatest.Options{})
	a, err := api.New(api.Config{
		Cache: env.Replica.Cache(), Store: tokenstore.New(nil, env.Config.Etcd.Prefix),
		Apps:   []api.App{{Name: replicatest.App, Kind: "classic", AppID: replicatest.AppID}},
		Margin: env.Config.Refresh.Margin, Overlap: env.Config.Refresh.Overlap,
	})
	if err != nil {
		b.Fatal(err)
	}
	const token = "bench-token-0123456789abcdef0123456789"
	var clients []access.Client
	for i, tok := range []string{"other-token-0123456789abcdef", "ops-token-0123456789abcdef", token} {
		sum := sha256.Sum256([]byte(tok))
		clients = append(clients, access.Client{Name: fmt.Sprint("c", i), TokenSHA256: sum[:], Apps: []string{"other", replicatest.App}, Allow: access.Read})
	}
	g, err := access.New(a, access.Config{Clients: clients})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/v1/apps/"+replicatest.App+"/token", nil)
	req.Host = "127.0.0.1:8417"
	req.Header.Set("Authorization", "Bearer "+token)
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.status = 0
		g.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}
