package replica_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/api"
	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/internal/testlog"
	"github.com/wxtoken/wxtoken/replica"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// runReplica runs a replica until the test ends, logging into logs.
func runReplica(t *testing.T, cfg *config.Config, logs *testlog.Buffer) *replica.Replica {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%s: Validate: %v", cfg.Node, err)
	}
	r, err := replica.New(replica.Options{Config: cfg,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", cfg.Node)})
	if err != nil {
		t.Fatalf("%s: New: %v", cfg.Node, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; r.Close() })
	return r
}

// readStatus reads a replica's status.
func readStatus(url string) (api.Status, error) {
	var st api.Status
	resp, err := http.Get(url + "/v1/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status %d", resp.StatusCode)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// TestLeastPrivilegeRoles runs a candidate with the wxtoken-candidate role
// and a serve-only replica with the wxtoken-sidecar role on etcd with auth
// enabled: the sidecar serves tokens, takes reports and announces itself
// without ever being refused, and cannot write a record, an intent or
// anything else of the leader's.
func TestLeastPrivilegeRoles(t *testing.T) {
	etcd := startSecureEtcd(t, nil, true)
	if err := tokenstore.ApplyRoles(tctx(t), etcd.root, tokenstore.Roles("/wxtoken")); err != nil {
		t.Fatal(err)
	}
	// Applying twice changes nothing and fails nothing.
	if err := tokenstore.ApplyRoles(tctx(t), etcd.root, tokenstore.Roles("/wxtoken")); err != nil {
		t.Fatalf("ApplyRoles again: %v", err)
	}
	etcd.addUser(t, "cand", "cand-pw", tokenstore.RoleCandidate)
	etcd.addUser(t, "side", "side-pw", tokenstore.RoleSidecar)
	sim := wechattest.NewServer(wechattest.Config{})
	t.Cleanup(sim.Close)
	sim.AddApp(appID, secret)
	logs := &testlog.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replica logs:\n%s", logs.String())
		}
	})
	conf := func(node, user, password string, candidate bool) *config.Config {
		cfg := bareConfig(node, etcd.URL)
		cfg.Etcd.Username, cfg.Etcd.Password = user, config.NewSecret(password)
		cfg.Election.Candidate = candidate
		cfg.Refresh = config.Refresh{Before: 8 * time.Second, Jitter: time.Second, FetchTimeout: 2 * time.Second, Concurrency: 4,
			Margin: time.Second, Overlap: 12 * time.Second}
		cfg.WeChat = config.WeChat{BaseURL: sim.URL, WeComBaseURL: sim.URL}
		cfg.Apps = []config.App{{Name: "shop", Kind: config.KindClassic, AppID: appID,
			Secret: config.NewSecret(secret), DailyBudget: 1000, Tickets: []string{config.TicketJSAPI}}}
		return cfg
	}
	cand := runReplica(t, conf("cand", "cand", "cand-pw", true), logs)
	side := runReplica(t, conf("side", "side", "side-pw", false), logs)

	// The sidecar serves what the candidate published.
	var tok string
	waitFor(t, 30*time.Second, "the sidecar serves the token", func() bool {
		got, code, _ := getToken(side.URL(), "shop")
		want, _, _ := getToken(cand.URL(), "shop")
		tok = got.AccessToken
		return code == http.StatusOK && tok != "" && tok == want.AccessToken
	})
	// A report through the sidecar reaches the leader, which answers it.
	if got, code, err := invalidate(side.URL(), "shop", tok); err != nil || code != http.StatusOK || got.AccessToken == "" {
		t.Errorf("invalidate through the sidecar: %d, %v", code, err)
	}
	// The sidecar announced itself, and its status reads states, budgets,
	// presences, intents and the leader.
	keys := tokenstore.Keys{Prefix: "/wxtoken"}
	waitFor(t, 10*time.Second, "the sidecar's presence", func() bool {
		r, err := etcd.root.Get(tctx(t), keys.Replica("side"))
		return err == nil && len(r.Kvs) == 1
	})
	var st api.Status
	var err error
	waitFor(t, 10*time.Second, "the sidecar's status with both replicas and the leader", func() bool {
		st, err = readStatus(side.URL())
		// Under load the 2 s election lease may lapse for a moment.
		return err == nil && len(st.Replicas) == 2 && st.Leader == "cand"
	})
	if st.EtcdError != "" || st.Leader != "cand" || len(st.Credentials) != 2 || st.Credentials[0].FetchesToday == 0 {
		t.Errorf("sidecar status: etcd_error %q, leader %q, credentials %+v; want no error, leader cand, two fetched credentials",
			st.EtcdError, st.Leader, st.Credentials)
	}
	if strings.Contains(logs.String(), "permission denied") {
		t.Errorf("a replica was refused by etcd at some point:\n%s", logs.String())
	}

	// What the sidecar's user may not do.
	sc := etcd.client(t, "side", "side-pw")
	s := tokenstore.New(sc, "/wxtoken")
	cred := tokenstore.CredName("shop", "token")
	denied := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, rpctypes.ErrPermissionDenied) {
			t.Errorf("sidecar %s: got %v, want permission denied", what, err)
		}
	}
	denied("publishes a record", s.PublishUnfenced(tctx(t), tokenstore.Record{Cred: cred, Value: "FORGED", Seq: 999}))
	for _, key := range []string{keys.Cred(cred), keys.Intent(cred), keys.Budget(cred, "20260101"), keys.DayLease("20260101"), keys.State(cred),
		keys.Election() + "/694d9a5f3b2e1c01", "/elsewhere/x"} {
		_, err := sc.Put(tctx(t), key, "x")
		denied("puts "+key, err)
	}
	_, err = sc.Delete(tctx(t), keys.Cred(cred))
	denied("deletes the record", err)
	_, err = sc.Delete(tctx(t), "/wxtoken/", clientv3.WithPrefix())
	denied("deletes the prefix", err)
	// ... and what it may.
	if _, _, err := s.Report(tctx(t), tokenstore.Report{Cred: cred, Seq: 1, Node: "side"}); err != nil {
		t.Errorf("sidecar reports: %v", err)
	}
	if _, err := sc.Put(tctx(t), keys.Replica("side-2"), "{}"); err != nil {
		t.Errorf("sidecar announces: %v", err)
	}
	// WeChat pushes a platform's events to any replica: a sidecar stores
	// tickets, codes and authorizer states, under their own prefix only.
	for _, key := range []string{keys.PlatformTicket("saas"), keys.PlatformCode("saas", "wxauth", "code"), keys.PlatformAuthorizer("saas", "wxauth")} {
		if _, err := sc.Put(tctx(t), key, "x"); err != nil {
			t.Errorf("sidecar stores %s: %v", key, err)
		}
	}
	_, err = sc.Put(tctx(t), "/wxtoken/platform/saas/refresh/wxauth", "x")
	denied("puts a platform key outside platform-events/", err)
	if r, err := sc.Get(tctx(t), keys.Creds(), clientv3.WithPrefix()); err != nil || len(r.Kvs) == 0 {
		t.Errorf("sidecar reads the records: %v", err)
	}
	// The candidate's user is confined to the prefix.
	cc := etcd.client(t, "cand", "cand-pw")
	_, err = cc.Put(tctx(t), "/elsewhere/x", "x")
	if !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("candidate writes outside its prefix: got %v, want permission denied", err)
	}
	if _, err := cc.Put(tctx(t), "/wxtokenX/x", "x"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("candidate writes /wxtokenX/x: got %v, want permission denied (the prefix ends with /)", err)
	}
}
