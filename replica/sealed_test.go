package replica_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/seal"
)

// TestSealedRecordsInEtcd: a replica with encryption.key_files serves its
// token and ticket while etcd holds neither in the clear, and it warns
// about a key file that others may read.
func TestSealedRecordsInEtcd(t *testing.T) {
	e := newEnv(t, 1, wechattest.Config{})
	raw := make([]byte, seal.KeySize)
	_, _ = rand.Read(raw)
	keyFile := filepath.Join(t.TempDir(), "records.key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(raw)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	key, err := seal.ReadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.testConfig("sealer")
	cfg.Refresh.Before, cfg.Refresh.FetchTimeout = time.Minute, 5*time.Second
	cfg.Apps[0].Tickets = []string{config.TicketJSAPI}
	cfg.Encryption = config.Encryption{KeyFiles: []string{keyFile}, Keys: []seal.Key{key}}
	r := e.start(cfg, nil)

	var token string
	waitFor(t, 30*time.Second, "the token", func() bool {
		tr, code, _ := getToken(r.URL(), "shop")
		token = tr.AccessToken
		return code == 200 && token != ""
	})
	var ticket string
	waitFor(t, 30*time.Second, "the ticket", func() bool {
		rec, ok := r.Cache().Get("shop/jsapi")
		ticket = rec.Value
		return ok && ticket != ""
	})
	resp, err := e.clus.Client(0).Get(tctx(t), "\x00", clientv3.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	records := 0
	for _, kv := range resp.Kvs {
		for _, v := range []string{token, ticket} {
			if bytes.Contains(kv.Value, []byte(v)) || bytes.Contains(kv.Key, []byte(v)) {
				t.Errorf("etcd key %s holds a credential in the clear", kv.Key)
			}
		}
		if strings.HasPrefix(string(kv.Key), "/wxtoken/cred/") {
			records++
			if id, ok := seal.KeyID(kv.Value); !ok || id != key.ID() {
				t.Errorf("record %s: sealed with %q (%v), want key %s", kv.Key, id, ok, key.ID())
			}
		}
	}
	if records != 2 {
		t.Errorf("found %d records in etcd, want the token's and the ticket's", records)
	}
	if r.Cache().OpenFailures() != 0 {
		t.Errorf("OpenFailures = %d, want 0", r.Cache().OpenFailures())
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "encryption key file readable by group or others") || !strings.Contains(logs, keyFile) {
		t.Errorf("no warning about the 0644 key file in the logs:\n%s", logs)
	}
	if strings.Contains(logs, hex.EncodeToString(raw)) || strings.Contains(logs, token) {
		t.Errorf("the logs show the key or the token")
	}
}
