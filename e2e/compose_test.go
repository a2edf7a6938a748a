//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/chaos/checker"
)

// Timing of the run; the replicas' side is in testdata/wxtoken.yaml.
const (
	tokenTTL    = 60 * time.Second                          // SIM_TOKEN_TTL
	refreshMin  = tokenTTL - 20*time.Second - 4*time.Second // TTL - refresh.before - refresh.jitter
	electionTTL = 4 * time.Second
	readEvery   = 100 * time.Millisecond
	snapEvery   = 2 * time.Second
	overlap     = 30 * time.Second // SIM_OVERLAP and refresh.overlap
	margin      = 3 * time.Second  // refresh.margin
	steady      = 15 * time.Second // before the first fault
	// Each fault starts lead before the leader's next planned refresh, so
	// that the refresh has to happen under it, and lasts past it by after.
	lead      = 3 * time.Second
	cutAfter  = overlap + margin // past the cut-off replica's last safe instant
	etcdAfter = 15 * time.Second
	tail      = 45 * time.Second // after the last fault: at least one refresh
	// refreshLate bounds how late a planned refresh may happen under a
	// fault: a new leader must be elected first.
	refreshLate = failover + 5*time.Second
	// failover bounds the election of a new leader after the old one is
	// gone: its lease's TTL, plus keepalive and campaign slack.
	failover = electionTTL + 10*time.Second
	app      = "demo"
	appID    = "wxd0c0ffee00000001"
)

// minRun is about what the test needs before its teardown, with a cold
// build cache (measured: 4 to 6 minutes).
const minRun = 8 * time.Minute

// errRunDeadline ends the run early enough to tear the stack down before
// go test's -timeout.
var errRunDeadline = errors.New("the run's deadline (go test -timeout less the teardown) passed")

var (
	replicaPorts = map[string]string{"replica-1": "WXTOKEN_PORT_1", "replica-2": "WXTOKEN_PORT_2", "replica-3": "WXTOKEN_PORT_3"}
	replicas     = []string{"replica-1", "replica-2", "replica-3"}
	etcdMembers  = []string{"etcd-1", "etcd-2", "etcd-3"}
)

