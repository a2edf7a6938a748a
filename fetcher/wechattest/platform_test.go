package wechattest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/wxcrypt"
)

// TestTicketPushAndComponentToken: a push is signed and encrypted as WeChat
// does; its ticket buys component tokens that overlap like classic tokens;
// a made-up ticket is 61006, an expired one 61005.
func TestTicketPushAndComponentToken(t *testing.T) {
	e := newPlatformEnv(t, Config{Overlap: 5 * time.Minute}, Platform{TicketTTL: time.Hour})
	if _, err := e.srv.PushTicket(t.Context(), compID); err != nil {
		t.Fatal(err)
	}
	r := e.rc.next(t)
	if r.err != nil {
		t.Fatalf("receiver refused the push: %v", r.err)
	}
	q := r.query
	if q.Get("encrypt_type") != "aes" || q.Get("timestamp") != fmt.Sprint(t0.Unix()) || q.Get("nonce") == "" || q.Get("signature") == "" {
		t.Errorf("push query %v", q)
	}
	if r.event.AppID != compID || !r.event.CreateTime.Equal(t0) || !strings.HasPrefix(r.event.ComponentVerifyTicket, "ticket@@@") {
		t.Errorf("event %v", r.event)
	}
	if p := e.srv.Pushes(); len(p) != 1 || !p[0].Accepted() || p[0].Ticket != r.event.ComponentVerifyTicket {
		t.Errorf("pushes %+v", p)
	}
	ticket := r.event.ComponentVerifyTicket

	first := e.componentToken(ticket)
	if first.Errcode != 0 || first.ComponentAccessToken == "" || first.ExpiresIn != 7200 {
		t.Fatalf("component token: %+v", first)
	}
	e.clock.Advance(time.Minute)
	second := e.componentToken(ticket)
	if second.ComponentAccessToken == "" || second.ComponentAccessToken == first.ComponentAccessToken {
		t.Fatalf("second component token: %+v", second)
	}
	if got := e.srv.Current(compID, KindComponent); got != second.ComponentAccessToken {
		t.Errorf("Current = %q, want the second token", got)
	}
	now := e.clock.Now()
	if !e.srv.Valid(first.ComponentAccessToken, now.Add(5*time.Minute-time.Second)) || e.srv.Valid(first.ComponentAccessToken, now.Add(5*time.Minute)) {
		t.Error("the first component token does not die after the overlap")
	}

	if a := e.componentToken("ticket@@@made-up"); a.Errcode != 61006 {
		t.Errorf("made-up ticket: %+v, want 61006", a)
	}
	if a := e.component("api_component_token", "", map[string]any{"component_appsecret": "wrong", "component_verify_ticket": ticket}); a.Errcode != 40125 {
		t.Errorf("wrong secret: %+v, want 40125", a)
	}
	e.clock.Set(t0.Add(time.Hour))
	if a := e.componentToken(ticket); a.Errcode != 61005 {
		t.Errorf("ticket one TTL old: %+v, want 61005", a)
	}
	// A newer ticket works; the old one stays expired.
	if a := e.componentToken(e.ticket()); a.Errcode != 0 {
		t.Errorf("fresh ticket: %+v", a)
	}
	e.srv.SetAllowIPs([]string{"10.9.9.9"})
	if a := e.componentToken(e.ticket()); a.Errcode != 61004 {
		t.Errorf("caller not whitelisted: %+v, want 61004", a)
	}
}

