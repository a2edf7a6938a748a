package fetcher_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/wxcrypt"
)

const (
	simComp      = "wxsimcomp0000001"
	simCompToken = "sim-msg-token"
	simCompKey   = "Q0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaMDEyMzQ1Njc"
	simAuthz     = "wxsimauth0000001"
)

// platformSim runs a simulator with one platform whose pushes a wxcrypt
// receiver decrypts into events.
func platformSim(t *testing.T, p wechattest.Platform) (*wechattest.Server, *fetcher.Client, <-chan wxcrypt.Event) {
	t.Helper()
	sim, c := newSim(t, wechattest.Config{})
	crypt, err := wxcrypt.New(wxcrypt.Config{Token: simCompToken, AppID: simComp, Key: simCompKey})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan wxcrypt.Event, 10)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		q := r.URL.Query()
		op, err := crypt.Open(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), body)
		var ev wxcrypt.Event
		if err == nil {
			ev, err = wxcrypt.ParseEvent(op.Msg)
		}
		if err != nil {
			t.Errorf("receiver: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		events <- ev
		_, _ = io.WriteString(w, "success")
	}))
	t.Cleanup(rc.Close)
	p.AppID, p.Secret, p.Token, p.EncodingAESKey, p.PushURL = simComp, simSecret, simCompToken, simCompKey, rc.URL
	if p.TicketEvery == 0 {
		p.TicketEvery = -1
	}
	if err := sim.AddPlatform(p); err != nil {
		t.Fatal(err)
	}
	return sim, c, events
}

func nextEvent(t *testing.T, events <-chan wxcrypt.Event) wxcrypt.Event {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no push within 10 s")
	}
	return wxcrypt.Event{}
}

