package chaos

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/wxtoken/wxtoken/chaos/checker"
)

// The simulator's Open Platform admin API (see
// fetcher/wechattest/platform_admin.go), for the harness.

// simPush is a push as GET /_sim/pushes lists it.
type simPush struct {
	At       time.Time `json:"at"`
	InfoType string    `json:"info_type"`
	Ticket   string    `json:"ticket,omitempty"`
	WrongKey bool      `json:"wrong_key,omitempty"`
	Status   int       `json:"status"`
	Answer   string    `json:"answer,omitempty"`
	Err      string    `json:"err,omitempty"`
}

func (p simPush) accepted() bool { return p.Status == http.StatusOK && p.Answer == "success" }

// checker returns the push without the ticket or code it carried.
func (p simPush) checker() checker.Push {
	return checker.Push{At: p.At, InfoType: p.InfoType, WrongKey: p.WrongKey, Status: p.Status, Answer: p.Answer, Err: p.Err}
}

// authorize plays an account owner authorizing the platform: WeChat
// pushes "authorized" (or "updateauthorized") with a new code.
func (s *sim) authorize(ctx context.Context, comp, authorizer string) (code string, push simPush, err error) {
	body, _ := json.Marshal(map[string]string{"authorizer_appid": authorizer})
	var a struct {
		Code string  `json:"authorization_code"`
		Push simPush `json:"push"`
	}
	err = s.do(ctx, http.MethodPost, "/_sim/platforms/"+comp+"/authorize", body, &a)
	return a.Code, a.Push, err
}

// pushFault is the body of PUT /_sim/platforms/{appid}/push_fault.
type pushFault struct {
	Stopped  bool `json:"stopped,omitempty"`
	WrongKey bool `json:"wrong_key,omitempty"`
}

func (s *sim) setPushFault(ctx context.Context, comp string, f pushFault) error {
	body, _ := json.Marshal(f)
	return s.do(ctx, http.MethodPut, "/_sim/platforms/"+comp+"/push_fault", body, nil)
}

// refreshToken is an authorizer's newest refresh token at WeChat, and
// whether it is authorized.
func (s *sim) refreshToken(ctx context.Context, comp, authorizer string) (string, bool, error) {
	var a struct {
		RefreshToken string `json:"refresh_token"`
		Authorized   bool   `json:"authorized"`
	}
	err := s.do(ctx, http.MethodGet, "/_sim/platforms/"+comp+"/refresh_token?authorizer="+url.QueryEscape(authorizer), nil, &a)
	return a.RefreshToken, a.Authorized, err
}

func (s *sim) pushes(ctx context.Context) ([]simPush, error) {
	var ps []simPush
	err := s.do(ctx, http.MethodGet, "/_sim/pushes", nil, &ps)
	return ps, err
}

// inFlight is the most calls of kind for id the simulator had in
// progress at once.
func (s *sim) inFlight(ctx context.Context, kind, id string) (int, error) {
	var a struct {
		Max int `json:"max"`
	}
	err := s.do(ctx, http.MethodGet, "/_sim/inflight?"+url.Values{"kind": {kind}, "id": {id}}.Encode(), nil, &a)
	return a.Max, err
}

// valid asks whether token is valid at WeChat now.
func (s *sim) valid(ctx context.Context, token string) bool {
	ok, err := (&checker.SimOracle{URL: s.url(), HTTPClient: s.hc}).Valid(ctx, token, time.Now())
	return err == nil && ok
}
