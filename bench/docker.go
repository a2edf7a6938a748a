package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Redis as an app would use it runs on another host. The read section
// puts it in a container on a Docker network of the runner's own, and the
// load generator on the host reads it at the container's address on that
// bridge: the packets cross a veth pair and the bridge, as they would
// leave for another machine, and no port is published (no userland proxy).

// pidLabel marks what a run creates in Docker with the runner's process
// id, so that a later run removes what a killed one left behind.
const pidLabel = "org.wxtoken.bench.pid"

// errNoDocker says why Redis cannot run in a container.
var errNoDocker = errors.New("docker is not available")

// redisContainer is redis-server in a container on a network of its own.
type redisContainer struct {
	addr    string // container IP:6379
	version string
	name    string // of the container and of the network
}

// startRedisContainer runs image (built with deploy/build-images.sh redis
// when missing) on a new network and waits until it answers PING. On an
// error it leaves nothing behind. errNoDocker: no Docker to ask.
func startRedisContainer(ctx context.Context, image string) (_ *redisContainer, err error) {
	if _, err := exec.LookPath("docker"); err != nil {
		return nil, fmt.Errorf("%w: no docker on PATH", errNoDocker)
	}
	if _, err := docker(ctx, "version", "--format", "{{.Server.Version}}"); err != nil {
		return nil, fmt.Errorf("%w: %v", errNoDocker, err)
	}
	removeStale(ctx)
	if _, err := docker(ctx, "image", "inspect", image); err != nil {
		cmd := exec.CommandContext(ctx, "deploy/build-images.sh", "redis")
		cmd.Env = append(os.Environ(), "REDIS_IMAGE="+image)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("deploy/build-images.sh redis: %v\n%s", err, out)
		}
	}
	version, _ := docker(ctx, "image", "inspect", "-f", `{{index .Config.Labels "org.opencontainers.image.version"}}`, image)
	pid := strconv.Itoa(os.Getpid())
	rc := &redisContainer{name: "wxtoken-bench-" + pid, version: "redis " + version}
	if _, err := docker(ctx, "network", "create", "--label", pidLabel+"="+pid, rc.name); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			rc.stop()
		}
	}()
	if _, err := docker(ctx, "run", "-d", "--rm", "--name", rc.name, "--network", rc.name, "--label", pidLabel+"="+pid, image); err != nil {
		return nil, err
	}
	ip, err := docker(ctx, "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", rc.name)
	if err != nil {
		return nil, err
	}
	rc.addr = ip + ":6379"
	if err := waitRedis(ctx, rc.addr, func() bool { return false }); err != nil {
		logs, _ := docker(context.Background(), "logs", rc.name)
		return nil, fmt.Errorf("redis in container %s: %w\n%s", rc.name, err, logs)
	}
	return rc, nil
}

// stop removes the container and the network; it runs after ctx may have
// ended (an interrupt), so it has its own bound.
func (rc *redisContainer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = docker(ctx, "rm", "-f", rc.name)
	_, _ = docker(ctx, "network", "rm", rc.name)
}

// removeStale removes the containers and networks of runs whose process
// is gone (killed before they could clean up).
func removeStale(ctx context.Context) {
	filter, label := "label="+pidLabel, `{{.Label "`+pidLabel+`"}}`
	for _, k := range []struct{ ls, rm []string }{ // containers first: a network in use stays
		{[]string{"ps", "-a", "--filter", filter, "--format", "{{.Names}} " + label}, []string{"rm", "-f"}},
		{[]string{"network", "ls", "--filter", filter, "--format", "{{.Name}} " + label}, []string{"network", "rm"}},
	} {
		out, err := docker(ctx, k.ls...)
		if err != nil {
			continue
		}
		for line := range strings.Lines(out) {
			f := strings.Fields(line)
			if len(f) != 2 {
				continue
			}
			if pid, err := strconv.Atoi(f[1]); err == nil && syscall.Kill(pid, 0) == syscall.ESRCH {
				_, _ = docker(ctx, append(k.rm, f[0])...)
			}
		}
	}
}

// docker runs the docker CLI and returns its trimmed standard output.
func docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("docker %s: %v: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}
