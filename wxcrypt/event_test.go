package wxcrypt

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The decrypted examples of the official pages:
// doc/oplatform/Third-party_Platforms/2.0/api/Before_Develop/component_verify_ticket.html
// and .../authorize_event.html (values replaced where the page has
// placeholders).
const (
	ticketEvent = `<xml>
<AppId>some_appid</AppId>
<CreateTime>1413192605</CreateTime>
<InfoType>component_verify_ticket</InfoType>
<ComponentVerifyTicket>some_verify_ticket</ComponentVerifyTicket>
</xml>`
	authorizedEvent = `<xml><AppId>第三方平台appid</AppId><CreateTime>1413192760</CreateTime><InfoType>authorized</InfoType><AuthorizerAppid>公众号appid</AuthorizerAppid><AuthorizationCode>授权码</AuthorizationCode><AuthorizationCodeExpiredTime>过期时间</AuthorizationCodeExpiredTime><PreAuthCode>预授权码</PreAuthCode></xml>`
)

func TestParseEvent(t *testing.T) {
	e, err := ParseEvent([]byte(ticketEvent))
	if err != nil {
		t.Fatal(err)
	}
	if e.AppID != "some_appid" || e.InfoType != InfoVerifyTicket || e.ComponentVerifyTicket != "some_verify_ticket" || e.CreateTime.Unix() != 1413192605 {
		t.Fatalf("ticket event = %+v (ticket %q)", e, e.ComponentVerifyTicket)
	}
	tk, ok := TicketOf(e)
	if !ok || tk.Value != "some_verify_ticket" || !tk.CreateTime.Equal(e.CreateTime) {
		t.Fatalf("TicketOf = %v %v", tk, ok)
	}
	// The page's placeholder text in a time field is refused.
	if _, err := ParseEvent([]byte(authorizedEvent)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("authorized with a non-numeric expiry: err = %v, want ErrMalformed", err)
	}
	auth := strings.Replace(authorizedEvent, "过期时间", "1413196360", 1)
	e, err = ParseEvent([]byte(auth))
	if err != nil {
		t.Fatal(err)
	}
	if e.InfoType != InfoAuthorized || e.AuthorizerAppID != "公众号appid" || e.AuthorizationCode != "授权码" ||
		e.AuthorizationCodeExpiredTime.Unix() != 1413196360 || e.PreAuthCode != "预授权码" {
		t.Fatalf("authorized event = %+v", e)
	}
	if _, ok := TicketOf(e); ok {
		t.Fatal("TicketOf(authorized) ok")
	}
	for _, s := range []string{fmt.Sprint(e), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e), fmt.Sprint(tk), fmt.Sprintf("%#v", tk)} {
		if strings.Contains(s, "授权码") || strings.Contains(s, "some_verify_ticket") {
			t.Errorf("printed event shows its code or ticket: %s", s)
		}
	}
}

func TestParseEventRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       error
	}{
		{"unknown info type", `<xml><AppId>a</AppId><CreateTime>1</CreateTime><InfoType>notify_third_fasteregister</InfoType></xml>`, ErrUnknownEvent},
		{"no info type", `<xml><AppId>a</AppId><CreateTime>1</CreateTime></xml>`, ErrMalformed},
		{"ticket without ticket", `<xml><AppId>a</AppId><CreateTime>1</CreateTime><InfoType>component_verify_ticket</InfoType></xml>`, ErrMalformed},
		{"ticket without time", `<xml><AppId>a</AppId><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>t</ComponentVerifyTicket></xml>`, ErrMalformed},
		{"ticket with a negative time", `<xml><AppId>a</AppId><CreateTime>-5</CreateTime><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>t</ComponentVerifyTicket></xml>`, ErrMalformed},
		{"no appid", `<xml><CreateTime>1</CreateTime><InfoType>unauthorized</InfoType><AuthorizerAppid>b</AuthorizerAppid></xml>`, ErrMalformed},
		{"authorized without code", `<xml><AppId>a</AppId><CreateTime>1</CreateTime><InfoType>authorized</InfoType><AuthorizerAppid>b</AuthorizerAppid></xml>`, ErrMalformed},
		{"unauthorized without authorizer", `<xml><AppId>a</AppId><CreateTime>1</CreateTime><InfoType>unauthorized</InfoType></xml>`, ErrMalformed},
		{"wrong root", `<msg><AppId>a</AppId></msg>`, ErrMalformed},
		{"doctype", `<!DOCTYPE xml [<!ENTITY a "b">]><xml><AppId>&a;</AppId></xml>`, ErrMalformed},
		{"not closed", `<xml><AppId>a</AppId>`, ErrMalformed},
		{"two roots", `<xml></xml><xml></xml>`, ErrMalformed},
		{"text after", `<xml></xml>junk`, ErrMalformed},
		{"empty", ``, ErrMalformed},
		{"too long", `<xml><AppId>` + strings.Repeat("a", MaxBodyLen) + `</AppId></xml>`, ErrMalformed},
		{"other charset", `<?xml version="1.0" encoding="GBK"?><xml></xml>`, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEvent([]byte(tc.body))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	e, err := ParseEvent([]byte(`<xml><AppId>a</AppId><CreateTime>1</CreateTime><InfoType>unauthorized</InfoType><AuthorizerAppid>wxb</AuthorizerAppid></xml>`))
	if err != nil || e.AuthorizerAppID != "wxb" {
		t.Fatalf("unauthorized: %+v %v", e, err)
	}
}

func TestParseEnvelope(t *testing.T) {
	e, err := ParseEnvelope([]byte("<xml>\n <AppId><![CDATA[wxa]]></AppId>\n <Encrypt><![CDATA[abc=]]></Encrypt>\n</xml>\n"))
	if err != nil || e.AppID != "wxa" || e.Encrypt != "abc=" {
		t.Fatalf("ParseEnvelope = %+v, %v", e, err)
	}
	if _, err := ParseEnvelope([]byte("<xml><AppId>wxa</AppId></xml>")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("no Encrypt: err = %v", err)
	}
	// A parse error does not quote the body.
	_, err = ParseEnvelope([]byte("<xml><Encrypt>SECRETVALUE</Encrypt"))
	if err == nil || strings.Contains(err.Error(), "SECRETVALUE") {
		t.Fatalf("err = %v", err)
	}
}

func TestNewerTicket(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	tk := func(v string, at time.Time) Ticket { return Ticket{Value: v, CreateTime: at} }
	for _, tc := range []struct {
		name             string
		stored, incoming Ticket
		want             bool
	}{
		{"first ticket", Ticket{}, tk("a", t0), true},
		{"newer", tk("a", t0), tk("b", t0.Add(10*time.Minute)), true},
		{"replayed old ticket", tk("b", t0.Add(10*time.Minute)), tk("a", t0), false},
		{"the same push again", tk("a", t0), tk("a", t0), false},
		{"another ticket in the same second", tk("a", t0), tk("b", t0), false},
		{"incoming without value", tk("a", t0), tk("", t0.Add(time.Hour)), false},
		{"incoming without time", tk("a", t0), tk("b", time.Time{}), false},
	} {
		if got := NewerTicket(tc.stored, tc.incoming); got != tc.want {
			t.Errorf("%s: NewerTicket = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCheckAge(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		created time.Time
		ok      bool
	}{
		{now, true},
		{now.Add(-12 * time.Hour), true},
		{now.Add(-12*time.Hour - time.Second), false},
		{now.Add(5 * time.Minute), true},
		{now.Add(5*time.Minute + time.Second), false},
		{time.Time{}, false},
	} {
		err := CheckAge(tc.created, now, 12*time.Hour, 5*time.Minute)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrStale)) {
			t.Errorf("CheckAge(%v) = %v, want ok %v", tc.created.Sub(now), err, tc.ok)
		}
	}
	if ts, err := ParseTimestamp("1409659813"); err != nil || ts.Unix() != 1409659813 {
		t.Errorf("ParseTimestamp = %v, %v", ts, err)
	}
	for _, s := range []string{"", "x", "-1", "0", "99999999999999999999"} {
		if _, err := ParseTimestamp(s); err == nil {
			t.Errorf("ParseTimestamp(%q) = nil error", s)
		}
	}
}

// TestReplayedTicketRefused: a captured push replayed later still has a
// valid signature and decrypts; what refuses its old ticket is
// NewerTicket against the stored one, and CheckAge once it is past the
// ticket's 12 h validity.
func TestReplayedTicketRefused(t *testing.T) {
	c := testCrypter(t)
	push := func(ticket string, at time.Time) (body []byte, sig, ts, nonce string) {
		msg := fmt.Sprintf("<xml><AppId>%s</AppId><CreateTime>%d</CreateTime><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>%s</ComponentVerifyTicket></xml>", testAppID, at.Unix(), ticket)
		ts, nonce = fmt.Sprint(at.Unix()), "nonce"+ticket
		body, sig, err := c.Seal([]byte(msg), ts, nonce)
		if err != nil {
			t.Fatal(err)
		}
		return body, sig, ts, nonce
	}
	receive := func(body []byte, sig, ts, nonce string) Ticket {
		op, err := c.Open(sig, ts, nonce, body)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		e, err := ParseEvent(op.Msg)
		if err != nil {
			t.Fatal(err)
		}
		tk, _ := TicketOf(e)
		return tk
	}
	t0 := time.Unix(1700000000, 0)
	oldBody, oldSig, oldTS, oldNonce := push("OLD", t0)
	var stored Ticket
	if tk := receive(oldBody, oldSig, oldTS, oldNonce); NewerTicket(stored, tk) {
		stored = tk
	}
	if tk := receive(push("NEW", t0.Add(10*time.Minute))); NewerTicket(stored, tk) {
		stored = tk
	}
	replayed := receive(oldBody, oldSig, oldTS, oldNonce) // the signature is still valid
	if NewerTicket(stored, replayed) {
		t.Fatal("the replayed old ticket would replace the newer one")
	}
	if stored.Value != "NEW" {
		t.Fatalf("stored %q, want NEW", stored.Value)
	}
	// Replayed to a store that lost its ticket, 13 hours later: too old.
	if err := CheckAge(replayed.CreateTime, t0.Add(13*time.Hour), 12*time.Hour, 5*time.Minute); !errors.Is(err, ErrStale) {
		t.Fatalf("CheckAge of a 13 h old ticket: %v, want ErrStale", err)
	}
}
