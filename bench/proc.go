package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process whose output goes to a log file. Its methods are
// safe for concurrent use.
type proc struct {
	cmd     *exec.Cmd
	logPath string
	started time.Time
	done    chan struct{} // closed when the process has exited
}

// startProc starts bin with args, output in dir/logName. onLine, if set,
// sees every line of standard output.
func startProc(bin string, args []string, dir, logName string, onLine ...func(string)) (*proc, error) {
	return startProcEnv(bin, args, nil, dir, logName, onLine...)
}

// startProcEnv is startProc with env ("KEY=value") added to the runner's
// environment.
func startProcEnv(bin string, args, env []string, dir, logName string, onLine ...func(string)) (*proc, error) {
	logPath := filepath.Join(dir, logName)
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stderr = f
	cmd.Stdout = f
	if len(onLine) > 0 {
		cmd.Stdout = &lineWriter{w: f, fn: onLine[0]}
	}
	// The child dies with the runner, whatever ends the runner.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to grace for the exit, then kills.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill()
	}
}

// kill sends SIGKILL and waits for the exit.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// memory returns the process's resident set size now and its peak, in MB.
func (p *proc) memory() (rss, peak float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid()))
	if err != nil {
		return 0, 0, err
	}
	field := func(name string) float64 {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, name+":"); ok {
				f := strings.Fields(v)
				if len(f) > 0 {
					kb, _ := strconv.ParseFloat(f[0], 64)
					return kb / 1024
				}
			}
		}
		return 0
	}
	return field("VmRSS"), field("VmHWM"), nil
}

// lineWriter passes whole lines to fn and everything to w.
type lineWriter struct {
	mu  sync.Mutex
	w   *os.File
	fn  func(string)
	buf []byte
}

func (l *lineWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.fn(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	return l.w.Write(b)
}

// wxtokenProc is a running `wxtoken serve` process.
type wxtokenProc struct {
	*proc
	name string
	url  string // http://127.0.0.1:port
	addr string // 127.0.0.1:port
}

// startWxtoken runs `wxtoken serve --config cfgPath` in dir and waits until
// it prints the URL it serves on. env ("KEY=value") is added to the
// runner's environment.
func startWxtoken(ctx context.Context, bin, cfgPath, dir, name string, env ...string) (*wxtokenProc, error) {
	urlc := make(chan string, 1)
	p, err := startProcEnv(bin, []string{"serve", "--config", cfgPath}, env, dir, name+".log", func(line string) {
		if u, ok := strings.CutPrefix(line, "wxtoken: serving on "); ok {
			select {
			case urlc <- strings.TrimSpace(u):
			default:
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	select {
	case u := <-urlc:
		return &wxtokenProc{proc: p, name: name, url: u, addr: strings.TrimPrefix(u, "http://")}, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited at start; see %s", name, p.logPath)
	case <-time.After(60 * time.Second):
		p.kill()
		return nil, fmt.Errorf("%s did not start within 60 s; see %s", name, p.logPath)
	case <-ctx.Done():
		p.kill()
		return nil, ctx.Err()
	}
}

// freePort returns a loopback port that is free right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// buildWxtoken builds cmd/wxtoken of the module in the working directory
// into dir.
func buildWxtoken(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "wxtoken")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/wxtoken")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/wxtoken (run the bench from the module root): %v\n%s", err, b)
	}
	return out, nil
}
