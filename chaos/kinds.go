package chaos

import (
	"slices"
	"time"
)

// Kinds of fault. Required lists those every core run must inject and
// DefaultPool those it draws from; ProductionRequired those of the
// production suite; the rest show known weaknesses and run only when
// asked for (Config.Pool).
const (
	LeaderKill         = "leader-kill"          // kill -9 the leader, restart it later
	LeaderPause        = "leader-pause"         // SIGSTOP the leader while its WeChat call is in flight, longer than the TTL; then SIGCONT
	ReplicaBlackhole   = "replica-blackhole"    // hold all traffic between one replica and etcd
	ReplicaDelay       = "replica-delay"        // delay all traffic between one replica and etcd
	EtcdMemberRestart  = "etcd-member-restart"  // kill -9 one etcd member, restart it from its data
	EtcdQuorumLoss     = "etcd-quorum-loss"     // kill -9 two members for longer than the TTL, restart them
	EtcdClusterRestart = "etcd-cluster-restart" // kill -9 every member, restart the cluster from its data
	WeChatBusy         = "wechat-busy"          // token calls answer errcode -1
	WeChatSlow         = "wechat-slow"          // token calls answer after a delay shorter than the fetch timeout
	WeChatTimeout      = "wechat-timeout"       // token calls are held until the caller gives up
	WeChatQuota        = "wechat-quota"         // token calls answer 45009; then the blocked leader is restarted (the next day)
	WeChat5xx          = "wechat-5xx"           // token calls answer HTTP 502
	WeChatBadJSON      = "wechat-badjson"       // token calls answer truncated JSON
	LeaderKillMidFetch = "leader-kill-mid-fetch"
	// WeChatLate answers one call after the caller gave up, minting a
	// token nobody publishes.
	WeChatLate = "wechat-late"
	// WeChatLateRetry holds one call for half the fetch timeout (past the
	// old per-try timeout of a third of it) and mints at the end.
	WeChatLateRetry = "wechat-late-retry"
	// WeChatRefuseApp refuses one app's token calls (40164) from every
	// host for longer than a refresh period.
	WeChatRefuseApp = "wechat-refuse-app"
	// WeChatRefuseLeader refuses one app's token calls from the leader's
	// address only.
	WeChatRefuseLeader = "wechat-refuse-leader"
	// RollingRestart stops every replica in turn with SIGTERM while the
	// leader's token call is in flight, and starts it again.
	RollingRestart = "rolling-restart"
	// ReportLateReject reports a live token while the leader's check of it
	// is held past the report's wait, then reports it again.
	ReportLateReject = "report-late-reject"
	// ForeignFetch fetches an app's token outside the cluster, which kills
	// the published token one overlap later.
	ForeignFetch = "foreign-fetch"
	// LeaderPauseMinting pauses the leader while WeChat mints its token
	// (the call is answered while the leader is stopped).
	LeaderPauseMinting = "leader-pause-minting"
	// LeaderPauseLong is LeaderPause for longer than a successor waits
	// out an unfinished fetch (TTL + fetch timeout + margin): the stopped
	// leader's call is still open when the successor calls.
	LeaderPauseLong = "leader-pause-long"

	// The Open Platform's faults (a run with a platform).

	// PlatformKillMidExchange holds the exchange of an authorization's
	// code (api_query_auth) and kills the leader during it: WeChat
	// exchanges the code while no leader lives; another account
	// authorizes before a successor is elected.
	PlatformKillMidExchange = "platform-kill-mid-exchange"
	// PlatformKillMidRefresh holds an authorizer's refresh, which rotates
	// its refresh token, and kills the leader during it.
	PlatformKillMidRefresh = "platform-kill-mid-refresh"
	// PlatformTicketStop stops WeChat's ticket pushes until the cluster
	// asks for them again (api_start_push_ticket).
	PlatformTicketStop = "platform-ticket-stop"
	// PlatformWrongKey has WeChat encrypt its pushes with a key the
	// platform does not have.
	PlatformWrongKey = "platform-wrong-key"
)

// Required are the fault kinds every run of the core suite injects at
// least once.
var Required = []string{
	LeaderKill, LeaderPause, ReplicaBlackhole, ReplicaDelay,
	EtcdMemberRestart, EtcdQuorumLoss, EtcdClusterRestart,
	WeChatBusy, WeChatSlow, WeChatTimeout, WeChatQuota,
}

// DefaultPool are the kinds a core run draws from once the required ones
// ran.
var DefaultPool = append(slices.Clone(Required), WeChat5xx, WeChatBadJSON, LeaderKillMidFetch)

// ProductionRequired are the kinds of the production suite: the events of
// a production fleet that once served dead tokens or took every app down
// (one app's whitelist, late WeChat answers, a rolling restart, a report
// rejected late, a token fetched outside the cluster).
var ProductionRequired = []string{
	WeChatRefuseApp, WeChatRefuseLeader, WeChatLateRetry, WeChatLate,
	RollingRestart, ReportLateReject, ForeignFetch,
}

// PlatformRequired are the kinds of the platform suite: the faults that
// lose an Open Platform's refresh tokens or codes, or its tickets.
var PlatformRequired = []string{
	PlatformKillMidExchange, PlatformKillMidRefresh, PlatformTicketStop, PlatformWrongKey,
}

// platformKind reports whether kind needs a platform in the run.
func platformKind(kind string) bool { return slices.Contains(PlatformRequired, kind) }

// AllKinds are every kind the harness can inject.
var AllKinds = append(slices.Concat(DefaultPool, ProductionRequired, PlatformRequired), LeaderPauseMinting, LeaderPauseLong)

// Suite is a named set of faults sized for one run.
type Suite struct {
	Required []string
	Pool     []string
	// Duration is the run's default reading time; the required faults
	// run even when they take longer.
	Duration time.Duration
}

// Suites are the named suites: "core" (the default, the faults of any
// deployment), "production" (ProductionRequired; a second short run),
// "platform" (PlatformRequired, with an Open Platform in the cluster; a
// third short run) and "all" (every one, for a soak).
var Suites = map[string]Suite{
	"core":       {Required: Required, Pool: DefaultPool, Duration: 3*time.Minute + 30*time.Second},
	"production": {Required: ProductionRequired, Pool: ProductionRequired, Duration: time.Minute},
	"platform":   {Required: PlatformRequired, Pool: PlatformRequired, Duration: time.Minute},
	"all": {Required: slices.Concat(Required, ProductionRequired, PlatformRequired),
		Pool: slices.Concat(DefaultPool, ProductionRequired, PlatformRequired), Duration: 30 * time.Minute},
}
