package wechattest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/wxcrypt"
)

const (
	compID     = "wxcomp0000000001"
	compSecret = "comp-secret"
	compToken  = "msgtoken"
	compKey    = "Q0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaMDEyMzQ1Njc"
	otherKey   = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA"
)

// received is one push as a platform's event URL saw it.
type received struct {
	event wxcrypt.Event
	err   error // verification, decryption or parse error
	query url.Values
}

// receiver is a platform's authorization-event URL: it verifies and
// decrypts every push with wxcrypt and answers "success" when it could.
type receiver struct {
	srv    *httptest.Server
	crypt  *wxcrypt.Crypter
	events chan received
}

func newReceiver(t *testing.T, cfg wxcrypt.Config) *receiver {
	t.Helper()
	c, err := wxcrypt.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{crypt: c, events: make(chan received, 100)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		q := r.URL.Query()
		got := received{query: q}
		op, err := c.Open(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), body)
		if err == nil {
			got.event, err = wxcrypt.ParseEvent(op.Msg)
		}
		got.err = err
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
		} else {
			_, _ = io.WriteString(w, "success")
		}
		rc.events <- got
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// next waits for the next push, at most 10 s.
func (rc *receiver) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-rc.events:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no push within 10 s")
	}
	return received{}
}

// platformEnv is a simulator with one platform on a fake clock whose pushes
// go to a receiver; scheduled pushes are off unless every > 0.
type platformEnv struct {
	*env
	rc *receiver
}

func newPlatformEnv(t *testing.T, cfg Config, p Platform) *platformEnv {
	t.Helper()
	e := newEnv(t, cfg)
	rc := newReceiver(t, wxcrypt.Config{Token: compToken, AppID: compID, Key: compKey})
	p.AppID, p.Secret, p.Token, p.PushURL = compID, compSecret, compToken, rc.srv.URL+"/events"
	if p.EncodingAESKey == "" {
		p.EncodingAESKey = compKey
	}
	if p.TicketEvery == 0 {
		p.TicketEvery = -1
	}
	if err := e.srv.AddPlatform(p); err != nil {
		t.Fatal(err)
	}
	return &platformEnv{env: e, rc: rc}
}

// platformAnswer is the union of the component APIs' answers.
type platformAnswer struct {
	Errcode                int    `json:"errcode"`
	Errmsg                 string `json:"errmsg"`
	ComponentAccessToken   string `json:"component_access_token"`
	ExpiresIn              int    `json:"expires_in"`
	PreAuthCode            string `json:"pre_auth_code"`
	AuthorizerAccessToken  string `json:"authorizer_access_token"`
	AuthorizerRefreshToken string `json:"authorizer_refresh_token"`
	AuthorizationInfo      struct {
		AuthorizerAppID string `json:"authorizer_appid"`
		AccessToken     string `json:"authorizer_access_token"`
		RefreshToken    string `json:"authorizer_refresh_token"`
		FuncInfo        []struct {
			Category struct{ ID int } `json:"funcscope_category"`
		} `json:"func_info"`
	} `json:"authorization_info"`
	TotalCount int `json:"total_count"`
	List       []struct {
		AppID        string `json:"authorizer_appid"`
		RefreshToken string `json:"refresh_token"`
		AuthTime     int64  `json:"auth_time"`
	} `json:"list"`
}

// component posts body to /cgi-bin/component/api with the component token.
func (e *platformEnv) component(api, tok string, body map[string]any) platformAnswer {
	e.t.Helper()
	if body["component_appid"] == nil {
		body["component_appid"] = compID
	}
	b, _ := json.Marshal(body)
	path := "/cgi-bin/component/" + api
	if tok != "" {
		path += "?component_access_token=" + url.QueryEscape(tok)
	}
	status, out := e.raw(http.MethodPost, path, b)
	var a platformAnswer
	if status != http.StatusOK || json.Unmarshal(out, &a) != nil {
		e.t.Errorf("%s: status %d body %q", api, status, out)
	}
	return a
}

// ticket pushes a ticket and returns it as the receiver decrypted it.
func (e *platformEnv) ticket() string {
	e.t.Helper()
	if _, err := e.srv.PushTicket(e.t.Context(), compID); err != nil {
		e.t.Fatal(err)
	}
	r := e.rc.next(e.t)
	if r.err != nil || r.event.InfoType != wxcrypt.InfoVerifyTicket {
		e.t.Fatalf("ticket push: %v, %v", r.event, r.err)
	}
	return r.event.ComponentVerifyTicket
}

func (e *platformEnv) componentToken(ticket string) platformAnswer {
	e.t.Helper()
	return e.component("api_component_token", "", map[string]any{"component_appsecret": compSecret, "component_verify_ticket": ticket})
}

// authorize authorizes appid and returns the code the receiver got.
func (e *platformEnv) authorize(appid string) string {
	e.t.Helper()
	a, err := e.srv.Authorize(e.t.Context(), compID, appid, AuthorizeOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	r := e.rc.next(e.t)
	if r.err != nil || r.event.AuthorizationCode != a.Code || r.event.AuthorizerAppID != appid {
		e.t.Fatalf("authorized push: %v (code matches %v), %v", r.event, r.event.AuthorizationCode == a.Code, r.err)
	}
	return a.Code
}
