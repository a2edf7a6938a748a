package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/fetcher/wechattest"
)

// fakeReplica serves the token endpoints from a token it is told to hand
// out; it counts requests and can hold them until released.
type fakeReplica struct {
	srv *httptest.Server

	gets, invalidations atomic.Int64
	arrived             chan struct{} // one send per request, if not nil

	gate
	mu      sync.Mutex
	seq     uint64
	keep    int64
	reports []string
}

func newFakeReplica(t *testing.T) *fakeReplica {
	f := &fakeReplica{seq: 1, keep: 60}
	f.srv = newFakeReplicaServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func newFakeReplicaServer(f *fakeReplica) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/apps/{app}/token", func(w http.ResponseWriter, r *http.Request) {
		f.gets.Add(1)
		f.serve(w, r, "")
	})
	mux.HandleFunc("POST /v1/apps/{app}/token/invalidate", func(w http.ResponseWriter, r *http.Request) {
		f.invalidations.Add(1)
		var req struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		f.serve(w, r, req.AccessToken)
	})
	return httptest.NewServer(mux)
}

func tokenValue(seq uint64) string { return fmt.Sprintf("token-%d", seq) }

func (f *fakeReplica) serve(w http.ResponseWriter, r *http.Request, dead string) {
	if f.arrived != nil {
		f.arrived <- struct{}{}
	}
	if !f.pass(r) {
		return
	}
	app := r.PathValue("app")
	if app != "shop" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"code":"unknown_app","message":"unknown app %s"}`, app)
		return
	}
	f.mu.Lock()
	if dead != "" {
		f.reports = append(f.reports, dead)
		if dead == tokenValue(f.seq) {
			f.seq++
		}
	}
	tok := Token{App: app, Kind: "classic", AccessToken: tokenValue(f.seq), Seq: f.seq, ExpiresIn: f.keep}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(tok)
}

// gate holds a fake's requests while holdRequests is in force.
type gate struct {
	mu   sync.Mutex
	hold chan struct{} // requests wait for it to close, if not nil
}

// holdRequests makes requests wait until release is called.
func (g *gate) holdRequests() (release func()) {
	ch := make(chan struct{})
	g.mu.Lock()
	g.hold = ch
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		g.hold = nil
		g.mu.Unlock()
		close(ch)
	}
}

// pass waits while requests are held; false if r was given up meanwhile.
func (g *gate) pass(r *http.Request) bool {
	g.mu.Lock()
	hold := g.hold
	g.mu.Unlock()
	if hold == nil {
		return true
	}
	select {
	case <-hold:
		return true
	case <-r.Context().Done():
		return false
	}
}

func newClient(t *testing.T, base string, now func() time.Time) *Client {
	t.Helper()
	c, err := New(Config{BaseURL: base, Now: now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestNewBadBaseURL(t *testing.T) {
	for _, base := range []string{"127.0.0.1:8417", "ftp://host", "http://", "http://h/?q=1", "::"} {
		if _, err := New(Config{BaseURL: base}); err == nil {
			t.Errorf("New(BaseURL %q): got nil error, want one", base)
		}
	}
	c, err := New(Config{BaseURL: "http://127.0.0.1:8417/"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got, want := c.BaseURL(), "http://127.0.0.1:8417"; got != want {
		t.Errorf("BaseURL: got %q, want %q", got, want)
	}
}

func TestTokenCachedUntilExpiresIn(t *testing.T) {
	f := newFakeReplica(t)
	clock := wechattest.NewFakeClock(time.Unix(1_700_000_000, 0))
	c := newClient(t, f.srv.URL, clock.Now)
	ctx := context.Background()

	steps := []struct {
		advance  time.Duration
		wantGets int64
	}{
		{0, 1},                // first read asks
		{0, 1},                // fresh: cached
		{59 * time.Second, 1}, // still inside expires_in
		{time.Second, 2},      // expires_in reached: asks again
		{30 * time.Second, 2},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		tok, err := c.Token(ctx, "shop")
		if err != nil {
			t.Fatalf("step %d: Token: %v", i, err)
		}
		if tok.AccessToken != "token-1" || tok.App != "shop" {
			t.Errorf("step %d: Token: got %+v, want token-1 of shop", i, tok)
		}
		if got := f.gets.Load(); got != s.wantGets {
			t.Errorf("step %d: requests: got %d, want %d", i, got, s.wantGets)
		}
	}
}

func TestTokenZeroExpiresInIsNotCached(t *testing.T) {
	f := newFakeReplica(t)
	f.keep = 0
	c := newClient(t, f.srv.URL, nil)
	for range 3 {
		if _, err := c.Token(context.Background(), "shop"); err != nil {
			t.Fatalf("Token: %v", err)
		}
	}
	if got := f.gets.Load(); got != 3 {
		t.Errorf("requests: got %d, want 3", got)
	}
}

func TestTokenSingleFlight(t *testing.T) {
	f := newFakeReplica(t)
	f.arrived = make(chan struct{}, 100)
	release := f.holdRequests()
	c := newClient(t, f.srv.URL, nil)

	const callers = 50
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			tok, err := c.Token(context.Background(), "shop")
			if err == nil && tok.AccessToken != "token-1" {
				err = fmt.Errorf("got %q, want token-1", tok.AccessToken)
			}
			errs <- err
		})
	}
	<-f.arrived // one request is in flight, held
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Token: %v", err)
		}
	}
	if got := f.gets.Load(); got != 1 {
		t.Errorf("requests: got %d, want 1", got)
	}
}

func TestTokenWaiterHonoursItsContext(t *testing.T) {
	f := newFakeReplica(t)
	f.arrived = make(chan struct{}, 10)
	release := f.holdRequests()
	c := newClient(t, f.srv.URL, nil)

	first := make(chan error, 1)
	go func() {
		_, err := c.Token(context.Background(), "shop")
		first <- err
	}()
	<-f.arrived
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Token(ctx, "shop"); !errors.Is(err, context.Canceled) {
		t.Errorf("Token with a cancelled ctx: got %v, want context.Canceled", err)
	}
	release()
	if err := <-first; err != nil {
		t.Errorf("first Token: %v", err)
	}
	if got := f.gets.Load(); got != 1 {
		t.Errorf("requests: got %d, want 1", got)
	}
}

func TestTokenAbandonedFlightIsAskedAgain(t *testing.T) {
	f := newFakeReplica(t)
	f.arrived = make(chan struct{}, 10)
	release := f.holdRequests()
	c := newClient(t, f.srv.URL, nil)

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := c.Token(ctx, "shop")
		first <- err
	}()
	<-f.arrived
	second := make(chan error, 1)
	go func() {
		_, err := c.Token(context.Background(), "shop")
		second <- err
	}()
	cancel() // the caller running the request gives up
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("first Token: got %v, want context.Canceled", err)
	}
	// The waiter asks again rather than inherit the cancellation; its own
	// request may be held too, so release once it has arrived.
	<-f.arrived
	release()
	if err := <-second; err != nil {
		t.Errorf("second Token: got %v, want the token", err)
	}
}

func TestTokenErrors(t *testing.T) {
	f := newFakeReplica(t)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream connect error", http.StatusBadGateway)
	}))
	defer broken.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<html>not json</html>")
	}))
	defer garbage.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	tests := []struct {
		name        string
		base, app   string
		wantStatus  int
		wantCode    string
		wantUnreach bool
	}{
		{"unknown app", f.srv.URL, "nope", 404, CodeUnknownApp, false},
		{"not the replica's JSON", broken.URL, "shop", 502, "http_502", false},
		{"garbage answer", garbage.URL, "shop", 0, "", true},
		{"replica down", down.URL, "shop", 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, tt.base, nil)
			_, err := c.Token(context.Background(), tt.app)
			if err == nil {
				t.Fatal("Token: got nil error, want one")
			}
			var ae *Error
			switch {
			case tt.wantUnreach:
				if !errors.Is(err, ErrUnreachable) {
					t.Errorf("Token: got %v, want ErrUnreachable", err)
				}
			case !errors.As(err, &ae):
				t.Errorf("Token: got %v (%T), want *Error", err, err)
			case ae.Status != tt.wantStatus || ae.Code != tt.wantCode:
				t.Errorf("Token: got status %d code %q, want %d %q", ae.Status, ae.Code, tt.wantStatus, tt.wantCode)
			}
		})
	}
}

func TestInvalidateCompareAndRefresh(t *testing.T) {
	f := newFakeReplica(t)
	c := newClient(t, f.srv.URL, nil)
	ctx := context.Background()
	if _, err := c.Token(ctx, "shop"); err != nil {
		t.Fatalf("Token: %v", err)
	}
	// A report of a token the cache no longer holds: answered locally.
	tok, err := c.Invalidate(ctx, "shop", "token-0")
	if err != nil || tok.AccessToken != "token-1" {
		t.Fatalf("Invalidate(old): got %q, %v; want token-1", tok.AccessToken, err)
	}
	if got := f.invalidations.Load(); got != 0 {
		t.Errorf("invalidation requests after an old report: got %d, want 0", got)
	}
	tok, err = c.Invalidate(ctx, "shop", "token-1")
	if err != nil || tok.AccessToken != "token-2" {
		t.Fatalf("Invalidate(current): got %q, %v; want token-2", tok.AccessToken, err)
	}
	// The new token is cached.
	tok, err = c.Token(ctx, "shop")
	if err != nil || tok.AccessToken != "token-2" {
		t.Fatalf("Token after Invalidate: got %q, %v; want token-2", tok.AccessToken, err)
	}
	if got, want := f.gets.Load()+f.invalidations.Load(), int64(2); got != want {
		t.Errorf("requests: got %d, want %d", got, want)
	}
	if _, err := c.Invalidate(ctx, "shop", ""); err == nil {
		t.Errorf("Invalidate(empty): got nil error, want one")
	}
}

func TestInvalidateSingleFlight(t *testing.T) {
	f := newFakeReplica(t)
	c := newClient(t, f.srv.URL, nil)
	ctx := context.Background()
	if _, err := c.Token(ctx, "shop"); err != nil {
		t.Fatalf("Token: %v", err)
	}
	f.arrived = make(chan struct{}, 100)
	release := f.holdRequests()
	const callers = 40
	var wg sync.WaitGroup
	got := make(chan string, callers)
	for range callers {
		wg.Go(func() {
			tok, err := c.Invalidate(ctx, "shop", "token-1")
			if err != nil {
				t.Errorf("Invalidate: %v", err)
			}
			got <- tok.AccessToken
		})
	}
	<-f.arrived
	release()
	wg.Wait()
	close(got)
	for tok := range got {
		if tok != "token-2" {
			t.Errorf("Invalidate: got %q, want token-2", tok)
		}
	}
	if n := f.invalidations.Load(); n != 1 {
		t.Errorf("invalidation requests: got %d, want 1", n)
	}
}

func TestTokenStaleTimer(t *testing.T) {
	f := newFakeReplica(t)
	f.keep = 90
	c := newClient(t, f.srv.URL, nil)
	var (
		mu     sync.Mutex
		armed  []time.Duration
		expire []func()
	)
	c.afterFunc = func(d time.Duration, fn func()) *time.Timer {
		mu.Lock()
		defer mu.Unlock()
		armed, expire = append(armed, d), append(expire, fn)
		return time.NewTimer(time.Hour)
	}
	ctx := context.Background()
	for range 3 {
		if _, err := c.Token(ctx, "shop"); err != nil {
			t.Fatalf("Token: %v", err)
		}
	}
	if got := f.gets.Load(); got != 1 {
		t.Fatalf("requests while fresh: got %d, want 1", got)
	}
	if len(armed) != 1 || armed[0] > 90*time.Second || armed[0] < 89*time.Second {
		t.Fatalf("timers armed: got %v, want one of about 90s", armed)
	}
	expire[0]() // expires_in has passed
	if _, err := c.Token(ctx, "shop"); err != nil {
		t.Fatalf("Token: %v", err)
	}
	if got := f.gets.Load(); got != 2 {
		t.Errorf("requests once stale: got %d, want 2", got)
	}
}
