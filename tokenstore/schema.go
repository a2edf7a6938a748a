// Package tokenstore holds wxtoken's etcd schema: credential records with a
// growing sequence number, fetch intents, the daily budget ledger,
// invalidation reports, the leader's per-credential state and replica
// presence. It offers fenced writes for the leader and a watch-fed cache for
// every replica.
//
// Layout under the prefix P:
//
//	P/election/<lease>      leader election (package election)
//	P/cred/<cred>           Record, the published credential
//	P/intent/<cred>         Intent, written before every WeChat call
//	P/day/<day>/lease       the lease (DayTTL) of every key of that day
//	P/day/<day>/budget/<cred>  Budget, fetches of one China-time day
//	P/report/<cred>/<seq>   Report, "the credential of seq failed"
//	P/state/<cred>          State, the leader's view (errors, schedule)
//	P/replica/<node>        Presence, leased
//	P/beat                  the leader's heartbeat (beat.go, cachebeat.go)
//	P/platform-events/<platform>/...  what a platform's event URL received (platform.go)
//	P/refresh/<cred>        an authorizer's refresh token, sealed (platform_refresh.go)
//	P/authorizer-info/<platform>/<appid>  an authorizer's scopes (platform_refresh.go)
//
// A credential name <cred> is "<app>/token" or "<app>/<ticket type>", or
// for an Open Platform third-party platform "<platform>/component" and
// "<platform>/authorizer/<appid>".
package tokenstore

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Record is a published credential. Records are immutable once published.
type Record struct {
	Cred      string    `json:"cred"`
	Value     string    `json:"value"`
	ExpiresAt time.Time `json:"expires_at"`
	// RefreshAt is when the leader plans to replace this record. Callers
	// may keep the value no later than RefreshAt plus the platform's
	// overlap.
	RefreshAt time.Time `json:"refresh_at"`
	FetchedAt time.Time `json:"fetched_at"`
	Seq       uint64    `json:"seq"`
	Node      string    `json:"node"`
	// PublishedAt is when the leader wrote the record to etcd, on its
	// clock (Store.Publish sets it); replicas measure propagation with it.
	PublishedAt time.Time `json:"published_at,omitzero"`
	// Revoked marks the record of an Open Platform authorizer that
	// unauthorized the platform: it holds no value, and its reads answer
	// that the authorizer is gone.
	Revoked bool `json:"revoked,omitempty"`
}

// Usable reports whether r may be handed out at now: it must expire more
// than r.Margin(margin) later.
func (r Record) Usable(now time.Time, margin time.Duration) bool {
	return r.Value != "" && now.Add(r.Margin(margin)).Before(r.ExpiresAt)
}

// Margin is the serving margin for r: margin, scaled down to an eighth of
// r's lifetime for short-lived tokens (tests, simulators), so that a token
// shorter than the configured margin is still served.
func (r Record) Margin(margin time.Duration) time.Duration {
	if lifetime := r.ExpiresAt.Sub(r.FetchedAt); r.FetchedAt.IsZero() || lifetime <= 0 || margin <= lifetime/8 {
		return margin
	}
	return r.ExpiresAt.Sub(r.FetchedAt) / 8
}

// Intent announces a WeChat call for a credential. It is written, fenced,
// before the call and deleted, fenced, with the publish.
type Intent struct {
	Seq     uint64    `json:"seq"` // the seq the fetch will publish
	Node    string    `json:"node"`
	Started time.Time `json:"started"`
	Reason  string    `json:"reason"`
	Forced  bool      `json:"forced,omitempty"`
	// Foreign marks the refresh after a token that something outside the
	// cluster killed; it is counted in the day's Budget.
	Foreign bool `json:"foreign,omitempty"`
	// Since is the start of the earliest unfinished fetch this one
	// replaces (itself if none): the published token may die as early as
	// Since plus WeChat's overlap, and replicas serve it no longer.
	Since time.Time `json:"since"`
	// CallAt, when set, is when the WeChat call is made: later than
	// Started for a fetch that follows an unfinished one, whose mint kills
	// the published token at once. The leader holds its call until then,
	// so that every replica following etcd has seen the intent and stopped
	// handing the token out before it dies (see DoomedAt).
	CallAt time.Time `json:"call_at,omitzero"`
}

// Earliest is the start of the earliest unfinished call this intent
// stands for (its own start when it replaces none).
func (in Intent) Earliest() time.Time {
	if in.Since.IsZero() || in.Started.Before(in.Since) {
		return in.Started
	}
	return in.Since
}

// DoomedAt is the earliest instant the token published before in may die,
// given WeChat's overlap: a call that started at Earliest may have minted,
// and the previous token dies one overlap later. When in follows such an
// unfinished call, its own mint makes the published token two tokens old,
// which WeChat kills at once: it is doomed from in's call (CallAt, or
// Started when unset).
func (in Intent) DoomedAt(overlap time.Duration) time.Time {
	since := in.Earliest()
	doomed := since.Add(overlap)
	if since.Before(in.Started) {
		call := in.Started
		if in.CallAt.After(call) {
			call = in.CallAt
		}
		if call.Before(doomed) {
			doomed = call
		}
	}
	return doomed
}

