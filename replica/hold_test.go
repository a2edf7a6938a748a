package replica_test

import (
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/fetcher/wechattest"
	"github.com/wxtoken/wxtoken/internal/etcdtest"
)

// TestHeldCallAfterUnfinished: WeChat answers a refresh after the fetch
// timeout, having minted a token the leader never sees; the leader waits
// the call's window out and refreshes. That mint makes the published token
// two tokens old, and WeChat kills it at once, not one overlap later. A
// replica whose etcd traffic takes 300 ms each way must have stopped
// handing it out by then: the leader announces its call (the intent) and
// holds it (config.CallHold) before calling. Without the hold
// (WXTOKEN_UNSAFE_OFF=hold) the slow replica serves the dead token until
// the intent reaches it.
func TestHeldCallAfterUnfinished(t *testing.T) {
	overlap := 10 * time.Second // 10 x fetch_timeout, as in production
	e := envOn(t, etcdtest.NewTCPCluster(t, 1), wechattest.Config{TokenTTL: 20 * time.Second, Overlap: overlap})
	lcfg := e.testConfig("lead")
	// The refresh comes 8 s before the expiry, so that the published
	// token would live on for the whole recovery if WeChat did not kill it.
	lcfg.Refresh.Overlap, lcfg.Refresh.Before = overlap, 8*time.Second
	lead := e.start(lcfg, nil)
	// slow serves only, through the delaying proxy.
	cfg := e.testConfig("slow")
	cfg.Refresh.Overlap, cfg.Refresh.Before = overlap, 8*time.Second
	slow, p := e.startBehindProxy(cfg)
	p.Delay(300 * time.Millisecond)
	waitFor(t, 20*time.Second, "both replicas to serve the first token", func() bool {
		a, okA := lead.Cache().Get("shop/token")
		b, okB := slow.Cache().Get("shop/token")
		return okA && okB && a.Seq == 1 && b.Seq == 1
	})

	// The next refresh is answered 1.5 s after its 1 s timeout: it mints a
	// token that no replica ever serves.
	e.sim.SetFault(wechattest.Fault{Mode: wechattest.FaultLatency, Latency: 1500 * time.Millisecond, Count: 1, AppID: appID})
	reads := e.consume("shop")
	waitFor(t, 30*time.Second, "both replicas to serve the token of the refresh after the late one", func() bool {
		a, okA := lead.Cache().Get("shop/token")
		b, okB := slow.Cache().Get("shop/token")
		return okA && okB && a.Seq >= 2 && b.Seq >= 2
	})
	reads.check(t, e.sim)

	fs := fetches(e.sim)
	late := -1
	for i, f := range fs {
		if f.At.Sub(f.Start) >= time.Second {
			late = i
			break
		}
	}
	if late < 0 || late+1 >= len(fs) {
		t.Fatalf("want a late fetch and one after it; ledger %+v", fs)
	}
	// The late call was given up at its 1 s deadline; the window is the
	// timeout plus the margin, then the hold (less the 100 ms the late
	// request may have taken to reach WeChat).
	gap := fs[late+1].Start.Sub(fs[late].Start)
	if min := lcfg.Refresh.FetchTimeout*2 + lcfg.Refresh.Margin + config.CallHold - 100*time.Millisecond; gap < min {
		t.Errorf("the refresh after the late call started %v after it, want at least %v (window and hold)", gap, min)
	}
	t.Logf("refresh after the late call: %v after it", gap.Round(time.Millisecond))
}
