package chaos

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/chaos/proxy"
)

// replica is one `wxtoken serve` process. It reaches etcd only through
// its own proxies, one per member, so that its link alone can be cut,
// and WeChat through a proxy that calls from its own loopback address,
// so that WeChat can refuse this host alone.
type replica struct {
	name      string
	candidate bool
	port      int
	proxies   []*proxy.Proxy
	wechat    *proxy.Proxy // to the simulator, from sourceIP
	sourceIP  string       // the address WeChat sees: 127.0.0.11 for r1, .12 for r2...
	proc      *proc
}

func (r *replica) url() string { return fmt.Sprintf("http://127.0.0.1:%d", r.port) }

// newReplica writes the config of replica i and prepares its process.
func newReplica(sp *spawner, pp *ports, cfg *Config, simAddr string, etcd *etcdCluster, i int) (*replica, error) {
	r := &replica{name: fmt.Sprintf("r%d", i+1), candidate: i < cfg.Replicas-1, sourceIP: fmt.Sprintf("127.0.0.%d", 11+i)}
	name := r.name
	var err error
	if r.port, err = pp.next(); err != nil {
		return nil, err
	}
	wport, err := pp.next()
	if err != nil {
		return nil, err
	}
	if r.wechat, err = proxy.ListenFrom(fmt.Sprintf("127.0.0.1:%d", wport), simAddr, r.sourceIP); err != nil {
		return nil, err
	}
	simURL := "http://" + r.wechat.Addr()
	var endpoints []string
	for _, m := range etcd.members {
		pport, err := pp.next()
		if err != nil {
			return nil, err
		}
		p, err := proxy.Listen(fmt.Sprintf("127.0.0.1:%d", pport), fmt.Sprintf("127.0.0.1:%d", m.clientPort))
		if err != nil {
			r.closeProxies()
			return nil, err
		}
		r.proxies = append(r.proxies, p)
		endpoints = append(endpoints, "http://"+p.Addr())
	}
	t := cfg.Timing
	var b strings.Builder
	fmt.Fprintf(&b, "node: %s\nlisten: 127.0.0.1:%d\ndata_dir: %s\nlog_level: info\n", name, r.port, filepath.Join(cfg.Dir, name))
	fmt.Fprintf(&b, "etcd:\n  endpoints: [%s]\n  prefix: %s\n  dial_timeout: 3s\n", strings.Join(endpoints, ", "), Prefix)
	fmt.Fprintf(&b, "election:\n  ttl: %v\n  candidate: %v\n  holdoff: %v\n", t.ElectionTTL, r.candidate, t.Holdoff)
	fmt.Fprintf(&b, "refresh:\n  before: %v\n  jitter: %v\n  fetch_timeout: %v\n  concurrency: 4\n  margin: %v\n  overlap: %v\n",
		t.Before, t.Jitter, t.FetchTimeout, t.Margin, t.Overlap)
	if t.ReadWait > 0 {
		fmt.Fprintf(&b, "  read_wait: %v\n", t.ReadWait)
	}
	if t.InvalidateWait > 0 {
		fmt.Fprintf(&b, "  invalidate_wait: %v\n", t.InvalidateWait)
	}
	fmt.Fprintf(&b, "wechat:\n  base_url: %s\n  wecom_base_url: %s\n", simURL, simURL)
	b.WriteString("apps:\n")
	for _, a := range cfg.apps {
		fmt.Fprintf(&b, "  - name: %s\n    kind: %s\n    appid: %s\n    secret: %s\n", a.name, a.kind, a.appID, a.secret)
	}
	if cfg.platform != nil {
		b.WriteString(cfg.platform.replicaYAML())
	}
	path := filepath.Join(cfg.Dir, name+".yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		r.closeProxies()
		return nil, err
	}
	args := []string{"serve", "--config", path}
	if len(cfg.UnsafeOff) > 0 {
		args = append(args, "--unsafe-off", strings.Join(cfg.UnsafeOff, ","))
	}
	r.proc = newProc(sp, name, filepath.Join(cfg.Dir, "logs", name+".log"), cfg.WxtokenBin, args...)
	return r, nil
}

func (r *replica) closeProxies() {
	for _, p := range r.proxies {
		p.Close()
	}
	if r.wechat != nil {
		r.wechat.Close()
	}
}

// cut blackholes the replica's links to etcd.
func (r *replica) cut() {
	for _, p := range r.proxies {
		p.Blackhole()
	}
}

// slow delays the replica's links to etcd by d each way.
func (r *replica) slow(d time.Duration) {
	for _, p := range r.proxies {
		p.Delay(d)
	}
}

func (r *replica) heal() {
	for _, p := range r.proxies {
		p.Heal()
	}
}

// waitUp waits, bounded by d, until the replica answers /healthz.
func (r *replica) waitUp(ctx context.Context, d time.Duration) error {
	return poll(ctx, d, func(ctx context.Context) bool { return get(ctx, r.url()+"/healthz") == http.StatusOK })
}

// ready reports whether the replica says it follows etcd.
func (r *replica) ready(ctx context.Context) bool {
	return get(ctx, r.url()+"/readyz") == http.StatusOK
}

// get returns the status of GET url, or 0 if no answer came within a second.
func get(ctx context.Context, url string) int {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// poll calls cond every 100 ms until it holds, ctx ends or d passes.
func poll(ctx context.Context, d time.Duration, cond func(context.Context) bool) error {
	deadline := time.Now().Add(d)
	for {
		if cond(ctx) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
