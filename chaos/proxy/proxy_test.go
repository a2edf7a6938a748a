package proxy

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echo starts a server that echoes every line back.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func start(t *testing.T) *Proxy {
	t.Helper()
	p, err := Listen("127.0.0.1:0", echo(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

type client struct {
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, p *Proxy) *client {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{c, bufio.NewReader(c)}
}

// roundTrip sends a line and returns how long the echo took, or an error
// if none came within wait.
func (c *client) roundTrip(line string, wait time.Duration) (time.Duration, error) {
	start := time.Now()
	c.c.SetDeadline(start.Add(wait))
	if _, err := io.WriteString(c.c, line+"\n"); err != nil {
		return 0, err
	}
	got, err := c.r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if got != line+"\n" {
		return 0, io.ErrUnexpectedEOF
	}
	return time.Since(start), nil
}

func TestPassThrough(t *testing.T) {
	c := dial(t, start(t))
	if _, err := c.roundTrip("hello", 2*time.Second); err != nil {
		t.Fatalf("round trip: %v", err)
	}
}

func TestBlackholeHoldsThenHeals(t *testing.T) {
	p := start(t)
	c := dial(t, p)
	if _, err := c.roundTrip("before", 2*time.Second); err != nil {
		t.Fatalf("round trip before the blackhole: %v", err)
	}
	p.Blackhole()
	if _, err := c.roundTrip("held", 300*time.Millisecond); err == nil {
		t.Fatal("round trip through a blackhole: got an answer, want a timeout")
	}
	fresh := dial(t, p) // a new connection is held too
	if _, err := fresh.roundTrip("new", 300*time.Millisecond); err == nil {
		t.Fatal("round trip on a new connection through a blackhole: got an answer, want a timeout")
	}
	p.Heal()
	// The held line arrives: nothing was lost.
	c.c.SetDeadline(time.Now().Add(2 * time.Second))
	if got, err := c.r.ReadString('\n'); err != nil || got != "held\n" {
		t.Fatalf("after heal: got %q, %v; want the held line", got, err)
	}
	fresh.c.SetDeadline(time.Now().Add(2 * time.Second))
	if got, err := fresh.r.ReadString('\n'); err != nil || got != "new\n" {
		t.Fatalf("new connection after heal: got %q, %v; want the held line", got, err)
	}
}

func TestStrandLosesOpenConnectionsOnly(t *testing.T) {
	p := start(t)
	c := dial(t, p)
	if _, err := c.roundTrip("before", 2*time.Second); err != nil {
		t.Fatalf("round trip before Strand: %v", err)
	}
	p.Strand()
	if _, err := c.roundTrip("lost", 300*time.Millisecond); err == nil {
		t.Fatal("round trip on a stranded connection: got an answer, want a timeout")
	}
	if _, err := dial(t, p).roundTrip("new", 2*time.Second); err != nil {
		t.Fatalf("round trip on a connection made after Strand: %v", err)
	}
	p.Heal() // heals blackholes and delays, not stranded connections
	if _, err := c.roundTrip("still lost", 300*time.Millisecond); err == nil {
		t.Fatal("round trip on a stranded connection after Heal: got an answer, want a timeout")
	}
}

func TestDelay(t *testing.T) {
	p := start(t)
	c := dial(t, p)
	const d = 150 * time.Millisecond
	p.Delay(d)
	took, err := c.roundTrip("slow", 3*time.Second)
	if err != nil {
		t.Fatalf("round trip with delay: %v", err)
	}
	if took < 2*d {
		t.Errorf("round trip took %v, want at least %v (delay both ways)", took, 2*d)
	}
	p.Heal()
	took, err = c.roundTrip("fast", 3*time.Second)
	if err != nil {
		t.Fatalf("round trip after heal: %v", err)
	}
	if took >= d {
		t.Errorf("round trip after heal took %v, want under %v", took, d)
	}
}

func TestResetAndClose(t *testing.T) {
	p := start(t)
	c := dial(t, p)
	if _, err := c.roundTrip("x", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Reset()
	c.c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.r.ReadByte(); err == nil {
		t.Fatal("read after Reset: got data, want the connection closed")
	}
	if _, err := dial(t, p).roundTrip("y", 2*time.Second); err != nil {
		t.Fatalf("new connection after Reset: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Error("dial after Close: got a connection, want refused")
	}
}

func TestListenFrom(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	remote := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		remote <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		c.Close()
	}()
	p, err := ListenFrom("127.0.0.1:0", ln.Addr().String(), "127.0.0.11")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dial(t, p)
	_, _ = c.c.Write([]byte("x\n"))
	if got := <-remote; got != "127.0.0.11" {
		t.Errorf("target saw the caller %s, want 127.0.0.11", got)
	}
	if _, err := ListenFrom("127.0.0.1:0", ln.Addr().String(), "nope"); err == nil {
		t.Error("ListenFrom accepted a bad source address")
	}
}
