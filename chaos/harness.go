package chaos

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/wxtoken/wxtoken/chaos/checker"
)

// harness holds the processes of one run.
type harness struct {
	cfg      *Config
	log      io.Writer
	sp       *spawner
	pp       ports
	etcd     *etcdCluster
	sim      *sim
	replicas []*replica
	cli      *clientv3.Client
	front    *front // the platform's public event URL (nil without a platform)

	mu        sync.Mutex
	records   []checker.Snapshot
	faults    []checker.Fault
	invals    []checker.Invalidation // the harness's own reports
	codes     []checker.Code         // authorizations made
	refreshes []checker.RefreshCheck
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.log, "chaos: %s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

// start brings up etcd, the simulator and the replicas, and waits until
// every replica serves every app.
func (h *harness) start(ctx context.Context) error {
	var err error
	h.etcd, err = newEtcdCluster(h.sp, &h.pp, h.cfg.EtcdBin, h.cfg.Dir, filepath.Join(h.cfg.Dir, "logs"), 3)
	if err != nil {
		return err
	}
	if err := h.etcd.start(); err != nil {
		return err
	}
	if err := h.etcd.waitHealthy(ctx, 30*time.Second); err != nil {
		return err
	}
	h.cli, err = clientv3.New(clientv3.Config{Endpoints: h.etcd.endpoints(), DialTimeout: 3 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("etcd client: %w", err)
	}
	var pushURL string
	if p := h.cfg.platform; p != nil {
		port, err := h.pp.next()
		if err != nil {
			return err
		}
		if h.front, err = newFront(fmt.Sprintf("127.0.0.1:%d", port), func() []*replica { return h.replicas }); err != nil {
			return err
		}
		pushURL = h.front.url() + p.eventPath()
	}
	h.sim, err = newSim(h.sp, &h.pp, h.cfg, pushURL)
	if err != nil {
		return err
	}
	if err := h.sim.proc.start(); err != nil {
		return err
	}
	if err := poll(ctx, 10*time.Second, func(ctx context.Context) bool { return get(ctx, h.sim.url()+"/_sim/uses") == 200 }); err != nil {
		return fmt.Errorf("wechat-sim not up: %w", err)
	}
	for i := range h.cfg.Replicas {
		r, err := newReplica(h.sp, &h.pp, h.cfg, h.sim.addr(), h.etcd, i)
		if err != nil {
			return err
		}
		h.replicas = append(h.replicas, r)
		if err := r.proc.start(); err != nil {
			return err
		}
	}
	for _, r := range h.replicas {
		if err := r.waitUp(ctx, 20*time.Second); err != nil {
			return fmt.Errorf("replica %s not up (see %s): %w", r.name, r.proc.log, err)
		}
	}
	if p := h.cfg.platform; p != nil {
		for _, a := range p.authorizers {
			h.authorizeOne(ctx, a)
		}
	}
	err = poll(ctx, 45*time.Second, func(ctx context.Context) bool {
		for _, r := range h.replicas {
			for _, tg := range h.cfg.targets() {
				if get(ctx, r.url()+tg.path) != 200 {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		// A build that serves nothing is for the checker to judge.
		h.logf("replicas do not serve every credential after 45s: the run goes on, and the checker judges")
	}
	h.logf("up: etcd %v, wechat-sim %s, %d replicas", h.etcd.endpoints(), h.sim.url(), len(h.replicas))
	return nil
}

// close kills every process, stopped ones included, and removes nothing.
func (h *harness) close() {
	for _, r := range h.replicas {
		_ = r.proc.kill()
		r.closeProxies()
	}
	if h.sim != nil {
		_ = h.sim.proc.kill()
	}
	if h.front != nil {
		h.front.close()
	}
	if h.etcd != nil {
		h.etcd.kill()
	}
	if h.cli != nil {
		h.cli.Close()
	}
	h.sp.close()
}
