package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// errNoRedis says how to get redis-server.
var errNoRedis = errors.New("redis-server not found on PATH: install it with `apt-get install -y redis-server`")

// redisServer is a redis-server process of our own on a loopback port and
// a unix socket, with no persistence.
type redisServer struct {
	addr    string // 127.0.0.1:port
	unix    string // unix:<dir>/redis.sock
	version string
	proc    *proc
}

// startRedis starts redis-server on a free loopback port and on a unix
// socket in dir, its working directory, and waits until it answers PING.
func startRedis(ctx context.Context, dir string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errNoRedis
	}
	version := ""
	if out, err := exec.CommandContext(ctx, bin, "--version").Output(); err == nil {
		version = strings.TrimSpace(string(out))
		if f := strings.Fields(version); len(f) >= 3 {
			version = "redis " + strings.TrimPrefix(f[2], "v=")
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--unixsocket", dir + "/redis.sock", "--unixsocketperm", "700",
		"--daemonize", "no", "--dir", dir, "--loglevel", "warning", "--logfile", ""}
	p, err := startProc(bin, args, dir, "redis.log")
	if err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	r := &redisServer{addr: "127.0.0.1:" + strconv.Itoa(port), unix: unixPrefix + dir + "/redis.sock", version: version, proc: p}
	for _, addr := range []string{r.addr, r.unix} {
		if err := waitRedis(ctx, addr, p.exited); err != nil {
			p.stop(5 * time.Second)
			return nil, fmt.Errorf("redis-server: %w (log: %s)", err, p.logPath)
		}
	}
	return r, nil
}

// waitRedis waits up to 10 s until Redis at addr answers PING, or gone
// says it never will.
func waitRedis(ctx context.Context, addr string, gone func() bool) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := dialRedis(addr, "x")
		if err == nil {
			pong, err := c.command("PING")
			c.Close()
			if err == nil && pong == "+PONG" {
				return nil
			}
		}
		if time.Now().After(deadline) || gone() {
			return fmt.Errorf("no answer to PING at %s", addr)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// setRedis stores value at key of the Redis at addr.
func setRedis(addr, key, value string) error {
	c, err := dialRedis(addr, key)
	if err != nil {
		return err
	}
	defer c.Close()
	ok, err := c.command("SET", key, value)
	if err != nil {
		return err
	}
	if ok != "+OK" {
		return fmt.Errorf("redis SET: %s", ok)
	}
	got, err := c.get()
	if err != nil {
		return err
	}
	if string(got) != value {
		return fmt.Errorf("redis GET after SET: got %d bytes, want %d", len(got), len(value))
	}
	return nil
}

func (r *redisServer) stop() { r.proc.stop(5 * time.Second) }
