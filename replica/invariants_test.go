package replica_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/api"
	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/refresher"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// Invariant 1, one caller: several replicas through many short token
// cycles and a leader change; the simulator's ledger shows fetches never
// overlap and stay within the expected count, and every read is valid.
func TestInvariantOneCaller(t *testing.T) {
	e := newEnv(t, 3, wechattest.Config{TokenTTL: 2 * time.Second, Overlap: time.Second})
	for i := range 3 {
		e.start(e.testConfig(fmt.Sprintf("r%d", i)), nil)
	}
	start := time.Now()
	cons := e.consume("shop")
	waitFor(t, 30*time.Second, "6 fetches", func() bool { return len(fetches(e.sim)) >= 6 })
	first := e.leader(10 * time.Second)
	first.stop()
	e.start(e.testConfig("r3"), nil)
	n := len(fetches(e.sim))
	waitFor(t, 30*time.Second, "6 more fetches", func() bool { return len(fetches(e.sim)) >= n+6 })
	elapsed := time.Since(start)
	cons.check(t, e.sim)

	fs := fetches(e.sim)
	checkNoOverlap(t, fs)
	// A 2 s token is refreshed once a second (half its life); allow one
	// extra for the first fetch and one per leader change.
	if max := int(elapsed/time.Second) + 3; len(fs) > max {
		t.Errorf("%d fetches in %v, want at most %d", len(fs), elapsed, max)
	}
	t.Logf("%d fetches in %v, no overlap", len(fs), elapsed)
}

// gate holds one replica's next WeChat call "on the wire": the call
// reaches the simulator only when released, and only if its deadline has
// not passed by then (a request whose deadline passed never arrives).
type gate struct {
	refresher.Fetcher
	armed    atomic.Bool
	held     chan struct{}
	release  chan struct{}
	minted   atomic.Bool
	holdOnce sync.Once
}

