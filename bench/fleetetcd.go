package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// clockTicks is the kernel's USER_HZ, the unit of utime and stime in
// /proc/PID/stat: 100 on every Linux architecture Go runs on.
const clockTicks = 100

// etcdProcs is an etcd cluster of separate etcd processes (section
// "fleet"), so that each member's CPU time can be read from /proc, and
// optionally an `etcd grpc-proxy start` process in front of it.
type etcdProcs struct {
	bin     string
	dir     string
	members []*proc
	clients []string // client URLs, one per member
	proxy   *proc
	proxyEP string // host:port of the proxy
}

// buildEtcd builds the etcd server of the module's go.etcd.io/etcd/server/v3
// (the version in go.mod) into dir; Go's build cache makes a rebuild quick.
func buildEtcd(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "etcd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "go.etcd.io/etcd/server/v3")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build go.etcd.io/etcd/server/v3: %v\n%s", err, b)
	}
	return out, nil
}

// startEtcdProcs starts an n-member cluster of bin on loopback, with its
// data in dir, and waits until every member is healthy.
func startEtcdProcs(ctx context.Context, bin, dir string, n int) (*etcdProcs, error) {
	c := &etcdProcs{bin: bin, dir: dir}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var peers, initial []string
	for i := range n {
		cp, err := freePort()
		if err != nil {
			return nil, err
		}
		pp, err := freePort()
		if err != nil {
			return nil, err
		}
		c.clients = append(c.clients, fmt.Sprintf("http://127.0.0.1:%d", cp))
		peers = append(peers, fmt.Sprintf("http://127.0.0.1:%d", pp))
		initial = append(initial, fmt.Sprintf("m%d=%s", i+1, peers[i]))
	}
	for i := range n {
		name := fmt.Sprintf("m%d", i+1)
		p, err := startProc(bin, []string{
			"--name", name,
			"--data-dir", filepath.Join(dir, name),
			"--listen-client-urls", c.clients[i], "--advertise-client-urls", c.clients[i],
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new", "--initial-cluster-token", "wxtoken-bench-fleet",
			"--log-level", "warn",
		}, dir, name+".log")
		if err != nil {
			c.stop()
			return nil, fmt.Errorf("start etcd %s: %w", name, err)
		}
		c.members = append(c.members, p)
	}
	hc := &http.Client{Timeout: time.Second}
	if err := waitUntil(ctx, 60*time.Second, 100*time.Millisecond, "the etcd processes to be healthy", func() bool {
		for _, u := range c.clients {
			if code, _, err := httpStatus(ctx, hc, u+"/health"); err != nil || code != 200 {
				return false
			}
		}
		return true
	}); err != nil {
		c.stop()
		return nil, fmt.Errorf("%w; see %s", err, dir)
	}
	return c, nil
}

// startProxy starts `etcd grpc-proxy start` against every member and waits
// until a read through it succeeds.
func (c *etcdProcs) startProxy(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	c.proxyEP = fmt.Sprintf("127.0.0.1:%d", port)
	var eps []string
	for _, u := range c.clients {
		eps = append(eps, strings.TrimPrefix(u, "http://"))
	}
	c.proxy, err = startProc(c.bin, []string{"grpc-proxy", "start",
		"--endpoints", strings.Join(eps, ","),
		"--listen-addr", c.proxyEP, "--advertise-client-url", c.proxyEP,
		"--data-dir", filepath.Join(c.dir, "proxy"),
	}, c.dir, "grpc-proxy.log")
	if err != nil {
		return fmt.Errorf("start grpc-proxy: %w", err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.proxyEP}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	return waitUntil(ctx, 30*time.Second, 100*time.Millisecond, "the grpc-proxy to answer", func() bool {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := cli.Get(rctx, "health")
		return err == nil
	})
}

// stop stops the proxy and every member.
func (c *etcdProcs) stop() {
	if c.proxy != nil {
		c.proxy.stop(5 * time.Second)
	}
	for _, p := range c.members {
		p.stop(10 * time.Second)
	}
}

// memberCPU is the CPU time (user and system, all threads) the members
// have used so far, summed.
func (c *etcdProcs) memberCPU() (time.Duration, error) {
	var sum time.Duration
	for _, p := range c.members {
		d, err := cpuTime(p.pid())
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

// cpuTime reads the user and system time of process pid from
// /proc/PID/stat (fields 14 and 15, after the parenthesised command).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime or stime", pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// metric sums the values of a metric (every label set) on the /metrics
// pages at urls.
func metric(ctx context.Context, urls []string, name string) (float64, error) {
	hc := &http.Client{Timeout: 5 * time.Second}
	var sum float64
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"/metrics", nil)
		if err != nil {
			return 0, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, name); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "{")) {
				f := strings.Fields(line)
				v, _ := strconv.ParseFloat(f[len(f)-1], 64)
				sum += v
			}
		}
		resp.Body.Close()
		if err := sc.Err(); err != nil {
			return 0, err
		}
	}
	return sum, nil
}
