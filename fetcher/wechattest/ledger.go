package wechattest

import "time"

// Fetch is one ledger line: a call to a token or ticket endpoint, whether it
// succeeded or not.
type Fetch struct {
	// At is when the call was answered.
	At time.Time `json:"at"`
	// Kind is KindClassic, KindStable, KindWeCom or KindTicket.
	Kind string `json:"kind"`
	// AppID is the appid (corpid for WeCom) the call was for; for a ticket,
	// the owner of the access token presented ("" if unknown).
	AppID string `json:"appid"`
	// Forced marks a stable call with force_refresh.
	Forced bool `json:"forced,omitempty"`
	// Token is the token or ticket returned, "" on error. A call that
	// returned an existing token has Token set and Issued false.
	Token string `json:"token,omitempty"`
	// Issued reports that this call minted a new token.
	Issued bool `json:"issued,omitempty"`
	// Errcode is WeChat's errcode (0 on success), or CodeNoAnswer for an
	// injected 5xx, broken JSON or timeout.
	Errcode int `json:"errcode"`
	// Caller is the caller's IP.
	Caller string `json:"caller"`
	// Start is when the request arrived; it differs from At under injected
	// latency or timeout.
	Start time.Time `json:"start"`
	// Component is the component appid of an Open Platform call; AppID is
	// then the authorizer's appid (for KindAuthorizer and KindQueryAuth)
	// or the component appid.
	Component string `json:"component,omitempty"`
	// Code is the authorization code a KindQueryAuth call presented.
	Code string `json:"code,omitempty"`
	// RefreshToken is the authorizer refresh token a successful
	// KindQueryAuth or KindAuthorizer call returned.
	RefreshToken string `json:"refresh_token,omitempty"`
}

// call is a token or ticket request in progress.
type call struct {
	kind      string
	appID     string
	forced    bool
	caller    string
	start     time.Time
	component string // Open Platform calls
	code      string // KindQueryAuth
}

// recordLocked appends the outcome of c to the ledger, answered now.
func (s *Sim) recordLocked(c call, rp reply) {
	s.ledger = append(s.ledger, Fetch{
		At:      s.now(),
		Kind:    c.kind,
		AppID:   c.appID,
		Forced:  c.forced,
		Token:   rp.token,
		Issued:  rp.issued,
		Errcode: rp.errcode,
		Caller:  c.caller,
		Start:   c.start,

		Component:    c.component,
		Code:         c.code,
		RefreshToken: rp.refresh,
	})
}

// Ledger returns a copy of every token and ticket fetch so far, in the order
// they were answered.
func (s *Sim) Ledger() []Fetch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Fetch(nil), s.ledger...)
}

// Uses counts calls to getcallbackip that presented a valid token (ok) and
// a dead or expired one (dead).
func (s *Sim) Uses() (ok, dead int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usesOK, s.usesDead
}
