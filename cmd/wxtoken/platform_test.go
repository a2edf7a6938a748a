package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/replica"
	"github.com/wxtoken/wxtoken/seal"
	"github.com/wxtoken/wxtoken/tokenstore"
)

const (
	recoverComp   = "wxcomp0000000001"
	recoverSecret = "comp-secret-7d1e-9a8b"
)

// recoverConfig writes the config of a replica with the platform saas on
// the simulator at simURL, its embedded etcd in a fresh data_dir.
func recoverConfig(t *testing.T, simURL string) string {
	t.Helper()
	dir := t.TempDir()
	key := make([]byte, seal.KeySize)
	_, _ = rand.Read(key)
	if err := os.WriteFile(filepath.Join(dir, "records.key"), []byte(hex.EncodeToString(key)), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
election: {candidate: false}
wechat: {base_url: %q}
encryption: {key_files: [records.key]}
platforms:
  - name: saas
    component_appid: %s
    component_secret: %s
    token: msgtoken
    encoding_aes_key: Q0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaMDEyMzQ1Njc
`, filepath.Join(dir, "data"), simURL, recoverComp, recoverSecret)
	path := filepath.Join(dir, "wxtoken.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPlatformRecoverCommand: `wxtoken platform recover saas` against a
// running replica's embedded etcd and the simulator restores the refresh
// tokens etcd lacks and prints counts, never a token; without a running
// replica (embedded etcd) or with a bad platform it says so.
func TestPlatformRecoverCommand(t *testing.T) {
	sim := wechattest.New(wechattest.Config{})
	if err := sim.AddPlatform(wechattest.Platform{AppID: recoverComp, Secret: recoverSecret, Token: "msgtoken",
		EncodingAESKey: "Q0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaMDEyMzQ1Njc", TicketEvery: -1}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	defer srv.Close()
	path := recoverConfig(t, srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"platform", "recover", "saas", "--config", path}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "no replica runs with data_dir") {
		t.Fatalf("recover with no replica running: %v", err)
	}

	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := replica.New(replica.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	defer func() { stop(); <-done; r.Close() }()

	// A leader fetched the component token; two accounts are authorized,
	// and etcd lost their refresh tokens.
	store, closeStore, err := replica.OpenStore(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	push, _ := sim.PushTicket(ctx, recoverComp)
	fc, _ := fetcher.New(fetcher.Config{BaseURL: srv.URL})
	tok, err := fc.ComponentToken(ctx, recoverComp, recoverSecret, push.Ticket)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := store.PublishUnfenced(ctx, tokenstore.Record{Cred: tokenstore.ComponentCred("saas"), Value: tok.Value, Seq: 1,
		FetchedAt: now, ExpiresAt: now.Add(tok.ExpiresIn)}); err != nil {
		t.Fatal(err)
	}
	secrets := []string{tok.Value, recoverSecret}
	for _, id := range []string{"wxauth0000000001", "wxauth0000000002"} {
		rt, err := sim.SeedAuthorizer(recoverComp, id)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, rt)
	}

	stdout.Reset()
	stderr.Reset()
	if err := run(ctx, []string{"platform", "recover", "saas", "--config", path}, &stdout, &stderr); err != nil {
		t.Fatalf("recover: %v\n%s", err, stderr.String())
	}
	if want := "platform saas: listed 2, restored 2, already fine 0, skipped 0"; !strings.Contains(stdout.String(), want) {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
	for _, id := range []string{"wxauth0000000001", "wxauth0000000002"} {
		rt, ok, err := store.RefreshToken(ctx, tokenstore.AuthorizerCred("saas", id))
		if err != nil || !ok || rt.Value != sim.RefreshToken(recoverComp, id) {
			t.Errorf("%s: refresh token not restored: %v, %v, %v", id, rt, ok, err)
		}
	}
	for _, s := range secrets {
		if strings.Contains(stdout.String()+stderr.String(), s) {
			t.Errorf("a secret was printed")
		}
	}

	for _, args := range [][]string{
		{"platform"}, {"platform", "restore", "saas"}, {"platform", "recover", "--config", path},
		{"platform", "recover", "nope", "--config", path}, {"platform", "recover", "saas"},
	} {
		if err := run(ctx, args, &stdout, &stderr); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
