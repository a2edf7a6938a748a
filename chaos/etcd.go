package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ports hands out loopback ports below the kernel's ephemeral range
// (32768 and up on Linux), so that a port freed by a killed member is not
// taken by some outgoing connection before the member restarts.
type ports struct {
	mu   sync.Mutex
	used map[int]bool
}

func (p *ports) next() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used == nil {
		p.used = map[int]bool{}
	}
	for range 200 {
		n := 20000 + rand.N(12000)
		if p.used[n] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", n))
		if err != nil {
			continue
		}
		ln.Close()
		p.used[n] = true
		return n, nil
	}
	return 0, fmt.Errorf("no free loopback port in 20000-32000")
}

// member is one etcd member: its ports never change, so a restart from its
// data directory rejoins the cluster.
type member struct {
	name       string
	clientPort int
	peerPort   int
	dir        string
	proc       *proc
}

func (m *member) clientURL() string { return fmt.Sprintf("http://127.0.0.1:%d", m.clientPort) }
func (m *member) peerURL() string   { return fmt.Sprintf("http://127.0.0.1:%d", m.peerPort) }

// etcdCluster is a three-member etcd cluster of real processes.
type etcdCluster struct {
	members []*member
}

func newEtcdCluster(sp *spawner, pp *ports, bin, dir, logDir string, n int) (*etcdCluster, error) {
	c := &etcdCluster{}
	for i := range n {
		m := &member{name: fmt.Sprintf("etcd-%d", i+1), dir: filepath.Join(dir, fmt.Sprintf("etcd-%d", i+1))}
		var err error
		if m.clientPort, err = pp.next(); err != nil {
			return nil, err
		}
		if m.peerPort, err = pp.next(); err != nil {
			return nil, err
		}
		c.members = append(c.members, m)
	}
	var initial []string
	for _, m := range c.members {
		initial = append(initial, m.name+"="+m.peerURL())
	}
	for _, m := range c.members {
		m.proc = newProc(sp, m.name, filepath.Join(logDir, m.name+".log"), bin,
			"--name", m.name,
			"--data-dir", m.dir,
			"--listen-client-urls", m.clientURL(),
			"--advertise-client-urls", m.clientURL(),
			"--listen-peer-urls", m.peerURL(),
			"--initial-advertise-peer-urls", m.peerURL(),
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", "wxtoken-chaos",
			"--heartbeat-interval", "100",
			"--election-timeout", "1000",
			"--log-level", "warn",
		)
	}
	return c, nil
}

// endpoints are the client URLs of every member.
func (c *etcdCluster) endpoints() []string {
	var out []string
	for _, m := range c.members {
		out = append(out, m.clientURL())
	}
	return out
}

func (c *etcdCluster) start() error {
	for _, m := range c.members {
		if err := m.proc.start(); err != nil {
			return err
		}
	}
	return nil
}

func (c *etcdCluster) kill() {
	for _, m := range c.members {
		_ = m.proc.kill()
	}
}

// healthy reports whether m answers /health with a leader in sight.
func (m *member) healthy(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.clientURL()+"/health", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// waitHealthy waits, bounded by d, until every running member is healthy.
func (c *etcdCluster) waitHealthy(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		var sick []string
		for _, m := range c.members {
			if m.proc.running() && !m.healthy(ctx) {
				sick = append(sick, m.name)
			}
		}
		if len(sick) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd members %v not healthy within %v", sick, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