// TestScheduledPushesStopAndRestart: RunPushes pushes on the schedule;
// stopped pushes make no ticket; api_start_push_ticket restarts them.
func TestScheduledPushesStopAndRestart(t *testing.T) {
	e := newPlatformEnv(t, Config{}, Platform{TicketEvery: 20 * time.Millisecond})
	seen := map[string]bool{}
	for len(seen) < 3 {
		r := e.rc.next(t)
		if r.err != nil || r.event.InfoType != wxcrypt.InfoVerifyTicket {
			t.Fatalf("scheduled push: %v %v", r.event, r.err)
		}
		seen[r.event.ComponentVerifyTicket] = true
	}
	if err := e.srv.SetPushFault(compID, PushFault{Stopped: true}); err != nil {
		t.Fatal(err)
	}
	// Nothing is due for a stopped platform, however late it is.
	if due, _ := e.srv.duePushes(time.Now().Add(time.Hour)); len(due) != 0 {
		t.Fatalf("due while stopped: %v", due)
	}
	// A scheduled push planned before the stop mints nothing.
	if _, err := e.srv.pushTicket(t.Context(), compID, true); !errors.Is(err, errStopped) {
		t.Fatalf("scheduled push while stopped: %v, want errStopped", err)
	}
	// No ticket is minted from now on until the restart: pushes still on
	// their way carry the old CreateTime, the restart's the new one.
	e.clock.Advance(time.Minute)
	restart := e.clock.Now()
	if a := e.component("api_start_push_ticket", "", map[string]any{"component_secret": compSecret}); a.Errcode != 0 || a.Errmsg != "ok" {
		t.Fatalf("start push: %+v, want ok", a)
	}
	for {
		r := e.rc.next(t)
		if r.err != nil || r.event.InfoType != wxcrypt.InfoVerifyTicket {
			t.Fatalf("push: %v %v", r.event, r.err)
		}
		if r.event.CreateTime.Equal(restart) {
			break
		}
		if !r.event.CreateTime.Before(restart) {
			t.Fatalf("push created at %v, after the restart's clock", r.event.CreateTime)
		}
	}
	if a := e.component("api_start_push_ticket", "", map[string]any{"component_secret": compSecret}); a.Errmsg != "in a normal state" {
		t.Errorf("start push while running: %+v", a)
	}
	if a := e.component("api_start_push_ticket", "", map[string]any{"component_secret": "wrong"}); a.Errcode != 40125 {
		t.Errorf("start push with a wrong secret: %+v", a)
	}
}

// TestPushFaults: a wrong key or a bad signature is refused by a receiver;
// after a key change the receiver needs the new key, and keeps working
// with the old one as its previous key.
func TestPushFaults(t *testing.T) {
	e := newPlatformEnv(t, Config{}, Platform{})
	for _, tc := range []struct {
		fault PushFault
		want  error
	}{
		{PushFault{WrongKey: true}, wxcrypt.ErrCiphertext},
		{PushFault{BadSignature: true}, wxcrypt.ErrSignature},
	} {
		if err := e.srv.SetPushFault(compID, tc.fault); err != nil {
			t.Fatal(err)
		}
		p, err := e.srv.PushTicket(t.Context(), compID)
		if err != nil {
			t.Fatal(err)
		}
		r := e.rc.next(t)
		if !errors.Is(r.err, tc.want) && !(tc.want == wxcrypt.ErrCiphertext && errors.Is(r.err, wxcrypt.ErrAppID)) {
			t.Errorf("%+v: receiver error %v, want %v", tc.fault, r.err, tc.want)
		}
		if p.Accepted() || p.Status != 400 {
			t.Errorf("%+v: push recorded as %+v", tc.fault, p)
		}
	}
	if err := e.srv.SetPushFault(compID, PushFault{}); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.SetPlatformKey(compID, otherKey); err != nil {
		t.Fatal(err)
	}
	_, _ = e.srv.PushTicket(t.Context(), compID)
	if r := e.rc.next(t); r.err == nil {
		t.Fatal("a receiver with the old key accepted a push made with the new key")
	}
	rotated := newReceiver(t, wxcrypt.Config{Token: compToken, AppID: compID, Key: otherKey, PreviousKey: compKey})
	e.srv.mu.Lock()
	e.srv.platforms[compID].cfg.PushURL = rotated.srv.URL
	e.srv.mu.Unlock()
	_, _ = e.srv.PushTicket(t.Context(), compID)
	if r := rotated.next(t); r.err != nil {
		t.Fatalf("a receiver with the new key refused: %v", r.err)
	}
}