// Budget counts the fetches of one credential on one China-time day.
type Budget struct {
	Count  int `json:"count"`
	Forced int `json:"forced,omitempty"`
	// Foreign counts the tokens killed by a fetch from outside the
	// cluster (each confirmed by WeChat and refreshed once).
	Foreign int `json:"foreign,omitempty"`
}

// Report says that the credential of Seq failed at a caller. The leader
// answers it by publishing a newer record, or, when WeChat says the token
// still works, by marking it Rejected.
type Report struct {
	Cred     string    `json:"-"`
	Seq      uint64    `json:"seq"`
	Node     string    `json:"node"`
	At       time.Time `json:"at"`
	Rejected bool      `json:"rejected,omitempty"`
}

// State is the leader's view of one credential, for status and metrics.
type State struct {
	Cred        string    `json:"cred"`
	Node        string    `json:"node"`
	UpdatedAt   time.Time `json:"updated_at"`
	NextRefresh time.Time `json:"next_refresh,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	ErrorClass  string    `json:"error_class,omitempty"`
	Blocked     string    `json:"blocked,omitempty"` // why fetching is stopped: "budget", "permanent", "quota"
	BlockedTill time.Time `json:"blocked_till,omitzero"`
}

// Presence announces a live replica. Its key lives on the replica's lease.
type Presence struct {
	Node      string    `json:"node"`
	API       string    `json:"api"`
	Candidate bool      `json:"candidate"`
	Started   time.Time `json:"started"`
}

// China is the time zone of WeChat's daily quotas (UTC+8, no DST).
var China = time.FixedZone("CST", 8*3600)

// Day returns the China-time day of t as "20060102".
func Day(t time.Time) string { return t.In(China).Format("20060102") }

// CredName returns the credential name of an app's token or ticket.
func CredName(app, what string) string { return app + "/" + what }

// Keys names the etcd keys under one prefix.
type Keys struct{ Prefix string }

// Election is the election's key prefix.
func (k Keys) Election() string { return k.Prefix + "/election" }

// Creds is the prefix of all records.
func (k Keys) Creds() string { return k.Prefix + "/cred/" }

// Cred is the key of a credential's record.
func (k Keys) Cred(cred string) string { return k.Creds() + cred }

// Intent is the key of a credential's intent.
func (k Keys) Intent(cred string) string { return k.Intents() + cred }

// Intents is the prefix of all intents.
func (k Keys) Intents() string { return k.Prefix + "/intent/" }

// Days is the prefix of every day-scoped key.
func (k Keys) Days() string { return k.Prefix + "/day/" }

// Day is the prefix of the keys of one China-time day (see Day).
func (k Keys) Day(day string) string { return k.Days() + day + "/" }

// DayBudgets is the prefix of the budgets of one day.
func (k Keys) DayBudgets(day string) string { return k.Day(day) + "budget/" }

// Budget is the key of a credential's budget on day.
func (k Keys) Budget(cred, day string) string { return k.DayBudgets(day) + cred }

// DayLease is the key that records the lease of day's keys (see DayTTL).
func (k Keys) DayLease(day string) string { return k.Day(day) + "lease" }

// LegacyBudgets is the prefix of the budgets of the layout before
// day-scoped keys, P/budget/<cred>/<day>, which are no longer written.
func (k Keys) LegacyBudgets() string { return k.Prefix + "/budget/" }

// LegacyBudget is the key of a credential's budget on day in the layout
// before day-scoped keys.
func (k Keys) LegacyBudget(cred, day string) string { return k.LegacyBudgets() + cred + "/" + day }

// Reports is the prefix of all reports.
func (k Keys) Reports() string { return k.Prefix + "/report/" }

// CredReports is the prefix of one credential's reports.
func (k Keys) CredReports(cred string) string { return k.Reports() + cred + "/" }

// Report is the key of a report on a credential's seq.
func (k Keys) Report(cred string, seq uint64) string {
	return fmt.Sprintf("%s%020d", k.CredReports(cred), seq)
}

// ParseReport splits a report key into credential and seq.
func (k Keys) ParseReport(key string) (cred string, seq uint64, ok bool) {
	rest, ok := strings.CutPrefix(key, k.Reports())
	if !ok {
		return "", 0, false
	}
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(rest[i+1:], 10, 64)
	if err != nil {
		return "", 0, false
	}
	return rest[:i], seq, true
}

// States is the prefix of all leader states.
func (k Keys) States() string { return k.Prefix + "/state/" }

// State is the key of a credential's leader state.
func (k Keys) State(cred string) string { return k.States() + cred }

// Beat is the leader's heartbeat key, written every probe interval of a
// term (Store.Beat). Every cache watches it and its readiness probe reads
// it, so that a watch that stopped delivering without an error shows.
func (k Keys) Beat() string { return k.Prefix + "/beat" }

// Replicas is the prefix of all presence keys.
func (k Keys) Replicas() string { return k.Prefix + "/replica/" }

// Replica is the presence key of node.
func (k Keys) Replica(node string) string { return k.Replicas() + node }
