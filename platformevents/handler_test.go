package platformevents_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wxtoken/wxtoken/internal/etcdtest"
	"github.com/wxtoken/wxtoken/platformevents"
	"github.com/wxtoken/wxtoken/seal"
	"github.com/wxtoken/wxtoken/tokenstore"
	"github.com/wxtoken/wxtoken/wxcrypt"
)

const (
	compID   = "wxcomp0000000001"
	msgToken = "msgtoken"
	curKey   = "Q0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaMDEyMzQ1Njc"
	prevKey  = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA"
	wrongKey = "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXowMTIzNDU"
)

func crypter(t *testing.T, key, prev string) *wxcrypt.Crypter {
	t.Helper()
	c, err := wxcrypt.New(wxcrypt.Config{Token: msgToken, AppID: compID, Key: key, PreviousKey: prev})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type fixture struct {
	h     *platformevents.Handler
	mux   *http.ServeMux
	store *tokenstore.Store
	reg   *prometheus.Registry
	now   time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clus := etcdtest.NewCluster(t, 1)
	b := make([]byte, seal.KeySize)
	_, _ = rand.Read(b)
	k, _ := seal.NewKey(b)
	ring, err := seal.NewRing(k)
	if err != nil {
		t.Fatal(err)
	}
	s := tokenstore.New(clus.Client(0), "/w")
	s.SetSealing(tokenstore.Sealing{Sealer: ring})
	f := &fixture{store: s, reg: prometheus.NewRegistry(), now: time.Now().Truncate(time.Second)}
	f.h, err = platformevents.New(platformevents.Config{
		Platforms: []platformevents.Platform{{Name: "saas", Crypter: crypter(t, curKey, prevKey)}},
		Store:     s, Node: "n1", Registerer: f.reg, Now: func() time.Time { return f.now },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.mux = http.NewServeMux()
	f.mux.Handle(platformevents.Pattern, f.h)
	return f
}

// push sends msg sealed by c as WeChat does and returns the answer.
func (f *fixture) push(t *testing.T, platform string, c *wxcrypt.Crypter, msg string, edit func(q url.Values)) *httptest.ResponseRecorder {
	t.Helper()
	ts, nonce := fmt.Sprint(f.now.Unix()), "12345"
	body, sig, err := c.Seal([]byte(msg), ts, nonce)
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"timestamp": {ts}, "nonce": {nonce}, "encrypt_type": {"aes"}, "msg_signature": {sig}}
	if edit != nil {
		edit(q)
	}
	r := httptest.NewRequest("POST", "/v1/platforms/"+platform+"/events?"+q.Encode(), bytes.NewReader(body))
	r.Header.Set("Content-Type", "text/xml")
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, r)
	return w
}

func ticketMsg(ticket string, created time.Time) string {
	return fmt.Sprintf("<xml><AppId>%s</AppId><CreateTime>%d</CreateTime><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>%s</ComponentVerifyTicket></xml>",
		compID, created.Unix(), ticket)
}

func (f *fixture) ticket(t *testing.T) string {
	t.Helper()
	tk, _, err := f.store.Ticket(context.Background(), "saas")
	if err != nil {
		t.Fatal(err)
	}
	return tk.Value
}

func (f *fixture) count(typ, result string) float64 {
	var m dto.Metric
	_ = f.h.Collector().(*prometheus.CounterVec).WithLabelValues("saas", typ, result).Write(&m)
	return m.GetCounter().GetValue()
}

func TestPushes(t *testing.T) {
	f := newFixture(t)
	cur := crypter(t, curKey, "")
	ok := func(w *httptest.ResponseRecorder) {
		t.Helper()
		if w.Code != http.StatusOK || w.Body.String() != "success" {
			t.Fatalf("answer %d %q, want 200 success", w.Code, w.Body)
		}
	}
	refused := func(w *httptest.ResponseRecorder, status int, code string) {
		t.Helper()
		if w.Code != status || !strings.Contains(w.Body.String(), `"code":"`+code+`"`) {
			t.Fatalf("answer %d %s, want %d %s", w.Code, w.Body, status, code)
		}
	}

	ok(f.push(t, "saas", cur, ticketMsg("T1", f.now), nil))
	if got := f.ticket(t); got != "T1" {
		t.Fatalf("ticket %q, want T1", got)
	}
	// The previous key still opens pushes during a key change.
	ok(f.push(t, "saas", crypter(t, prevKey, ""), ticketMsg("T2", f.now.Add(time.Second)), nil))
	// An older ticket, and the same push again: success, not stored.
	ok(f.push(t, "saas", cur, ticketMsg("T0", f.now.Add(-time.Minute)), nil))
	ok(f.push(t, "saas", cur, ticketMsg("T2", f.now.Add(time.Second)), nil))
	// An expired ticket and one from the future.
	ok(f.push(t, "saas", cur, ticketMsg("OLD", f.now.Add(-13*time.Hour)), nil))
	ok(f.push(t, "saas", cur, ticketMsg("AHEAD", f.now.Add(time.Hour)), nil))
	if got := f.ticket(t); got != "T2" {
		t.Fatalf("ticket %q, want T2", got)
	}
	if f.count("ticket", "stored") != 2 || f.count("ticket", "stale") != 4 {
		t.Errorf("ticket counts: stored %v, stale %v; want 2, 4", f.count("ticket", "stored"), f.count("ticket", "stale"))
	}

	// What does not verify is refused, and stores nothing.
	later := ticketMsg("EVIL", f.now.Add(time.Minute))
	refused(f.push(t, "saas", crypter(t, wrongKey, ""), later, nil), 400, "undecryptable")
	refused(f.push(t, "saas", cur, later, func(q url.Values) { q.Set("msg_signature", strings.Repeat("0", 40)) }), 400, "bad_signature")
	refused(f.push(t, "saas", cur, later, func(q url.Values) { q.Set("nonce", "other") }), 400, "bad_signature")
	refused(f.push(t, "saas", cur, later, func(q url.Values) { q.Del("encrypt_type") }), 400, "bad_request")
	other, _ := wxcrypt.New(wxcrypt.Config{Token: msgToken, AppID: "wxother", Key: curKey})
	refused(f.push(t, "saas", other, later, nil), 400, "wrong_appid")
	refused(f.push(t, "nope", cur, later, nil), 404, "unknown_platform")
	if got := f.ticket(t); got != "T2" {
		t.Fatalf("ticket %q after refused pushes, want T2", got)
	}
	if f.count("unknown", "bad_signature") != 2 || f.count("unknown", "undecryptable") != 1 {
		t.Errorf("refusal counts: bad_signature %v, undecryptable %v", f.count("unknown", "bad_signature"), f.count("unknown", "undecryptable"))
	}
	big := httptest.NewRequest("POST", "/v1/platforms/saas/events?encrypt_type=aes", bytes.NewReader(make([]byte, platformevents.MaxBody+1)))
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, big)
	refused(w, 413, "body_too_large")

	// An event this version does not know is acknowledged.
	ok(f.push(t, "saas", cur, fmt.Sprintf("<xml><AppId>%s</AppId><CreateTime>%d</CreateTime><InfoType>notify_third_fasteregister</InfoType></xml>", compID, f.now.Unix()), nil))

	// Authorization: the code once, the authorizer's state by event time.
	auth := func(info, code string, at time.Time) string {
		return fmt.Sprintf("<xml><AppId>%s</AppId><CreateTime>%d</CreateTime><InfoType>%s</InfoType><AuthorizerAppid>wxauth01</AuthorizerAppid>"+
			"<AuthorizationCode>%s</AuthorizationCode><AuthorizationCodeExpiredTime>%d</AuthorizationCodeExpiredTime></xml>",
			compID, at.Unix(), info, code, at.Add(time.Hour).Unix())
	}
	ok(f.push(t, "saas", cur, auth("authorized", "CODE1", f.now), nil))
	ok(f.push(t, "saas", cur, auth("authorized", "CODE1", f.now), nil))
	ok(f.push(t, "saas", cur, auth("authorized", "EXPIRED", f.now.Add(-2*time.Hour)), nil))
	codes, _, err := f.store.Codes(context.Background(), "saas")
	if err != nil || len(codes) != 1 || codes[0].Code != "CODE1" || codes[0].Node != "n1" {
		t.Fatalf("codes = %v, %v; want CODE1 once", codes, err)
	}
	if f.count("authorized", "stored") != 1 || f.count("authorized", "duplicate") != 1 || f.count("authorized", "stale") != 1 {
		t.Errorf("authorized counts: %v stored, %v duplicate, %v stale", f.count("authorized", "stored"), f.count("authorized", "duplicate"), f.count("authorized", "stale"))
	}
	ok(f.push(t, "saas", cur, fmt.Sprintf("<xml><AppId>%s</AppId><CreateTime>%d</CreateTime><InfoType>unauthorized</InfoType><AuthorizerAppid>wxauth01</AuthorizerAppid></xml>",
		compID, f.now.Add(time.Second).Unix()), nil))
	st, _, err := f.store.Authorizer(context.Background(), "saas", "wxauth01")
	if err != nil || st.State != tokenstore.AuthorizerUnauthorized {
		t.Errorf("authorizer state %+v, %v; want unauthorized", st, err)
	}
	// No ticket or code in the metrics.
	mfs, _ := f.reg.Gather()
	if s := fmt.Sprint(mfs); strings.Contains(s, "T2") || strings.Contains(s, "CODE1") {
		t.Error("the metrics show a ticket or a code")
	}
}
