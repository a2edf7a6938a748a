package tokenstore_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/internal/etcdtest"
	"github.com/wxtoken/wxtoken/seal"
	"github.com/wxtoken/wxtoken/tokenstore"
	"github.com/wxtoken/wxtoken/wxcrypt"
)

// platformStore is a Store on c that seals with a new random key.
func platformStore(t *testing.T, c *clientv3.Client) *tokenstore.Store {
	t.Helper()
	b := make([]byte, seal.KeySize)
	_, _ = rand.Read(b)
	k, err := seal.NewKey(b)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := seal.NewRing(k)
	if err != nil {
		t.Fatal(err)
	}
	s := tokenstore.New(c, "/w")
	s.SetSealing(tokenstore.Sealing{Sealer: ring})
	return s
}

func TestPutTicketNewestWins(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	s := platformStore(t, c)
	now := time.Unix(1_800_000_000, 0)
	tk := func(v string, sec int64) wxcrypt.Ticket {
		return wxcrypt.Ticket{Value: v, CreateTime: now.Add(time.Duration(sec) * time.Second)}
	}

	if _, ok, err := s.Ticket(ctx(t), "saas"); ok || err != nil {
		t.Fatalf("Ticket before any = %v, %v", ok, err)
	}
	for _, step := range []struct {
		t      wxcrypt.Ticket
		stored bool
		want   string
	}{
		{tk("T1", 0), true, "T1"},
		{tk("T0", -600), false, "T1"},        // older, delivered late
		{tk("T1", 0), false, "T1"},           // the same push again
		{tk("T1bis", 0), false, "T1"},        // another ticket of the same second
		{tk("T2", 600), true, "T2"},          // the next push
		{tk("", 1200), false, "T2"},          // no value: refused with an error
		{tk("FUTURE", 3600), true, "FUTURE"}, // dated an hour ahead of the pushes before
	} {
		stored, _, err := s.PutTicket(ctx(t), "saas", step.t, now.Add(2*time.Hour))
		if step.t.Value == "" {
			if err == nil {
				t.Errorf("PutTicket of an empty ticket: no error")
			}
			continue
		}
		if err != nil || stored != step.stored {
			t.Fatalf("PutTicket(%s) = %v, %v; want %v", step.t, stored, err, step.stored)
		}
		got, ok, err := s.Ticket(ctx(t), "saas")
		if err != nil || !ok || got.Value != step.want {
			t.Fatalf("after PutTicket(%s): ticket %q, %v, %v; want %q", step.t, got.Value, ok, err, step.want)
		}
	}
	// A stored CreateTime beyond the skew of the writer's clock (a clock
	// error, a damaged value) yields to the next push.
	if stored, _, err := s.PutTicket(ctx(t), "saas", tk("NOW", 60), now); err != nil || !stored {
		t.Errorf("a push after a ticket dated an hour ahead: stored %v, %v; want stored", stored, err)
	}

	// Sealed: etcd holds no ticket in the clear, and another key cannot
	// read it.
	resp, err := c.Get(ctx(t), "/w/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if bytes.Contains(kv.Value, []byte("NOW")) || bytes.Contains(kv.Value, []byte("T2")) {
			t.Errorf("%s holds a ticket in the clear: %s", kv.Key, kv.Value)
		}
	}
	other := platformStore(t, c)
	if _, _, err := other.Ticket(ctx(t), "saas"); !errors.Is(err, tokenstore.ErrRecordUnreadable) {
		t.Errorf("Ticket with another key: %v, want ErrRecordUnreadable", err)
	}
	// Changing the clear CreateTime makes the seal fail: it is bound in.
	key := s.Keys().PlatformTicket("saas")
	r, _ := c.Get(ctx(t), key)
	forged := bytes.Replace(r.Kvs[0].Value, []byte(fmt.Sprint(now.Add(time.Minute).Unix())), []byte(fmt.Sprint(now.Add(2*time.Minute).Unix())), 1)
	if _, err := c.Put(ctx(t), key, string(forged)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Ticket(ctx(t), "saas"); !errors.Is(err, tokenstore.ErrRecordUnreadable) {
		t.Errorf("Ticket with its CreateTime changed: %v, want ErrRecordUnreadable", err)
	}
	// No sealer, no platform writes.
	if _, _, err := tokenstore.New(c, "/w").PutTicket(ctx(t), "saas", tk("X", 9999), now); !errors.Is(err, tokenstore.ErrNoSealing) {
		t.Errorf("PutTicket without a sealer: %v, want ErrNoSealing", err)
	}
}