func newGate(f refresher.Fetcher) *gate {
	return &gate{Fetcher: f, held: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) Classic(ctx context.Context, appID, secret string) (fetcher.Token, error) {
	if !g.armed.CompareAndSwap(true, false) {
		return g.Fetcher.Classic(ctx, appID, secret)
	}
	g.holdOnce.Do(func() { close(g.held) })
	deadline, _ := ctx.Deadline()
	select {
	case <-g.release:
	case <-time.After(time.Until(deadline)):
		return fetcher.Token{}, context.DeadlineExceeded
	}
	if time.Now().After(deadline) {
		return fetcher.Token{}, context.DeadlineExceeded
	}
	// The request was sent before the leader lost its term: it arrives.
	tok, err := g.Fetcher.Classic(context.Background(), appID, secret)
	g.minted.Store(err == nil)
	return tok, err
}

// Invariant 2, write-ahead intent: the leader's scheduled call is in flight
// when it is cut off from etcd (or crashes). A new leader must not call
// WeChat before that call's window has closed, or the stale call could land
// after the new fetch and kill the new leader's token. With the intent, the
// successor waits the window out, so the stale call never lands after the
// new fetch and no replica ever serves a token the simulator had killed.
func TestInvariantWriteAheadIntent(t *testing.T) {
	for _, mode := range []string{"partition", "crash"} {
		t.Run(mode, func(t *testing.T) {
			const overlap = 3 * time.Second
			e := newEnv(t, 3, wechattest.Config{TokenTTL: 20 * time.Second, Overlap: overlap})
			gates := map[string]*gate{}
			var reps []*rep
			for i := range 3 {
				cfg := e.testConfig(fmt.Sprintf("r%d", i))
				// Refresh at 11 s of a 20 s life; a fetch may take 3 s.
				cfg.Refresh.Before, cfg.Refresh.FetchTimeout, cfg.Refresh.Margin = 9*time.Second, 3*time.Second, 500*time.Millisecond
				cfg.Refresh.Overlap = overlap
				r := e.start(cfg, func(f refresher.Fetcher) refresher.Fetcher {
					g := newGate(f)
					gates[cfg.Node] = g
					return g
				})
				reps = append(reps, r)
			}
			old := e.leader(10 * time.Second)
			var first api.TokenResponse
			waitFor(t, 10*time.Second, "the first token", func() bool {
				var code int
				first, code, _ = getToken(old.URL(), "shop")
				return code == http.StatusOK
			})
			if first.Seq != 1 {
				t.Fatalf("first token has seq %d", first.Seq)
			}
			g := gates[old.node]
			g.armed.Store(true) // the next call: the scheduled refresh
			cons := e.consume("shop")
			select {
			case <-g.held:
			case <-time.After(20 * time.Second):
				t.Fatal("the leader never started its scheduled fetch")
			}
			switch mode {
			case "partition":
				e.clus.Members[e.member(old)].Bridge().Blackhole()
				defer e.clus.Members[e.member(old)].Bridge().Unblackhole()
			case "crash":
				go old.crash()
			}
			var other *rep
			for _, r := range reps {
				if r != old {
					other = r
				}
			}
			// Release the stale call as soon as a successor has published:
			// without the intent, that is before the stale call's deadline.
			waitFor(t, 20*time.Second, "a new token from a new leader", func() bool {
				r, ok := other.Cache().Get("shop/token")
				return ok && r.Seq > first.Seq && r.Node != old.node
			})
			close(g.release)
			pub, _ := other.Cache().Get("shop/token")
			waitFor(t, 10*time.Second, "the overlap to pass", func() bool {
				return time.Since(pub.FetchedAt) > overlap+time.Second
			})
			cons.check(t, e.sim)
			if g.minted.Load() {
				t.Error("the stale leader's call reached WeChat after the new leader's fetch")
			}
			checkNoOverlap(t, fetches(e.sim))
			if !strings.Contains(e.logs.String(), "unfinished fetch found") {
				t.Error("the successor never saw the unfinished fetch")
			}
		})
	}
}

// Invariant 4, serve only valid: with etcd fully down, replicas serve the
// cached token until its expiry less the margin, report not ready, never
// serve it after, and recover when etcd returns.
func TestInvariantServeOnlyValid(t *testing.T) {
	// Tokens of 10 s: an eighth of the lifetime is above the 1 s margin,
	// so the margin is not scaled down.
	e := newEnv(t, 3, wechattest.Config{TokenTTL: 10 * time.Second, Overlap: 2 * time.Second})
	var reps []*rep
	for i := range 3 {
		cfg := e.testConfig(fmt.Sprintf("r%d", i))
		cfg.Refresh.Before = 3 * time.Second
		cfg.Refresh.Margin = time.Second
		reps = append(reps, e.start(cfg, nil))
	}
	r0 := reps[0]
	waitFor(t, 10*time.Second, "a token", func() bool { _, code, _ := getToken(r0.URL(), "shop"); return code == 200 })
	waitFor(t, 10*time.Second, "ready", func() bool { return status(r0.URL()+"/readyz") == 200 })
	cons := e.consume("shop")
	for _, m := range e.clus.Members {
		m.Stop(t)
	}
	down := time.Now()
	for _, r := range reps {
		waitFor(t, 10*time.Second, "not ready", func() bool { return status(r.URL()+"/readyz") == 503 })
	}
	// Cached tokens keep being served, then stop at expiry less margin.
	asked := time.Now()
	tok, code, _ := getToken(r0.URL(), "shop")
	if code != 200 {
		t.Fatalf("right after etcd went down: status %d, want the cached token", code)
	}
	// expires_in says how long it may be kept: until the earlier of its
	// expiry and its planned refresh plus the overlap, less the margin. A
	// replica that cannot see etcd serves it exactly that long.
	keep := asked.Add(time.Duration(tok.ExpiresIn) * time.Second)
	waitFor(t, 15*time.Second, "the cached token to stop being served", func() bool {
		_, code, _ := getToken(r0.URL(), "shop")
		return code == http.StatusServiceUnavailable
	})
	if now := time.Now(); now.Before(keep) {
		t.Errorf("stopped serving %v before the end of its expires_in", keep.Sub(now))
	}
	if now := time.Now(); now.After(tok.ExpiresAt.Add(-time.Second + 200*time.Millisecond)) {
		t.Errorf("served until %v, past expiry less margin", now)
	}
	t.Logf("etcd down for %v; the cached token was served until %v before its expiry", time.Since(down), tok.ExpiresAt.Sub(time.Now()))
	for _, m := range e.clus.Members {
		if err := m.Restart(t); err != nil {
			t.Fatal(err)
		}
	}
	e.clus.WaitLeader(t)
	for _, r := range reps {
		waitFor(t, 30*time.Second, "ready again", func() bool { return status(r.URL()+"/readyz") == 200 })
		waitFor(t, 30*time.Second, "a token again", func() bool { _, code, _ := getToken(r.URL(), "shop"); return code == 200 })
	}
	cons.check(t, e.sim)
}

func status(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// Invariant 5, compare-and-refresh: a thousand callers reporting the same
// dead token cause exactly one fetch; a report of an old token causes none
// and answers with the current one; a report of a token WeChat still
// accepts is rejected without a fetch.
func TestInvariantCompareAndRefresh(t *testing.T) {
	e := newEnv(t, 3, wechattest.Config{TokenTTL: time.Hour, Overlap: 500 * time.Millisecond})
	var reps []*rep
	for i := range 3 {
		reps = append(reps, e.start(e.testConfig(fmt.Sprintf("r%d", i)), nil))
	}
	var cur struct{ token string }
	waitFor(t, 10*time.Second, "a token on every replica", func() bool {
		for _, r := range reps {
			tr, code, _ := getToken(r.URL(), "shop")
			if code != 200 {
				return false
			}
			cur.token = tr.AccessToken
		}
		return true
	})
	// Someone else fetches a token for the app: ours dies after the overlap.
	killToken(t, e.sim)
	waitFor(t, 5*time.Second, "the token to die", func() bool { return !e.sim.Valid(cur.token, time.Now()) })
	before := len(fetches(e.sim))
	var wg sync.WaitGroup
	results := make(chan string, 1000)
	tr := &http.Transport{MaxIdleConnsPerHost: 100, MaxConnsPerHost: 100}
	defer tr.CloseIdleConnections()
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := reps[i%len(reps)]
			body := `{"access_token":"` + cur.token + `"}`
			resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Post(
				r.URL()+"/v1/apps/shop/token/invalidate", "application/json", strings.NewReader(body))
			if err != nil {
				results <- "error: " + err.Error()
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 {
				results <- fmt.Sprintf("status %d: %s", resp.StatusCode, b)
				return
			}
			results <- "ok"
		}()
	}
	wg.Wait()
	close(results)
	for res := range results {
		if res != "ok" {
			t.Fatalf("invalidate: %s", res)
		}
	}
	if got := len(fetches(e.sim)) - before; got != 1 {
		t.Fatalf("1000 reports of the same token caused %d fetches, want 1", got)
	}
	fresh, _, err := getToken(reps[0].URL(), "shop")
	if err != nil || fresh.AccessToken == cur.token {
		t.Fatalf("after the reports: %+v, %v; want a new token", fresh, err)
	}
	// A report of the old token is answered with the current one, no fetch.
	got, _, err := invalidate(reps[1].URL(), "shop", cur.token)
	if err != nil || got.AccessToken != fresh.AccessToken {
		t.Fatalf("report of the old token: %+v, %v; want the current token", got, err)
	}
	if n := len(fetches(e.sim)) - before; n != 1 {
		t.Fatalf("a report of an old token caused a fetch (%d in all)", n)
	}
	// A report of the current token while WeChat still accepts it.
	start := time.Now()
	got, _, err = invalidate(reps[2].URL(), "shop", fresh.AccessToken)
	if err != nil || got.AccessToken != fresh.AccessToken {
		t.Fatalf("report of a live token: %+v, %v; want the same token back", got, err)
	}
	if n := len(fetches(e.sim)) - before; n != 1 {
		t.Fatalf("a report of a live token caused a fetch (%d in all)", n)
	}
	t.Logf("a report of a live token was answered in %v", time.Since(start))
}

// killToken fetches a classic token for the app behind wxtoken's back, as
// a second system sharing the appid would: the served token dies after the
// simulator's overlap.
func killToken(t *testing.T, sim *wechattest.Server) {
	t.Helper()
	resp, err := http.Get(sim.URL + "/cgi-bin/token?grant_type=client_credential&appid=" + appID + "&secret=" + secret)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// Invariant 6, budget: a budget of N refuses fetch N+1 and says why in
// status and metrics; a permanent error is not retried in a loop.
func TestInvariantBudget(t *testing.T) {
	e := newEnv(t, 1, wechattest.Config{TokenTTL: 2 * time.Second, Overlap: time.Second})
	e.sim.AddApp("wxbad00000000001", "the-right-secret")
	cfg := e.testConfig("r0")
	cfg.Apps[0].DailyBudget = 3
	cfg.Apps = append(cfg.Apps, cfg.Apps[0])
	cfg.Apps[1].Name, cfg.Apps[1].AppID, cfg.Apps[1].Secret = "bad", "wxbad00000000001", cfg.Apps[0].Secret
	// WeChat is busy twice: the retries are WeChat calls and count.
	e.sim.SetFault(wechattest.Fault{Mode: wechattest.FaultBusy, Count: 2, AppID: appID})
	r := e.start(cfg, nil)
	waitFor(t, 30*time.Second, "the budget to be used up", func() bool {
		return r.Refresher().Metrics().Blocked("shop/token") == "budget"
	})
	if n := len(fetches(e.sim)); n != 3 {
		t.Errorf("WeChat calls with a budget of 3 (2 of them answered busy): %d, want 3", n)
	}
	snap, err := tokenstore.New(r.etcd, "/wxtoken").Load(context.Background(), "shop/token", tokenstore.Day(time.Now()))
	if err != nil || snap.Budget.Count != 3 {
		t.Errorf("budget counted in etcd: %+v (%v), want 3", snap.Budget, err)
	}
	var body []byte
	waitFor(t, 10*time.Second, "status to say the budget is used up", func() bool {
		resp, err := http.Get(r.URL() + "/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(body), `"blocked":"budget"`) && strings.Contains(string(body), "daily budget of 3 fetches used up")
	})
	resp, err := http.Get(r.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`wxtoken_credential_blocked{cred="shop/token",reason="budget"} 1`, `wxtoken_budget_refusals_total{cred="shop/token"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// The wrong secret of app "bad" was tried once and then left alone,
	// while the 2 s tokens of "shop" would have made many cycles.
	var bad int
	for _, f := range e.sim.Ledger() {
		if f.AppID == "wxbad00000000001" {
			bad++
		}
	}
	if bad != 1 || r.Refresher().Metrics().Blocked("bad/token") != "permanent" {
		t.Errorf("wrong secret: %d calls, blocked %q; want 1 call, blocked permanent", bad, r.Refresher().Metrics().Blocked("bad/token"))
	}
}

// Invariant 7, secrets stay put: after a run with reports and a leader
// change, the secret appears nowhere in etcd, logs, metrics or status.
func TestInvariantSecretsStayPut(t *testing.T) {
	e := newEnv(t, 1, wechattest.Config{TokenTTL: 2 * time.Second, Overlap: time.Second})
	e.sim.AddApp("wxwrong000000001", "another-secret")
	cfg := e.testConfig("r0")
	cfg.Apps = append(cfg.Apps, cfg.Apps[0])
	cfg.Apps[1].Name, cfg.Apps[1].AppID = "wrong", "wxwrong000000001" // our secret is wrong for it
	r0 := e.start(cfg, nil)
	waitFor(t, 20*time.Second, "3 fetches", func() bool { return len(fetches(e.sim)) >= 3 })
	r0.stop()
	cfg = e.testConfig("r1")
	cfg.Apps = append(cfg.Apps, cfg.Apps[0])
	cfg.Apps[1].Name, cfg.Apps[1].AppID = "wrong", "wxwrong000000001"
	r1 := e.start(cfg, nil)
	waitFor(t, 20*time.Second, "a token", func() bool { _, code, _ := getToken(r1.URL(), "shop"); return code == 200 })
	tok, _, _ := getToken(r1.URL(), "shop")
	_, _, _ = invalidate(r1.URL(), "shop", tok.AccessToken)

	var seen []string
	for _, path := range []string{"/metrics", "/v1/status", "/v1/apps/shop/token", "/v1/apps/wrong/token"} {
		resp, err := http.Get(r1.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen = append(seen, path+": "+string(b))
	}
	kvs, err := e.clus.Client(0).Get(context.Background(), "", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range kvs.Kvs {
		seen = append(seen, "etcd "+string(kv.Key)+"="+string(kv.Value))
	}
	seen = append(seen, "logs: "+e.logs.String())
	if !strings.Contains(e.logs.String(), "permanent WeChat error") {
		t.Error("the wrong secret's refusal was not logged: the test would not exercise error paths")
	}
	for _, s := range seen {
		if strings.Contains(s, secret) {
			t.Errorf("secret found in %.200s", s)
		}
	}
	t.Logf("checked %d etcd keys, logs of %d bytes, metrics, status and responses", len(kvs.Kvs), len(e.logs.String()))
}
