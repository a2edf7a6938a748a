package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/api"
	"github.com/wxtoken/wxtoken/internal/replicatest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// TestTicketExposure: a ticket is served only by apps with ExposeTicket;
// the others answer 404 unknown_ticket while Ticket (the JS-SDK's way)
// still works inside the replica.
func TestTicketExposure(t *testing.T) {
	env := replicatest.Start(t, replicatest.Options{})
	for _, expose := range []bool{false, true} {
		a, err := api.New(api.Config{
			Cache: env.Replica.Cache(), Store: tokenstore.New(nil, env.Config.Etcd.Prefix),
			Apps:   []api.App{{Name: replicatest.App, Kind: "classic", AppID: replicatest.AppID, Tickets: []string{"jsapi"}, ExposeTicket: expose}},
			Margin: env.Config.Refresh.Margin, Overlap: env.Config.Refresh.Overlap,
		})
		if err != nil {
			t.Fatal(err)
		}
		w := serve(a, http.MethodGet, "/v1/apps/demo/ticket/jsapi")
		want := http.StatusNotFound
		if expose {
			want = http.StatusOK
		}
		if w.Code != want {
			t.Errorf("expose_ticket %v: got %d %s, want %d", expose, w.Code, w.Body, want)
		}
		if !expose && !strings.Contains(w.Body.String(), `"code":"unknown_ticket"`) {
			t.Errorf("expose_ticket false: body %s, want unknown_ticket", w.Body)
		}
		if _, err := a.Ticket(replicatest.App, "jsapi"); err != nil {
			t.Errorf("expose_ticket %v: Ticket: %v", expose, err)
		}
	}
}

// TestReportLimit: a report that would trigger a refresh asks ReportLimit
// first; a refusal is 429 rate_limited with Retry-After, before anything
// is written (the Store here has no etcd client: a write would fail). A
// report of a stale token triggers nothing and is not counted.
func TestReportLimit(t *testing.T) {
	env := replicatest.Start(t, replicatest.Options{})
	var asked atomic.Int64
	a, err := api.New(api.Config{
		Cache: env.Replica.Cache(), Store: tokenstore.New(nil, env.Config.Etcd.Prefix),
		Apps:   []api.App{{Name: replicatest.App, Kind: "classic", AppID: replicatest.AppID}},
		Margin: env.Config.Refresh.Margin, Overlap: env.Config.Refresh.Overlap,
		ReportLimit: func(ctx context.Context, cred string) (time.Duration, bool) {
			if cred != "demo/token" {
				t.Errorf("ReportLimit asked for %q, want demo/token", cred)
			}
			asked.Add(1)
			return 1500 * time.Millisecond, false
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cur := env.Current(t, replicatest.App, "token")
	post := func(token string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/v1/apps/demo/token/invalidate", strings.NewReader(`{"access_token":"`+token+`"}`))
		a.ServeHTTP(w, r)
		return w
	}
	if w := post("not-the-current-token"); w.Code != http.StatusOK || asked.Load() != 0 {
		t.Fatalf("report of a stale token: %d, asked %d times; want 200, 0", w.Code, asked.Load())
	}
	w := post(cur.Value)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("refused report: %d Retry-After %q %s; want 429, 2", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	var e api.Error
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code != "rate_limited" {
		t.Errorf("body %s: want code rate_limited", w.Body)
	}
	if _, err := a.Invalidate(context.Background(), replicatest.App, cur.Value); !isCode(err, "rate_limited") {
		t.Errorf("Invalidate: got %v, want rate_limited", err)
	}
	if got := asked.Load(); got != 2 {
		t.Errorf("ReportLimit asked %d times, want 2", got)
	}
}

func isCode(err error, code string) bool {
	var e *api.Error
	return errors.As(err, &e) && e.Code == code
}
