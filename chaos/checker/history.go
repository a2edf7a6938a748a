// Package checker judges the recorded history of a wxtoken run under
// faults: which tokens replicas served and whether WeChat still accepted
// them, which fetches reached WeChat and when, which records etcd held, and
// which faults were injected. Check is pure: it reads a History (which
// round-trips through JSON) and returns a Report, so the fault-injection
// suite and any other end-to-end test can share it.
//
// Every instant in a History comes from one host's wall clock (all
// processes run on it), so instants from different sources compare.
package checker

import (
	"encoding/json"
	"fmt"
	"time"
)

// History is everything recorded in one run. It is plain data: build it,
// marshal it, load it later and Check it.
type History struct {
	Run     Run        `json:"run"`
	Apps    []App      `json:"apps"`
	Faults  []Fault    `json:"faults"`
	Reads   []Read     `json:"reads"`
	Uses    []Use      `json:"uses"`
	Fetches []Fetch    `json:"fetches"`
	Tokens  []Life     `json:"tokens"`
	Records []Snapshot `json:"records"`
}

// Run describes the run as a whole.
type Run struct {
	Seed  int64  `json:"seed"`
	Build string `json:"build"` // what was tested, e.g. "normal" or "broken (--unsafe-skip-intent)"
	// Start and End bound the reads: faults and fetches outside them are
	// still judged, availability only inside.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// TokenTTL is the lifetime the simulator gives every token.
	TokenTTL Duration `json:"token_ttl"`
	// Required lists fault kinds the run must have injected at least once.
	Required []string `json:"required,omitempty"`
}

// App is one credential the replicas keep fresh.
type App struct {
	Name  string `json:"name"`  // as in /v1/apps/{name}/token
	Kind  string `json:"kind"`  // the simulator's ledger kind: classic, stable, wecom
	AppID string `json:"appid"` // as in the ledger
	// RefreshEvery is the planned time between two fetches that mint a
	// token, from the replicas' refresh settings.
	RefreshEvery Duration `json:"refresh_every"`
}

// Fault is one injected fault, from its first action to its last.
type Fault struct {
	Kind   string    `json:"kind"`
	Target string    `json:"target,omitempty"` // e.g. "r2 (leader)", "etcd-1", "app shop"
	Detail string    `json:"detail,omitempty"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	// Missed says why the fault could not be injected as planned ("" if
	// it was); a missed fault does not count as injected.
	Missed string `json:"missed,omitempty"`
}

// Read is one token read from a replica's HTTP API.
type Read struct {
	Replica string    `json:"replica"`
	App     string    `json:"app"`
	Start   time.Time `json:"start"` // request sent
	End     time.Time `json:"end"`   // answer received, or the request failed
	Status  int       `json:"status"`
	// Code is the error code of a non-200 answer, or "unreachable" when no
	// HTTP answer came.
	Code      string `json:"code,omitempty"`
	Token     string `json:"token,omitempty"`
	Seq       uint64 `json:"seq,omitempty"`
	ExpiresIn int64  `json:"expires_in,omitempty"`
}

// OK reports whether the replica handed out a token.
func (r Read) OK() bool { return r.Status == 200 && r.Token != "" }

// Use is one call of a served token against WeChat (getcallbackip).
type Use struct {
	Replica string    `json:"replica"`
	App     string    `json:"app"`
	Token   string    `json:"token"`
	Start   time.Time `json:"start"`
	// Errcode is WeChat's answer: 0 accepted, 40001/42001 dead; -2 when
	// no answer came.
	Errcode int `json:"errcode"`
	// KeepUntil is when the read that served the token said it could be
	// kept until (read end + expires_in).
	KeepUntil time.Time `json:"keep_until"`
}

// Fetch is one line of the simulator's ledger (GET /_sim/ledger): a call
// to a token endpoint, answered or not.
type Fetch struct {
	Start   time.Time `json:"start"` // the request arrived
	At      time.Time `json:"at"`    // it was answered, or the caller gave up
	Kind    string    `json:"kind"`
	AppID   string    `json:"appid"`
	Forced  bool      `json:"forced,omitempty"`
	Token   string    `json:"token,omitempty"`
	Issued  bool      `json:"issued,omitempty"`
	Errcode int       `json:"errcode"`
	Caller  string    `json:"caller,omitempty"`
}

// Life is when a token was valid, as the simulator says: from Issued
// (inclusive) to End (exclusive), with End known to within a microsecond.
type Life struct {
	Token  string    `json:"token"`
	Kind   string    `json:"kind"`
	AppID  string    `json:"appid"`
	Issued time.Time `json:"issued"`
	End    time.Time `json:"end"`
}

// Snapshot is one credential record as read from etcd (a linearizable
// read started at At).
type Snapshot struct {
	At    time.Time `json:"at"`
	App   string    `json:"app"`
	Seq   uint64    `json:"seq"`
	Token string    `json:"token"`
	// After names what the snapshot follows, e.g. "etcd-cluster-restart"
	// for the first read after etcd came back; "" for periodic reads.
	After string `json:"after,omitempty"`
}

// Duration is a time.Duration that reads and writes JSON as "1m30s".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}