// TestCompose runs docker-compose.yml as a user would, kills the leader,
// cuts a replica off from etcd and stops an etcd member while consumers
// read and use tokens from every replica, and judges the history with
// chaos/checker.
func TestCompose(t *testing.T) {
	began := time.Now()
	compose := requireEngine(t)
	ctx := context.Background()
	if dl, ok := t.Deadline(); ok {
		// Leave time for the teardown even when the run overruns.
		end := dl.Add(-teardownTimeout - 30*time.Second)
		if left := time.Until(end); left < minRun {
			t.Fatalf("go test -timeout leaves %v for the run, and it needs about %v (images built, stack up, faults): use -timeout 30m",
				left.Round(time.Second), minRun)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadlineCause(ctx, end, errRunDeadline)
		defer cancel()
	}
	s := newStack(t, compose)
	logf := func(format string, args ...any) {
		t.Logf("[%6.1fs] %s", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
	logf("project %s, compose %v, output in %s", s.project, compose, s.out)

	if err := s.buildImages(ctx); err != nil {
		t.Fatal(err)
	}
	logf("images %s and %s built FROM scratch", wxtokenImage, etcdImage)
	if err := s.up(ctx); err != nil {
		t.Fatal(err)
	}
	all := append(append(append(append([]string{}, etcdMembers...), replicas...), fleetServices...), "wechat-sim", "prometheus")
	if err := s.waitHealthy(ctx, 4*time.Minute, all...); err != nil {
		t.Fatal(err)
	}
	logf("all %d containers healthy", len(all))

	base := func(replica string) string { return s.url(replicaPorts[replica]) }
	simURL := s.url("WECHAT_SIM_PORT")
	rec := newRecorder()

	// Every replica serves the same token, and WeChat accepts it.
	var first checker.Read
	err := waitFor(ctx, time.Minute, func() (bool, string) {
		var got []checker.Read
		for _, r := range replicas {
			rd := rec.read(ctx, r, base(r), app)
			if !rd.OK() {
				return false, fmt.Sprintf("%s: %d %s", r, rd.Status, rd.Code)
			}
			got = append(got, rd)
		}
		for _, rd := range got[1:] {
			if rd.Token != got[0].Token || rd.Seq != got[0].Seq {
				return false, fmt.Sprintf("%s serves seq %d, %s seq %d", got[0].Replica, got[0].Seq, rd.Replica, rd.Seq)
			}
		}
		first = got[0]
		return true, ""
	})
	if err != nil {
		t.Fatalf("every replica serves the token: %v", err)
	}
	if u := rec.use(ctx, simURL, first); u.Errcode != 0 {
		t.Fatalf("WeChat refused the token every replica serves: errcode %d", u.Errcode)
	}
	logf("every replica serves %s seq %d, and WeChat accepts it", app, first.Seq)
	// The fleet profile: a sidecar that reaches etcd only through etcd's
	// gRPC proxy serves the same token.
	if _, err := s.checkFleet(ctx, rec, base(replicas[0]), first.Seq, time.Minute); err != nil {
		t.Fatal(err)
	}
	logf("the sidecar behind etcd-proxy serves seq %d too", first.Seq)
	// ... to the client "e2e" only: without its token a read is refused.
	for _, r := range replicas {
		anon := recorder{hc: &http.Client{Timeout: 2 * time.Second}}
		if rd := anon.read(ctx, r, base(r), app); rd.Status != http.StatusUnauthorized || rd.Code != "unauthorized" {
			t.Fatalf("%s: a read without a client token: got %d %s, want 401 unauthorized", r, rd.Status, rd.Code)
		}
	}
	logf("a read without a client token is refused (401)")

	// The monitoring profile: Prometheus scrapes every replica, sees one
	// leader, and evaluates the alert rules.
	promLeader, err := s.checkMonitoring(ctx, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	logf("Prometheus scrapes all %d replicas, sees one leader (%s), evaluates every alert rule", len(replicas), promLeader)

	// Consumers on every replica, and etcd snapshots, for the whole run.
	runCtx, stopRun := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, r := range replicas {
		wg.Go(func() { rec.consume(runCtx, r, base(r), simURL, app, readEvery) })
	}
	wg.Go(func() { rec.snapshot(runCtx, s, app, etcdMembers, snapEvery) })
	stopConsumers := func() { stopRun(); wg.Wait() }
	defer stopConsumers()
	run := checker.Run{Seed: int64(os.Getpid()), Build: "docker-compose.yml (" + wxtokenImage + ", " + etcdImage + ")",
		Start: time.Now(), TokenTTL: checker.Duration(tokenTTL),
		Required: []string{"kill-leader", "disconnect-replica", "stop-etcd-member"}}
	hold(ctx, steady)

	sc := &scenario{t: t, ctx: ctx, s: s, rec: rec, logf: logf}
	sc.killLeader()
	sc.cutLeader()
	sc.stopEtcdLeader()

	hold(ctx, tail)
	stopConsumers()
	run.End = time.Now()
	if err := ctx.Err(); err != nil {
		t.Fatalf("run cut short: %v", err)
	}
	// After the refreshes and the faults (an etcd member stopped among
	// them), the sidecar behind the proxy serves the replicas' new token.
	if rd, err := s.checkFleet(ctx, rec, base(replicas[0]), first.Seq+1, time.Minute); err != nil {
		t.Error(err)
	} else {
		logf("after the faults, the sidecar behind etcd-proxy serves the replicas' token, seq %d", rd.Seq)
	}

	// Judge the history.
	h, err := rec.history(ctx, run, []checker.App{{Name: app, Kind: "classic", AppID: appID, RefreshEvery: checker.Duration(refreshMin)}}, simURL)
	if err != nil {
		t.Fatal(err)
	}
	// The stack's faults are cluster-wide and it has one app, so the per-app
	// availability is the overall one, which the checker holds to 99%.
	report := checker.Checker{MinAppAvailability: 0.99}.Check(h)
	writeJSON(t, filepath.Join(s.out, "history.json"), h)
	writeJSON(t, filepath.Join(s.out, "report.json"), report)
	table := report.Table()
	if err := os.WriteFile(filepath.Join(s.out, "report.txt"), []byte(table), 0o644); err != nil {
		t.Error(err)
	}
	t.Logf("checker report (history in %s):\n%s", s.out, table)
	if !report.OK() {
		t.Error("the checker found violations (see the report above)")
	}
	// What the checker counts but does not judge.
	if report.Uses.Refused > 0 || report.Uses.Other > 0 {
		t.Errorf("WeChat refused %d served tokens right after they were served (%d before their keep-until) and %d uses got no answer; want 0",
			report.Uses.Refused, report.Uses.RefusedEarly, report.Uses.Other)
	}
	for _, fs := range report.Fetches {
		if fs.Kind == "classic" && fs.Issued < fs.Minimum {
			t.Errorf("%s: %d tokens minted during the run, fewer than the %d its span needs", fs.App, fs.Issued, fs.Minimum)
		}
	}
	sc.checkRefreshes(h.Fetches)
	logf("done: %d reads, %d uses, %d fetches, %d etcd snapshots", len(h.Reads), len(h.Uses), len(h.Fetches), len(h.Records))
}
