package wechattest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/wxcrypt"
)

const authAppID = "wxauth0000000001"

// TestAuthorizationCodeIsSingleUse: the pushed code is exchanged once;
// a second exchange, an unknown and an expired code are refused, and the
// ledger counts one exchange.
func TestAuthorizationCodeIsSingleUse(t *testing.T) {
	e := newPlatformEnv(t, Config{}, Platform{CodeTTL: 10 * time.Minute})
	ctok := e.componentToken(e.ticket()).ComponentAccessToken
	pre := e.component("api_create_preauthcode", ctok, map[string]any{})
	if pre.PreAuthCode == "" || pre.ExpiresIn != 1800 {
		t.Fatalf("pre-auth code: %+v", pre)
	}
	a, err := e.srv.Authorize(t.Context(), compID, authAppID, AuthorizeOptions{PreAuthCode: pre.PreAuthCode, FuncInfo: []int{1, 15}})
	if err != nil {
		t.Fatal(err)
	}
	r := e.rc.next(t)
	ev := r.event
	if r.err != nil || ev.InfoType != wxcrypt.InfoAuthorized || ev.AuthorizationCode != a.Code || ev.PreAuthCode != pre.PreAuthCode ||
		!ev.AuthorizationCodeExpiredTime.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("authorized event %v, %v", ev, r.err)
	}
	q := e.component("api_query_auth", ctok, map[string]any{"authorization_code": a.Code})
	info := q.AuthorizationInfo
	if q.Errcode != 0 || info.AuthorizerAppID != authAppID || info.AccessToken == "" || info.RefreshToken == "" ||
		len(info.FuncInfo) != 2 || info.FuncInfo[1].Category.ID != 15 {
		t.Fatalf("query auth: %+v", q)
	}
	if !e.srv.Valid(info.AccessToken, e.clock.Now()) || e.srv.Current(authAppID, KindAuthorizer) != info.AccessToken {
		t.Error("the authorizer token is not valid and current")
	}
	if again := e.component("api_query_auth", ctok, map[string]any{"authorization_code": a.Code}); again.Errcode != 61010 {
		t.Errorf("second exchange: %+v, want 61010", again)
	}
	if n := e.srv.Exchanges(a.Code); n != 1 {
		t.Errorf("Exchanges = %d, want 1", n)
	}
	if u := e.component("api_query_auth", ctok, map[string]any{"authorization_code": "queryauthcode@@@nope"}); u.Errcode != 61009 {
		t.Errorf("unknown code: %+v, want 61009", u)
	}
	late := e.authorize(authAppID)
	e.clock.Advance(10 * time.Minute)
	ctok = e.componentToken(e.ticket()).ComponentAccessToken
	if x := e.component("api_query_auth", ctok, map[string]any{"authorization_code": late}); x.Errcode != 61010 {
		t.Errorf("expired code: %+v, want 61010", x)
	}
	if x := e.component("api_query_auth", "not-a-token", map[string]any{"authorization_code": late}); x.Errcode != 40001 {
		t.Errorf("bad component token: %+v, want 40001", x)
	}
	// The calls carried the authorizer and the code in the ledger.
	var lines int
	for _, f := range e.srv.Ledger() {
		if f.Kind == KindQueryAuth && f.Code == a.Code {
			lines++
			if f.AppID != authAppID || f.Component != compID {
				t.Errorf("ledger line %+v", f)
			}
		}
	}
	if lines != 2 {
		t.Errorf("%d ledger lines for the code, want 2", lines)
	}
}