// TestPutTicketConcurrent: replicas storing pushes at once, in any order,
// leave the newest; an older ticket never replaces a newer one.
func TestPutTicketConcurrent(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	s := platformStore(t, clus.Client(0))
	base := time.Unix(1_800_000_000, 0)
	const writers, pushes = 6, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			// Each writer goes through the pushes in its own order.
			for i := range pushes {
				n := (i*7 + w*3) % pushes
				tk := wxcrypt.Ticket{Value: fmt.Sprintf("T%02d", n), CreateTime: base.Add(time.Duration(n) * 10 * time.Minute)}
				if _, _, err := s.PutTicket(ctx(t), "saas", tk, base.Add(pushes*10*time.Minute)); err != nil {
					errs <- err
					return
				}
				// Never older than what this writer stored or saw refused.
				got, ok, err := s.Ticket(ctx(t), "saas")
				if err != nil || !ok || got.CreateTime.Before(tk.CreateTime) {
					errs <- fmt.Errorf("after storing %s: ticket %s, %v, %v", tk, got, ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, ok, err := s.Ticket(ctx(t), "saas")
	if want := fmt.Sprintf("T%02d", pushes-1); err != nil || !ok || got.Value != want {
		t.Errorf("final ticket %q, %v, %v; want %q", got.Value, ok, err, want)
	}
}

func TestPutCodeOnce(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	s := platformStore(t, c)
	exp := time.Unix(1_800_003_600, 0).UTC()
	code := tokenstore.AuthCode{Authorizer: "wxauth01", Code: "queryauthcode@@@SECRET", ExpiresAt: exp, InfoType: "authorized", Node: "a"}
	if created, err := s.PutCode(ctx(t), "saas", code); err != nil || !created {
		t.Fatalf("PutCode = %v, %v", created, err)
	}
	again := code
	again.Node, again.ExpiresAt = "b", exp.Add(time.Hour)
	if created, err := s.PutCode(ctx(t), "saas", again); err != nil || created {
		t.Fatalf("PutCode of the same code again = %v, %v; want not created", created, err)
	}
	second := code
	second.Code, second.InfoType = "queryauthcode@@@OTHER", "updateauthorized"
	if created, err := s.PutCode(ctx(t), "saas", second); err != nil || !created {
		t.Fatalf("PutCode of a second code = %v, %v", created, err)
	}
	codes, bad, err := s.Codes(ctx(t), "saas")
	if err != nil || bad != 0 || len(codes) != 2 {
		t.Fatalf("Codes = %v, %d, %v", codes, bad, err)
	}
	for _, got := range codes {
		if got.Code == code.Code && (got.Node != "a" || !got.ExpiresAt.Equal(exp)) {
			t.Errorf("the first code was changed by its repeat: %+v", got)
		}
	}
	resp, _ := c.Get(ctx(t), "/w/", clientv3.WithPrefix())
	for _, kv := range resp.Kvs {
		if bytes.Contains(kv.Key, []byte("SECRET")) || bytes.Contains(kv.Value, []byte("SECRET")) {
			t.Errorf("etcd shows the code in the clear under %s", kv.Key)
		}
	}
	if _, bad, _ := platformStore(t, c).Codes(ctx(t), "saas"); bad != 2 {
		t.Errorf("another key opened %d codes of 2", 2-bad)
	}
	if _, err := s.PutCode(ctx(t), "saas", tokenstore.AuthCode{Authorizer: "../x", Code: "c"}); err == nil {
		t.Error("PutCode with an authorizer appid that is not key-safe: no error")
	}
}

func TestAuthorizerState(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	s := platformStore(t, clus.Client(0))
	t0 := time.Unix(1_800_000_000, 0).UTC()
	put := func(state string, at time.Time, want bool) {
		t.Helper()
		stored, err := s.PutAuthorizerState(ctx(t), "saas", tokenstore.AuthorizerState{AppID: "wxauth01", State: state, At: at})
		if err != nil || stored != want {
			t.Fatalf("PutAuthorizerState(%s at %d) = %v, %v; want %v", state, at.Unix(), stored, err, want)
		}
	}
	put(tokenstore.AuthorizerAuthorized, t0, true)
	put(tokenstore.AuthorizerUnauthorized, t0.Add(time.Minute), true)
	put(tokenstore.AuthorizerAuthorized, t0.Add(30*time.Second), false) // late: older than the withdrawal
	put(tokenstore.AuthorizerAuthorized, t0.Add(time.Minute), false)    // same second: unauthorized holds
	put(tokenstore.AuthorizerAuthorized, t0.Add(2*time.Minute), true)   // authorized again
	st, ok, err := s.Authorizer(ctx(t), "saas", "wxauth01")
	if err != nil || !ok || st.State != tokenstore.AuthorizerAuthorized || !st.At.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("Authorizer = %+v, %v, %v", st, ok, err)
	}
}
