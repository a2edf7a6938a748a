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

// redisServer is a redis-server process of our own on a loopback port,
// with no persistence.
type redisServer struct {
	addr    string
	version string
	proc    *proc
}

// startRedis starts redis-server on a free loopback port, its working
// directory in dir, and waits until it answers PING.
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
		"--daemonize", "no", "--dir", dir, "--loglevel", "warning", "--logfile", ""}
	p, err := startProc(bin, args, dir, "redis.log")
	if err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	r := &redisServer{addr: "127.0.0.1:" + strconv.Itoa(port), version: version, proc: p}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := dialRedis(r.addr, "x")
		if err == nil {
			pong, err := c.command("PING")
			c.Close()
			if err == nil && pong == "+PONG" {
				return r, nil
			}
		}
		if time.Now().After(deadline) || p.exited() {
			p.stop(5 * time.Second)
			return nil, fmt.Errorf("redis-server on %s did not answer PING (log: %s)", r.addr, p.logPath)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// set stores value at key.
func (r *redisServer) set(key, value string) error {
	c, err := dialRedis(r.addr, key)
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
