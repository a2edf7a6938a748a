//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// container returns the id of a service's container.
func (s *stack) container(ctx context.Context, service string) (string, error) {
	out, err := s.docker(ctx, "ps", "-aq", "--no-trunc",
		"--filter", "label=com.docker.compose.project="+s.project,
		"--filter", "label=com.docker.compose.service="+service)
	if err != nil {
		return "", err
	}
	ids := strings.Fields(out)
	if len(ids) != 1 {
		return "", fmt.Errorf("service %s: want one container, got %d", service, len(ids))
	}
	return ids[0], nil
}

// network returns the name of one of the project's networks ("back").
func (s *stack) network(ctx context.Context, name string) (string, error) {
	out, err := s.docker(ctx, "network", "ls", "--format", "{{.Name}}",
		"--filter", "label=com.docker.compose.project="+s.project,
		"--filter", "label=com.docker.compose.network="+name)
	if err != nil {
		return "", err
	}
	names := strings.Fields(out)
	if len(names) != 1 {
		return "", fmt.Errorf("network %s: want one, got %q", name, out)
	}
	return names[0], nil
}

// cstate is what the test needs of `docker inspect`.
type cstate struct {
	Running      bool
	Health       string // "starting", "healthy", "unhealthy", or "" without a healthcheck
	RestartCount int
	Pid          int
}

func (s *stack) inspect(ctx context.Context, id string) (cstate, error) {
	out, err := s.docker(ctx, "inspect", "--format",
		`{{.State.Running}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.RestartCount}} {{.State.Pid}}`, id)
	if err != nil {
		return cstate{}, err
	}
	f := strings.Fields(out)
	if len(f) != 4 {
		return cstate{}, fmt.Errorf("docker inspect %s: unexpected %q", id, out)
	}
	st := cstate{Running: f[0] == "true", Health: f[1]}
	st.RestartCount, _ = strconv.Atoi(f[2])
	st.Pid, _ = strconv.Atoi(f[3])
	return st, nil
}

// waitHealthy waits until every service's container runs and Docker reports
// it healthy.
func (s *stack) waitHealthy(ctx context.Context, timeout time.Duration, services ...string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pending := map[string]string{}
	for _, svc := range services {
		pending[svc] = "not created"
	}
	for {
		for svc := range pending {
			id, err := s.container(ctx, svc)
			if err != nil {
				pending[svc] = err.Error()
				continue
			}
			st, err := s.inspect(ctx, id)
			switch {
			case err != nil:
				pending[svc] = err.Error()
			case st.Running && st.Health == "healthy":
				delete(pending, svc)
			default:
				pending[svc] = fmt.Sprintf("running=%v health=%s", st.Running, st.Health)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not healthy within %v: %v", timeout, pending)
		case <-time.After(time.Second):
		}
	}
}

// crash kills the main process of a wxtoken container the way a crash
// would, so that the restart policy must bring it back, and reports
// whether it did so. Where the engine's process ids are not this host's
// (a remote engine), it falls back to `docker kill`, after which Docker
// applies no restart policy, and restarts the container itself once
// restart is called.
func (s *stack) crash(ctx context.Context, id string) (byPolicy bool, err error) {
	st, err := s.inspect(ctx, id)
	if err != nil {
		return false, err
	}
	// Only signal the pid if it is this container's wxtoken process here:
	// with a remote engine the number names some other process.
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", st.Pid))
	if st.Pid > 0 && strings.HasPrefix(string(cmdline), "/usr/local/bin/wxtoken\x00serve\x00") {
		if err := syscall.Kill(st.Pid, syscall.SIGKILL); err == nil {
			return true, nil
		}
	}
	_, err = s.docker(ctx, "kill", "--signal", "KILL", id)
	return false, err
}

// etcdLeader returns the service name of etcd's raft leader, asking from
// inside the given member.
func (s *stack) etcdLeader(ctx context.Context, from string) (string, error) {
	id, err := s.container(ctx, from)
	if err != nil {
		return "", err
	}
	out, err := s.docker(ctx, "exec", id, "/usr/local/bin/etcdctl", "--command-timeout=3s",
		"endpoint", "status", "--cluster", "-w", "json")
	if err != nil {
		return "", err
	}
	var eps []struct {
		Endpoint string
		Status   struct {
			Header struct {
				MemberID uint64 `json:"member_id"`
			} `json:"header"`
			Leader uint64 `json:"leader"`
		}
	}
	if err := json.Unmarshal([]byte(out), &eps); err != nil {
		return "", fmt.Errorf("etcdctl endpoint status: %w: %s", err, out)
	}
	for _, ep := range eps {
		if ep.Status.Leader != 0 && ep.Status.Header.MemberID == ep.Status.Leader {
			// https://etcd-2:2379 -> etcd-2
			host := strings.TrimPrefix(strings.TrimPrefix(ep.Endpoint, "https://"), "http://")
			host, _, _ = strings.Cut(host, ":")
			return host, nil
		}
	}
	return "", errors.New("etcd has no leader")
}

// etcdGet reads one key with a linearizable read from inside the first
// member that answers, trying them in order.
func (s *stack) etcdGet(ctx context.Context, key string, members []string) (string, error) {
	var errs []error
	for _, m := range members {
		id, err := s.container(ctx, m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
		out, err := s.docker(ectx, "exec", id, "/usr/local/bin/etcdctl", "--command-timeout=3s", "get", key, "--print-value-only")
		cancel()
		if err == nil {
			return out, nil
		}
		errs = append(errs, err)
	}
	return "", errors.Join(errs...)
}
