package chaos

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// spawner starts every child process from one OS thread that lives as long
// as the harness. Each child gets its own process group (so a signal
// reaches everything it forked) and SIGKILL as its parent-death signal,
// which Linux sends when the spawning thread ends: children die with the
// harness even if it is killed itself.
type spawner struct {
	reqs chan spawnReq
	done chan struct{}
}

type spawnReq struct {
	cmd *exec.Cmd
	res chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *spawner) loop() {
	defer close(s.done)
	// Never unlocked: Go ends the thread with this goroutine, which is
	// what fires the children's parent-death signal.
	runtime.LockOSThread()
	for r := range s.reqs {
		r.res <- r.cmd.Start()
	}
}

func (s *spawner) start(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	res := make(chan error, 1)
	select {
	case s.reqs <- spawnReq{cmd, res}:
	case <-s.done:
		return errors.New("spawner closed")
	}
	return <-res
}

// close ends the spawner; call it after every child has been killed.
func (s *spawner) close() {
	close(s.reqs)
	<-s.done
}

// proc is one child process that can be started again after it ends, with
// the same arguments and its output appended to one log file. Its methods
// are safe for concurrent use.
type proc struct {
	name string
	path string
	args []string
	log  string
	sp   *spawner

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has been reaped
	starts int
}

func newProc(sp *spawner, name, logPath, path string, args ...string) *proc {
	exited := make(chan struct{})
	close(exited)
	return &proc{name: name, path: path, args: args, log: logPath, sp: sp, exited: exited}
}

// start runs the process; it fails if it is already running.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.exited:
	default:
		return fmt.Errorf("%s: already running", p.name)
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	p.starts++
	fmt.Fprintf(f, "\n==== chaos: start #%d of %s at %s\n", p.starts, p.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.path, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := p.sp.start(cmd); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited = cmd, exited
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(exited)
	}()
	return nil
}

// running reports whether the process has been started and not reaped.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// signal sends sig to the process group; a process that is not running
// is an error.
func (p *proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.exited:
		return fmt.Errorf("%s: not running", p.name)
	default:
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	return nil
}

// kill sends SIGKILL to the group (a stopped process dies too) and waits,
// bounded, for the process to be reaped.
func (p *proc) kill() error {
	if !p.running() {
		return nil
	}
	_ = p.signal(syscall.SIGKILL)
	return p.wait(10 * time.Second)
}

// stop asks the process to end with SIGTERM and kills it if it has not
// within grace.
func (p *proc) stop(grace time.Duration) error {
	if !p.running() {
		return nil
	}
	_ = p.signal(syscall.SIGCONT)
	_ = p.signal(syscall.SIGTERM)
	if p.wait(grace) == nil {
		return nil
	}
	return p.kill()
}

func (p *proc) wait(d time.Duration) error {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	select {
	case <-exited:
		return nil
	case <-time.After(d):
		return fmt.Errorf("%s: still running after %v", p.name, d)
	}
}

// pid is the current process id, or 0.
func (p *proc) pid() int {
	if !p.running() {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}
