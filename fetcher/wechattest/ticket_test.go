package wechattest

import (
	"testing"
	"time"
)

func TestTicket(t *testing.T) {
	e := newEnv(t, Config{})
	access := e.token(e.classic())
	first := e.ticket(access, "jsapi")
	t1 := e.token(first)
	if first.Errmsg != "ok" || first.ExpiresIn != 7200 {
		t.Errorf("answer = %+v, want errmsg ok, expires_in 7200", first)
	}
	e.clock.Advance(time.Minute)
	t2 := e.token(e.ticket(access, "jsapi"))
	if t2 == t1 {
		t.Fatalf("second ticket is the first one")
	}
	fetched2 := e.clock.Now()
	if !e.srv.Valid(t1, fetched2.Add(DefaultOverlap-time.Nanosecond)) || e.srv.Valid(t1, fetched2.Add(DefaultOverlap)) {
		t.Errorf("old ticket: want valid for exactly Overlap after the next fetch")
	}
	card := e.token(e.ticket(access, "wx_card"))
	if !e.srv.Valid(t2, e.clock.Now()) {
		t.Errorf("a wx_card ticket invalidated the jsapi ticket")
	}
	if e.srv.Current(appID, KindTicket) != t2 || e.srv.Current(appID, "wx_card") != card {
		t.Errorf("Current does not name the newest tickets")
	}
	// A ticket is not an access token.
	if got := e.use(t2); got != 40001 {
		t.Errorf("getcallbackip with a ticket: errcode = %d, want 40001", got)
	}

	st := e.token(e.stable(false))
	e.token(e.ticket(st, "jsapi"))
	for _, f := range e.srv.Ledger() {
		if f.Kind == KindTicket && (f.AppID != appID || !f.Issued) {
			t.Errorf("ledger line %+v, want an issued ticket for %s", f, appID)
		}
	}
}

func TestTicketErrors(t *testing.T) {
	e := newEnv(t, Config{DailyQuota: 3})
	dead := e.token(e.classic())
	e.token(e.classic())
	live := e.token(e.classic()) // the third classic call kills the first token
	wecom := e.token(e.wecomAs(corpID, corpSecret))
	expiring := e.token(e.stable(false))

	tests := []struct {
		name, tok, typ string
		advance        time.Duration
		want           int
	}{
		{"missing token", "", "jsapi", 0, 41001},
		{"unknown token", "garbage", "jsapi", 0, 40001},
		{"dead token", dead, "jsapi", 0, 40001},
		{"wecom token", wecom, "jsapi", 0, 40001},
		{"bad type", live, "foo", 0, 40097},
		{"missing type", live, "", 0, 40097},
		{"ok 1", live, "jsapi", 0, 0},
		{"ok 2", live, "wx_card", 0, 0},
		{"ok 3", live, "jsapi", 0, 0},
		{"quota", live, "jsapi", 0, 45009},
		{"expired token", expiring, "jsapi", DefaultTokenTTL, 42001},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.clock.Advance(tc.advance)
			wantCode(t, e.ticket(tc.tok, tc.typ), tc.want)
		})
	}
}