// TestRefreshTokenRotation: with RotateRefresh 1 every refresh returns a
// new refresh token and the old one is refused (61023) unless
// KeepPreviousRefresh; with 0 it never changes. Authorizer tokens overlap
// like classic tokens; a re-authorization kills the old refresh token.
func TestRefreshTokenRotation(t *testing.T) {
	for _, tc := range []struct {
		rotate   int
		keepPrev bool
	}{{0, false}, {1, false}, {1, true}, {2, false}} {
		t.Run(fmt.Sprintf("rotate %d keep %v", tc.rotate, tc.keepPrev), func(t *testing.T) {
			e := newPlatformEnv(t, Config{Overlap: 5 * time.Minute}, Platform{RotateRefresh: tc.rotate, KeepPreviousRefresh: tc.keepPrev})
			ctok := e.componentToken(e.ticket()).ComponentAccessToken
			q := e.component("api_query_auth", ctok, map[string]any{"authorization_code": e.authorize(authAppID)})
			rt, at := q.AuthorizationInfo.RefreshToken, q.AuthorizationInfo.AccessToken
			refresh := func(rt string) platformAnswer {
				return e.component("api_authorizer_token", ctok, map[string]any{"authorizer_appid": authAppID, "authorizer_refresh_token": rt})
			}
			var prev string
			for i := 1; i <= 4; i++ {
				e.clock.Advance(time.Minute)
				a := refresh(rt)
				if a.Errcode != 0 || a.AuthorizerAccessToken == "" || a.ExpiresIn != 7200 {
					t.Fatalf("refresh %d: %+v", i, a)
				}
				rotated := tc.rotate > 0 && i%tc.rotate == 0
				if (a.AuthorizerRefreshToken != rt) != rotated {
					t.Fatalf("refresh %d: rotated %v, want %v", i, a.AuthorizerRefreshToken != rt, rotated)
				}
				now := e.clock.Now()
				if !e.srv.Valid(at, now.Add(5*time.Minute-time.Second)) || e.srv.Valid(at, now.Add(5*time.Minute)) {
					t.Fatalf("refresh %d: the previous authorizer token does not live exactly the overlap", i)
				}
				if rotated {
					prev, rt = rt, a.AuthorizerRefreshToken
				}
				if e.srv.RefreshToken(compID, authAppID) != rt {
					t.Fatalf("RefreshToken differs from the newest")
				}
				at = a.AuthorizerAccessToken
			}
			if prev != "" {
				old := refresh(prev)
				if tc.keepPrev != (old.Errcode == 0) || (!tc.keepPrev && old.Errcode != 61023) {
					t.Errorf("refresh with the previous refresh token: %+v (keep %v)", old, tc.keepPrev)
				}
			}
			if x := refresh("refreshtoken@@@made-up"); x.Errcode != 61023 {
				t.Errorf("made-up refresh token: %+v, want 61023", x)
			}
			// Re-authorization: the new code's exchange issues a new refresh
			// token and the old one dies.
			code := e.authorize(authAppID)
			q = e.component("api_query_auth", ctok, map[string]any{"authorization_code": code})
			if q.AuthorizationInfo.RefreshToken == rt {
				t.Fatal("re-authorization kept the refresh token")
			}
			if x := refresh(rt); x.Errcode != 61023 {
				t.Errorf("refresh token from before re-authorization: %+v, want 61023", x)
			}
		})
	}
}

// TestAuthorizerListPagesAndUnauthorize: the list pages 500 at a time with
// the newest refresh tokens ("" before a code exchange); unauthorize pushes
// its event, kills the tokens at once and drops the account from the list.
func TestAuthorizerListPagesAndUnauthorize(t *testing.T) {
	e := newPlatformEnv(t, Config{}, Platform{})
	ctok := e.componentToken(e.ticket()).ComponentAccessToken
	const n = 1203
	for i := range n {
		if _, err := e.srv.Authorize(t.Context(), compID, fmt.Sprintf("wxauth%010d", i), AuthorizeOptions{}); err != nil {
			t.Fatal(err)
		}
		e.rc.next(t)
	}
	q := e.component("api_query_auth", ctok, map[string]any{"authorization_code": e.authorize("wxauth0000000007")})
	page := func(offset, count int) platformAnswer {
		return e.component("api_get_authorizer_list", ctok, map[string]any{"offset": offset, "count": count})
	}
	seen := map[string]string{}
	for off := 0; ; off += 500 {
		p := page(off, 500)
		if p.Errcode != 0 || p.TotalCount != n {
			t.Fatalf("page at %d: errcode %d total %d", off, p.Errcode, p.TotalCount)
		}
		for _, l := range p.List {
			seen[l.AppID] = l.RefreshToken
		}
		if len(p.List) < 500 {
			break
		}
	}
	if len(seen) != n {
		t.Fatalf("pages listed %d accounts, want %d", len(seen), n)
	}
	if seen["wxauth0000000007"] != q.AuthorizationInfo.RefreshToken || seen["wxauth0000000008"] != "" {
		t.Errorf("refresh tokens in the list: exchanged %q, never exchanged %q", seen["wxauth0000000007"], seen["wxauth0000000008"])
	}
	if p := page(0, 501); p.Errcode != 40170 {
		t.Errorf("count 501: errcode %d, want 40170", p.Errcode)
	}
	if p := page(0, 0); p.Errcode == 0 {
		t.Error("count 0 accepted")
	}

	if _, err := e.srv.Unauthorize(t.Context(), compID, "wxauth0000000007"); err != nil {
		t.Fatal(err)
	}
	r := e.rc.next(t)
	if r.err != nil || r.event.InfoType != wxcrypt.InfoUnauthorized || r.event.AuthorizerAppID != "wxauth0000000007" {
		t.Fatalf("unauthorized push: %v %v", r.event, r.err)
	}
	if e.srv.Valid(q.AuthorizationInfo.AccessToken, e.clock.Now()) {
		t.Error("the authorizer token outlived the unauthorization")
	}
	x := e.component("api_authorizer_token", ctok, map[string]any{"authorizer_appid": "wxauth0000000007", "authorizer_refresh_token": q.AuthorizationInfo.RefreshToken})
	if x.Errcode != 61003 {
		t.Errorf("refresh after unauthorize: %+v, want 61003", x)
	}
	if p := page(0, 10); p.TotalCount != n-1 {
		t.Errorf("total after unauthorize = %d, want %d", p.TotalCount, n-1)
	}
}

