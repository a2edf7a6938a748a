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
	// Invalidations are the reports of tokens as dead, by consumers and
	// by the harness.
	Invalidations []Invalidation `json:"invalidations,omitempty"`
	// Platform is the run's Open Platform third-party platform, if it
	// had one.
	Platform *Platform `json:"platform,omitempty"`
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
	// FetchTimeout and Margin are the replicas' refresh.fetch_timeout and
	// refresh.margin; InvalidateWait their refresh.invalidate_wait. Zero
	// when unknown.
	FetchTimeout   Duration `json:"fetch_timeout,omitempty"`
	Margin         Duration `json:"margin,omitempty"`
	InvalidateWait Duration `json:"invalidate_wait,omitempty"`
	// Outside lists the addresses of callers outside the cluster (the
	// harness fetching a token as a foreign program would): their calls
	// are not the cluster's, and not judged as such.
	Outside []string `json:"outside,omitempty"`
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
	// App names the one app the fault touches (a WeChat fault on its
	// calls, a report of its token); "" for a fault of the cluster (a
	// process, the network, etcd), which may touch every app.
	App string `json:"app,omitempty"`
	// Token is the token a foreign-fetch fault doomed: the one published
	// when the token was fetched outside the cluster.
	Token string `json:"token,omitempty"`
	// Counted is, for a foreign-fetch fault, how many foreign fetches
	// the replicas counted during it (wxtoken_foreign_fetches_total);
	// -1 if they could not be asked.
	Counted int `json:"counted,omitempty"`
	// Stops are the graceful stops (SIGTERM) the fault made.
	Stops []Stop `json:"stops,omitempty"`
}

// Stop is one graceful stop of a replica: SIGTERM, then waiting for the
// process to exit by itself.
type Stop struct {
	Replica string    `json:"replica"`
	Leader  bool      `json:"leader,omitempty"` // it led when stopped
	At      time.Time `json:"at"`
	Took    Duration  `json:"took"`  // until it exited
	Bound   Duration  `json:"bound"` // how long it may take
	Killed  bool      `json:"killed,omitempty"`
}

// Invalidation is one report of a token as dead (POST
// /v1/apps/{app}/token/invalidate) and its answer.
type Invalidation struct {
	By      string    `json:"by"` // "consumer" or "harness"
	Replica string    `json:"replica"`
	App     string    `json:"app"`
	Token   string    `json:"token"` // the token reported
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Status  int       `json:"status"`
	// Code is the error code of a non-200 answer, or "unreachable".
	Code   string `json:"code,omitempty"`
	Answer string `json:"answer,omitempty"` // the token answered
	Seq    uint64 `json:"seq,omitempty"`
	// Repeat marks a report of a token whose earlier report the leader
	// already rejected (the token works): it must be answered at once.
	Repeat bool `json:"repeat,omitempty"`
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
	// Code is the authorization code an api_query_auth call presented.
	Code string `json:"code,omitempty"`
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