// TestPlatformFlowAgainstSimulator: ticket push -> component token ->
// pre-auth code -> authorization push -> code exchange -> refreshes with a
// rotating refresh token; a lost rotation gives 61023, recovered from the
// authorizer list.
func TestPlatformFlowAgainstSimulator(t *testing.T) {
	sim, c, events := platformSim(t, wechattest.Platform{RotateRefresh: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := sim.PushTicket(ctx, simComp); err != nil {
		t.Fatal(err)
	}
	ticket, ok := wxcrypt.TicketOf(nextEvent(t, events))
	if !ok {
		t.Fatal("first push is not a ticket")
	}
	ctok, err := c.ComponentToken(ctx, simComp, simSecret, ticket.Value)
	if err != nil || ctok.ExpiresIn != 2*time.Hour {
		t.Fatalf("component token: %+v, %v", ctok, err)
	}
	pre, err := c.CreatePreAuthCode(ctx, ctok.Value, simComp)
	if err != nil || pre.Code == "" {
		t.Fatalf("pre-auth code: %v, %v", pre, err)
	}
	if _, err := sim.Authorize(ctx, simComp, simAuthz, wechattest.AuthorizeOptions{PreAuthCode: pre.Code}); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, events)
	if ev.InfoType != wxcrypt.InfoAuthorized || ev.PreAuthCode != pre.Code {
		t.Fatalf("authorization event %v", ev)
	}
	auth, err := c.QueryAuth(ctx, ctok.Value, simComp, ev.AuthorizationCode)
	if err != nil || auth.AuthorizerAppID != simAuthz || auth.RefreshToken == "" || len(auth.FuncInfo) == 0 {
		t.Fatalf("query auth: %v, %v", auth, err)
	}
	if _, err := c.QueryAuth(ctx, ctok.Value, simComp, ev.AuthorizationCode); !fetcher.IsAuthCodeError(err) || fetcher.ClassOf(err) != fetcher.Permanent {
		t.Fatalf("second exchange: %v, want a permanent code error", err)
	}
	if n := sim.Exchanges(ev.AuthorizationCode); n != 1 {
		t.Errorf("exchanges = %d, want 1", n)
	}

	at, err := c.AuthorizerToken(ctx, ctok.Value, simComp, simAuthz, auth.RefreshToken)
	if err != nil || !at.Rotated || at.RefreshToken == auth.RefreshToken {
		t.Fatalf("refresh: %v (rotated %v), %v", at, at.Rotated, err)
	}
	if !sim.Valid(at.AccessToken, time.Now()) {
		t.Error("authorizer token not valid at the simulator")
	}
	// The caller "loses" the rotated refresh token and retries with the
	// one it stored: 61023, recognisable, not retried.
	_, err = c.AuthorizerToken(ctx, ctok.Value, simComp, simAuthz, auth.RefreshToken)
	if !fetcher.IsRefreshTokenInvalid(err) || fetcher.ClassOf(err) != fetcher.Permanent {
		t.Fatalf("stale refresh token: %v, want 61023", err)
	}
	if strings.Contains(err.Error(), auth.RefreshToken) || strings.Contains(err.Error(), ctok.Value) {
		t.Errorf("a token in the error %q", err)
	}
	page, err := c.AuthorizerList(ctx, ctok.Value, simComp, 0, fetcher.MaxAuthorizerPage)
	if err != nil || page.Total != 1 || len(page.Authorizers) != 1 || page.Authorizers[0].RefreshToken != at.RefreshToken {
		t.Fatalf("recovery list: %+v, %v", page, err)
	}
	if _, err := c.AuthorizerToken(ctx, ctok.Value, simComp, simAuthz, page.Authorizers[0].RefreshToken); err != nil {
		t.Fatalf("refresh with the recovered token: %v", err)
	}
	if err := c.StartPushTicket(ctx, simComp, simSecret); err != nil {
		t.Fatalf("start push ticket: %v", err)
	}
}

// TestPlatformErrorsAgainstSimulator: the simulator's refusals reach the
// caller as the classes and helpers the leader loop branches on.
func TestPlatformErrorsAgainstSimulator(t *testing.T) {
	sim, c, events := platformSim(t, wechattest.Platform{})
	ctx := context.Background()
	if _, err := c.ComponentToken(ctx, simComp, simSecret, "ticket@@@never-pushed"); !fetcher.IsTicketError(err) {
		t.Errorf("unknown ticket: %v, want a ticket error", err)
	}
	_, _ = sim.PushTicket(ctx, simComp)
	ticket, _ := wxcrypt.TicketOf(nextEvent(t, events))
	if err := sim.Refuse(simComp, nil, 0); err != nil {
		t.Fatal(err)
	}
	_, err := c.ComponentToken(ctx, simComp, simSecret, ticket.Value)
	var ae *fetcher.APIError
	if !errors.As(err, &ae) || ae.Code != fetcher.CodeIPNotRegistered || !ae.HostSpecific() {
		t.Errorf("refused IP: %v, want a host-specific 61004", err)
	}
	sim.ClearRefusals("")
	ctok, err := c.ComponentToken(ctx, simComp, simSecret, ticket.Value)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ComponentToken(ctx, simComp, simSecret, ticket.Value); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreatePreAuthCode(ctx, "not-a-token", simComp); fetcher.ClassOf(err) != fetcher.TokenDead {
		t.Errorf("bad component token: %v, want TokenDead", err)
	}
	sim.SetFault(wechattest.Fault{Mode: wechattest.Fault5xx, AppID: simAuthz, Count: 1})
	_, err = c.AuthorizerToken(ctx, ctok.Value, simComp, simAuthz, "refreshtoken@@@x")
	if fetcher.ClassOf(err) != fetcher.Ambiguous {
		t.Errorf("5xx on refresh: %v, want Ambiguous (never retried: WeChat may have rotated)", err)
	}
	if n := sim.MaxInFlight(wechattest.KindAuthorizer, simAuthz); n != 1 {
		t.Errorf("MaxInFlight = %d, want 1", n)
	}
	var calls int
	for _, f := range sim.Ledger() {
		if f.Kind == wechattest.KindAuthorizer {
			calls++
		}
	}
	if calls != 1 {
		t.Errorf("%d authorizer calls, want 1: an ambiguous answer is not retried", calls)
	}
}

// TestAuthorizerListRecoversTenThousand: paging api_get_authorizer_list
// 500 at a time recovers the refresh tokens of 10,000 authorizers.
func TestAuthorizerListRecoversTenThousand(t *testing.T) {
	sim, c, events := platformSim(t, wechattest.Platform{})
	ctx := context.Background()
	const n = 10000
	want := make(map[string]string, n)
	for i := range n {
		id := fmt.Sprintf("wxbench%011d", i)
		rt, err := sim.SeedAuthorizer(simComp, id)
		if err != nil {
			t.Fatal(err)
		}
		want[id] = rt
	}
	_, _ = sim.PushTicket(ctx, simComp)
	ticket, _ := wxcrypt.TicketOf(nextEvent(t, events))
	ctok, err := c.ComponentToken(ctx, simComp, simSecret, ticket.Value)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	pages := 0
	for off := 0; ; off += fetcher.MaxAuthorizerPage {
		p, err := c.AuthorizerList(ctx, ctok.Value, simComp, off, fetcher.MaxAuthorizerPage)
		if err != nil || p.Total != n {
			t.Fatalf("page at %d: total %d, %v", off, p.Total, err)
		}
		pages++
		for _, a := range p.Authorizers {
			got[a.AppID] = a.RefreshToken
		}
		if off+len(p.Authorizers) >= p.Total {
			break
		}
	}
	if pages != n/fetcher.MaxAuthorizerPage || len(got) != n {
		t.Fatalf("%d pages, %d authorizers; want %d and %d", pages, len(got), n/fetcher.MaxAuthorizerPage, n)
	}
	for id, rt := range want {
		if got[id] != rt {
			t.Fatalf("%s: recovered a different refresh token", id)
		}
	}
}