// TestInFlightPerCredential: calls held by a latency fault are counted in
// flight per authorizer.
func TestInFlightPerCredential(t *testing.T) {
	e := newPlatformEnv(t, Config{}, Platform{})
	ctok := e.componentToken(e.ticket()).ComponentAccessToken
	q := e.component("api_query_auth", ctok, map[string]any{"authorization_code": e.authorize(authAppID)})
	if got := e.srv.MaxInFlight(KindAuthorizer, authAppID); got != 0 {
		t.Fatalf("MaxInFlight before any refresh = %d", got)
	}
	e.srv.SetFault(Fault{Mode: FaultLatency, Latency: 10 * time.Second, AppID: authAppID})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			e.component("api_authorizer_token", ctok, map[string]any{"authorizer_appid": authAppID, "authorizer_refresh_token": q.AuthorizationInfo.RefreshToken})
		})
	}
	for deadline := time.Now().Add(10 * time.Second); e.srv.MaxInFlight(KindAuthorizer, authAppID) < 2; {
		if time.Now().After(deadline) {
			t.Fatal("the two calls were never in flight together")
		}
		time.Sleep(time.Millisecond) // polling a condition the calls set
	}
	e.srv.ClearFault() // releases both held calls
	wg.Wait()
	if got := e.srv.MaxInFlight(KindAuthorizer, authAppID); got != 2 {
		t.Errorf("MaxInFlight = %d, want 2", got)
	}
}

// TestFaultByKind: a fault limited to one kind of call leaves an
// authorizer's other calls alone: a latency on api_query_auth does not
// slow api_authorizer_token, and the reverse.
func TestFaultByKind(t *testing.T) {
	e := newPlatformEnv(t, Config{}, Platform{})
	ctok := e.componentToken(e.ticket()).ComponentAccessToken
	e.srv.SetFault(Fault{Mode: FaultBusy, Kind: KindAuthorizer, AppID: authAppID, Count: 1})
	q := e.component("api_query_auth", ctok, map[string]any{"authorization_code": e.authorize(authAppID)})
	if q.Errcode != 0 {
		t.Fatalf("api_query_auth under a fault on api_authorizer_token: %+v", q)
	}
	body := map[string]any{"authorizer_appid": authAppID, "authorizer_refresh_token": q.AuthorizationInfo.RefreshToken}
	if a := e.component("api_authorizer_token", ctok, body); a.Errcode != -1 {
		t.Errorf("api_authorizer_token under its fault: errcode %d, want -1", a.Errcode)
	}
	e.srv.SetFault(Fault{Mode: FaultBusy, Kind: KindQueryAuth, Count: 1})
	if a := e.component("api_authorizer_token", ctok, body); a.Errcode != 0 {
		t.Errorf("api_authorizer_token under a fault on api_query_auth: errcode %d, want 0", a.Errcode)
	}
	if q := e.component("api_query_auth", ctok, map[string]any{"authorization_code": e.authorize(authAppID)}); q.Errcode != -1 {
		t.Errorf("api_query_auth under its fault: errcode %d, want -1", q.Errcode)
	}
}

// TestInFlightAll: calls for different authorizers are counted together,
// and a reset counts again from the calls still in progress.
func TestInFlightAll(t *testing.T) {
	e := newPlatformEnv(t, Config{}, Platform{})
	ctok := e.componentToken(e.ticket()).ComponentAccessToken
	ids := []string{authAppID, "wxauth0000000002"}
	refresh := map[string]string{}
	for _, id := range ids {
		q := e.component("api_query_auth", ctok, map[string]any{"authorization_code": e.authorize(id)})
		refresh[id] = q.AuthorizationInfo.RefreshToken
	}
	if got := e.srv.MaxInFlightAll(); got != 1 {
		t.Fatalf("MaxInFlightAll after calls one at a time = %d, want 1", got)
	}
	e.srv.ResetMaxInFlightAll()
	if got := e.srv.MaxInFlightAll(); got != 0 {
		t.Fatalf("MaxInFlightAll after a reset with nothing in flight = %d, want 0", got)
	}
	e.srv.SetFault(Fault{Mode: FaultLatency, Latency: 10 * time.Second})
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			e.component("api_authorizer_token", ctok, map[string]any{"authorizer_appid": id, "authorizer_refresh_token": refresh[id]})
		})
	}
	for deadline := time.Now().Add(10 * time.Second); e.srv.MaxInFlightAll() < 2; {
		if time.Now().After(deadline) {
			t.Fatal("the two calls were never in flight together")
		}
		time.Sleep(time.Millisecond) // polling a condition the calls set
	}
	e.srv.ResetMaxInFlightAll() // both still held
	if got := e.srv.MaxInFlightAll(); got != 2 {
		t.Errorf("MaxInFlightAll after a reset with 2 held = %d, want 2", got)
	}
	e.srv.ClearFault()
	wg.Wait()
	e.srv.ResetMaxInFlightAll()
	if got := e.srv.MaxInFlightAll(); got != 0 {
		t.Errorf("MaxInFlightAll after the calls ended and a reset = %d, want 0", got)
	}
}
