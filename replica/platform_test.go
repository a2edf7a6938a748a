package replica_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/replica"
	"github.com/wxtoken/wxtoken/seal"
	"github.com/wxtoken/wxtoken/tokenstore"
)

const (
	platCompID  = "wxcomp0000000001"
	platSecret  = "comp-secret-7d1e"
	platToken   = "msg-token-4b2a"
	platAESKey  = "Q0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaMDEyMzQ1Njc"
	platNewKey  = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA"
	platAuthzID = "wxauth0000000001"
)

// platformConfig adds the platform "saas" and a sealing key to cfg, and
// returns the key. The platform is in a key change: platNewKey is
// current, platAESKey (the simulator's at first) the previous one.
func platformConfig(t *testing.T, cfg *config.Config) seal.Key {
	t.Helper()
	raw := make([]byte, seal.KeySize)
	_, _ = rand.Read(raw)
	keyFile := filepath.Join(t.TempDir(), "records.key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(raw)), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := seal.ReadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Encryption = config.Encryption{KeyFiles: []string{keyFile}, Keys: []seal.Key{key}}
	cfg.Platforms = []config.Platform{{Name: "saas", ComponentAppID: platCompID, ComponentSecret: config.NewSecret(platSecret),
		Token: config.NewSecret(platToken), EncodingAESKey: config.NewSecret(platNewKey),
		PreviousEncodingAESKey: config.NewSecret(platAESKey), DailyBudget: 100}}
	return key
}

// TestPlatformEventsEndToEnd: the simulator pushes tickets and
// authorizations to a replica's event URL, as WeChat does. The newest
// ticket is stored in etcd, sealed; an older one never replaces it; pushes
// with a wrong key or signature are refused 400; an authorization code is
// stored once; a serve-only replica stores pushes too.
func TestPlatformEventsEndToEnd(t *testing.T) {
	clock := wechattest.NewFakeClock(time.Now().Add(-time.Minute))
	e := newEnv(t, 1, wechattest.Config{Now: clock.Now})
	cfg := e.testConfig("plat1")
	key := platformConfig(t, cfg)
	// Clients are set: every other route needs a token, the event URL
	// none (WeChat has none).
	opsToken := "ops-token-0123456789abcdef0123456789"
	sum := sha256.Sum256([]byte(opsToken))
	cfg.Clients = []config.Client{{Name: "ops", TokenSHA256: sum[:], Apps: []string{"*"}, Allow: []string{"status"}}}
	r := e.start(cfg, nil)
	eventURL := r.URL() + "/v1/platforms/saas/events"
	if err := e.sim.AddPlatform(wechattest.Platform{AppID: platCompID, Secret: platSecret, Token: platToken,
		EncodingAESKey: platAESKey, PushURL: eventURL, TicketEvery: -1}); err != nil {
		t.Fatal(err)
	}
	ring, err := seal.NewRing(key)
	if err != nil {
		t.Fatal(err)
	}
	store := tokenstore.New(e.clus.Client(0), "/wxtoken")
	store.SetSealing(tokenstore.Sealing{Sealer: ring})
	stored := func() string {
		t.Helper()
		tk, _, err := store.Ticket(tctx(t), "saas")
		if err != nil {
			t.Fatal(err)
		}
		return tk.Value
	}
	push := func(wantOK bool) wechattest.Push {
		t.Helper()
		p, err := e.sim.PushTicket(tctx(t), platCompID)
		if err != nil {
			t.Fatal(err)
		}
		if p.Accepted() != wantOK {
			t.Fatalf("push of %s: status %d %q, want accepted %v", p.At.Format(time.TimeOnly), p.Status, p.Answer, wantOK)
		}
		return p
	}

	p1 := push(true)
	if got := stored(); got != p1.Ticket {
		t.Fatalf("stored ticket is not the pushed one")
	}
	clock.Advance(10 * time.Second)
	p2 := push(true)
	if got := stored(); got != p2.Ticket {
		t.Fatalf("the newer ticket was not stored")
	}
	// A push created earlier (delivered late, or replayed): answered
	// success, not stored.
	clock.Advance(-20 * time.Second)
	push(true)
	clock.Advance(30 * time.Second)
	if got := stored(); got != p2.Ticket {
		t.Fatalf("an older ticket replaced the newer one")
	}
	// A wrong key, a bad signature: refused, nothing stored.
	for _, f := range []wechattest.PushFault{{WrongKey: true}, {BadSignature: true}} {
		if err := e.sim.SetPushFault(platCompID, f); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		if p := push(false); p.Status != http.StatusBadRequest {
			t.Errorf("push with %+v: status %d, want 400", f, p.Status)
		}
		if got := stored(); got != p2.Ticket {
			t.Fatalf("a push with %+v replaced the ticket", f)
		}
	}
	if err := e.sim.SetPushFault(platCompID, wechattest.PushFault{}); err != nil {
		t.Fatal(err)
	}

	// Sealed: etcd holds no ticket in the clear.
	resp, err := e.clus.Client(0).Get(tctx(t), "\x00", clientv3.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if bytes.Contains(kv.Value, []byte(p2.Ticket)) || bytes.Contains(kv.Value, []byte(p1.Ticket)) {
			t.Errorf("etcd key %s holds a ticket in the clear", kv.Key)
		}
	}

	// Authorization: the code is stored at once, once, and the leader
	// (this replica) exchanges it once, which deletes it.
	clock.Advance(time.Second)
	a, err := e.sim.Authorize(tctx(t), platCompID, platAuthzID, wechattest.AuthorizeOptions{})
	if err != nil || !a.Push.Accepted() {
		t.Fatalf("Authorize: %+v, %v", a.Push, err)
	}
	codes, bad, err := store.Codes(tctx(t), "saas")
	exchanged := e.sim.Exchanges(a.Code)
	switch {
	case err != nil || bad != 0 || len(codes) > 1:
		t.Fatalf("codes = %v (%d unreadable), %v; want the pushed one", codes, bad, err)
	case len(codes) == 0 && exchanged != 1:
		t.Fatalf("the code is neither stored nor exchanged (%d exchanges)", exchanged)
	case len(codes) == 1 && (codes[0].Code != a.Code || codes[0].Authorizer != platAuthzID || !codes[0].ExpiresAt.Equal(a.ExpiresAt.Truncate(time.Second))):
		t.Fatalf("stored code %v is not the pushed one", codes[0])
	}
	if st, ok, err := store.Authorizer(tctx(t), "saas", platAuthzID); err != nil || !ok || st.State != tokenstore.AuthorizerAuthorized {
		t.Errorf("authorizer state %+v, %v, %v; want authorized", st, ok, err)
	}
	clock.Advance(time.Second)
	if p, err := e.sim.Unauthorize(tctx(t), platCompID, platAuthzID); err != nil || !p.Accepted() {
		t.Fatalf("Unauthorize: %+v, %v", p, err)
	}
	if st, _, err := store.Authorizer(tctx(t), "saas", platAuthzID); err != nil || st.State != tokenstore.AuthorizerUnauthorized {
		t.Errorf("authorizer state %+v, %v; want unauthorized", st, err)
	}

	// The key change completes: WeChat pushes with the new key.
	if !strings.Contains(e.logs.String(), "push decrypted with previous_encoding_aes_key") {
		t.Error("no warning that pushes still come with the previous key")
	}
	if err := e.sim.SetPlatformKey(platCompID, platNewKey); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if p := push(true); stored() != p.Ticket {
		t.Fatal("a push with the new key was not stored")
	}

	// A serve-only replica stores the pushes that reach it.
	side := e.testConfig("plat2")
	side.Election.Candidate = false
	side.Encryption, side.Platforms = cfg.Encryption, cfg.Platforms
	r2 := e.start(side, nil)
	if err := e.sim.AddPlatform(wechattest.Platform{AppID: platCompID, Secret: platSecret, Token: platToken,
		EncodingAESKey: platNewKey, PushURL: r2.URL() + "/v1/platforms/saas/events", TicketEvery: -1}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	p3 := push(true)
	if got := stored(); got != p3.Ticket {
		t.Fatalf("the serve-only replica did not store the newer ticket")
	}

	// Counted, and no secret in the metrics or the logs.
	if resp, err := http.Get(r.URL() + "/metrics"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("metrics without a token: %v, %v; want 401 (clients are set)", resp, err)
	} else {
		resp.Body.Close()
	}
	mreq, _ := http.NewRequest("GET", r.URL()+"/metrics", nil)
	mreq.Header.Set("Authorization", "Bearer "+opsToken)
	mresp, err := http.DefaultClient.Do(mreq)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{
		`wxtoken_platform_events_total{platform="saas",result="stored",type="ticket"} 3`,
		`wxtoken_platform_events_total{platform="saas",result="stale",type="ticket"} 1`,
		`wxtoken_platform_events_total{platform="saas",result="bad_signature",type="unknown"} 1`,
		`wxtoken_platform_events_total{platform="saas",result="undecryptable",type="unknown"} 1`,
		`wxtoken_platform_events_total{platform="saas",result="stored",type="authorized"} 1`,
		`route="platform_events"`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	all := string(metrics) + e.logs.String()
	for _, s := range []string{p1.Ticket, p2.Ticket, p3.Ticket, a.Code, platAESKey, platNewKey, platToken, platSecret} {
		if strings.Contains(all, s) {
			t.Errorf("a secret appears in the metrics or the logs")
		}
	}
}

// TestPlatformNeedsEncryption: a replica with platforms and no
// encryption.key_files refuses to start.
func TestPlatformNeedsEncryption(t *testing.T) {
	e := newEnv(t, 1, wechattest.Config{})
	cfg := e.testConfig("plain")
	platformConfig(t, cfg)
	cfg.Encryption = config.Encryption{}
	c := e.clus.Client(0)
	_, err := replica.New(replica.Options{Config: cfg, Etcd: c})
	if err == nil || !strings.Contains(err.Error(), "encryption.key_files") {
		t.Fatalf("New without encryption: %v, want a refusal naming encryption.key_files", err)
	}
}
