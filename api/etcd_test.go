package api

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/tests/v3/framework/integration"

	"github.com/wxtoken/wxtoken/election"
	"github.com/wxtoken/wxtoken/internal/etcdtest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// The tests in this package that need etcd run the API over a real etcd
// cluster with no refresher: the test plays the leader, publishing
// records and rejecting reports by hand.

const (
	testPrefix = "/w"
	testApp    = "demo"
	testCred   = testApp + "/token"
)

// etcdEnv is an API over a real etcd cluster.
type etcdEnv struct {
	clus  *integration.Cluster
	store *tokenstore.Store // the API's, on member storeAt
	admin *tokenstore.Store // the test's, on another member when there are several
	cache *tokenstore.Cache
	api   *API
	guard *election.Guard // fences the test's leader writes
}

// envOptions says how to build an etcdEnv.
type envOptions struct {
	members int
	cfg     Config // Cache, Store and Apps are filled in
	probe   time.Duration
}

func newEtcdEnv(t *testing.T, o envOptions) *etcdEnv {
	t.Helper()
	if o.members == 0 {
		o.members = 1
	}
	clus := etcdtest.NewCluster(t, o.members)
	adminC := clus.Client(o.members - 1)
	e := &etcdEnv{clus: clus, store: tokenstore.New(clus.Client(0), testPrefix), admin: tokenstore.New(adminC, testPrefix)}
	e.cache = tokenstore.NewCache(tokenstore.CacheConfig{Client: adminC, Prefix: testPrefix, ProbeInterval: o.probe})
	cctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.cache.Run(cctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-e.cache.Loaded():
	case <-time.After(10 * time.Second):
		t.Fatal("cache never loaded")
	}
	resp, err := adminC.Put(testCtx(t), testPrefix+"/election/test", "test")
	if err != nil {
		t.Fatal(err)
	}
	e.guard = election.NewGuard(testPrefix+"/election/test", resp.Header.Revision, time.Now().Add(time.Hour))

	cfg := o.cfg
	cfg.Cache, cfg.Store, cfg.Node = e.cache, e.store, "node-a"
	cfg.Apps = []App{{Name: testApp, Kind: "classic", AppID: "wx0000000000000001"}}
	if e.api, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// publish stores rec as the leader would and waits until the cache has it.
func (e *etcdEnv) publish(t *testing.T, rec tokenstore.Record) {
	t.Helper()
	if rec.Cred == "" {
		rec.Cred = testCred
	}
	if err := e.admin.PublishUnfenced(testCtx(t), rec); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cache.Wait(testCtx(t), rec.Cred, rec.Seq-1); err != nil {
		t.Fatalf("cache never saw seq %d: %v", rec.Seq, err)
	}
}

// reportKeys returns the report keys in etcd.
func (e *etcdEnv) reportKeys(t *testing.T) []string {
	t.Helper()
	resp, err := e.admin.Client().Get(testCtx(t), e.admin.Keys().Reports(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	return keys
}

// waitReport waits until the report on seq exists in etcd and is not
// rejected: the report a caller is waiting on.
func (e *etcdEnv) waitReport(t *testing.T, seq uint64) {
	t.Helper()
	waitFor(t, "a report of seq in etcd", func() bool {
		resp, err := e.admin.Client().Get(testCtx(t), e.admin.Keys().Report(testCred, seq))
		var r tokenstore.Report
		return err == nil && len(resp.Kvs) == 1 && json.Unmarshal(resp.Kvs[0].Value, &r) == nil && !r.Rejected
	})
}

// reject rejects the report on seq as the leader does when WeChat says
// the token still works.
func (e *etcdEnv) reject(t *testing.T, seq uint64) {
	t.Helper()
	if err := e.admin.RejectReport(testCtx(t), e.guard, tokenstore.Report{Cred: testCred, Seq: seq, Node: "leader"}); err != nil {
		t.Fatal(err)
	}
}

// pending is the number of report calls this replica holds.
func (a *API) pending() int {
	n := 0
	a.reported.Range(func(any, any) bool { n++; return true })
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
