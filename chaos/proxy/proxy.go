// Package proxy is a TCP proxy that cuts or slows one link on demand, for
// fault injection. Blackhole holds all traffic the way a network partition
// does: nothing arrives, nothing is lost, and once healed the held bytes
// flow on (TCP retransmits them). Strand loses the open connections the
// way a NAT or firewall that forgets its connection table does: they stay
// open at both ends and carry nothing, ever again. Delay holds every chunk
// for a fixed time before forwarding it, in order.
package proxy

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// DialTimeout bounds the dial to the target for one accepted connection.
const DialTimeout = 3 * time.Second

// Proxy forwards connections from its listener to one target address. Its
// methods are safe for concurrent use; a mode change applies at once to
// every connection, open or new.
type Proxy struct {
	ln     net.Listener
	target string
	dialer net.Dialer
	wg     sync.WaitGroup // accept loop and every connection

	mu        sync.Mutex
	blackhole bool
	delay     time.Duration
	changed   chan struct{} // closed and replaced at every change
	conns     map[net.Conn]struct{}
	links     map[*link]struct{} // one per accepted connection
	closed    bool
	done      chan struct{} // closed by Close
}

// Listen starts a proxy on addr (e.g. "127.0.0.1:0") to target.
func Listen(addr, target string) (*Proxy, error) { return ListenFrom(addr, target, "") }

// ListenFrom is Listen with every connection to target dialed from the
// local address source (an IP such as "127.0.0.11"; "" lets the system
// choose), so that the target sees one caller per proxy. On Linux every
// address of 127.0.0.0/8 is a local loopback address.
func ListenFrom(addr, target, source string) (*Proxy, error) {
	var d net.Dialer
	d.Timeout = DialTimeout
	if source != "" {
		ip := net.ParseIP(source)
		if ip == nil {
			return nil, fmt.Errorf("proxy to %s: bad source address %q", target, source)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("proxy to %s: %w", target, err)
	}
	p := &Proxy{ln: ln, target: target, dialer: d, changed: make(chan struct{}), conns: map[net.Conn]struct{}{}, links: map[*link]struct{}{}, done: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Blackhole holds all traffic, in both directions and on new connections,
// until Heal.
func (p *Proxy) Blackhole() { p.set(true, 0) }

// Delay forwards every chunk d after it was read, until Heal.
func (p *Proxy) Delay(d time.Duration) { p.set(false, d) }

// Heal forwards everything at once again, held bytes first.
func (p *Proxy) Heal() { p.set(false, 0) }

// Strand makes every open connection carry nothing from now on, in either
// direction, while both of its ends stay open (no FIN, no RST: only a
// keepalive can tell); connections accepted later flow as usual.
func (p *Proxy) Strand() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for l := range p.links {
		l.stranded = true
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

// link is the state of one accepted connection; stranded is guarded by
// Proxy.mu.
type link struct{ stranded bool }

// Reset closes every open connection (as a crashed middlebox would);
// new ones are accepted as usual.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Close stops the listener, closes every connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) set(blackhole bool, delay time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blackhole, p.delay = blackhole, delay
	close(p.changed)
	p.changed = make(chan struct{})
}

// state is the mode for l: a stranded link is held like a blackhole.
func (p *Proxy) state(l *link) (blackhole bool, delay time.Duration, changed <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.blackhole || l.stranded, p.delay, p.changed
}

// track adds c to the open connections; false if the proxy is closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
	c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		if !p.track(c) {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(c)
			p.serve(c)
		}()
	}
}

// gate waits until a chunk read at readAt may be forwarded; false if the
// proxy closed meanwhile or stop was closed.
func (p *Proxy) gate(l *link, readAt time.Time, stop <-chan struct{}) bool {
	for {
		blackhole, delay, changed := p.state(l)
		var wait <-chan time.Time
		var t *time.Timer
		if !blackhole {
			d := time.Until(readAt.Add(delay))
			if d <= 0 {
				return true
			}
			t = time.NewTimer(d)
			wait = t.C
		}
		ok, again := false, false
		select {
		case <-wait:
			ok = true
		case <-changed:
			again = true
		case <-stop:
		case <-p.done:
		}
		if t != nil {
			t.Stop()
		}
		if !again {
			return ok
		}
	}
}

// serve connects c to the target, once the link is not blackholed (a
// partitioned SYN hangs), and pumps both ways until either side ends.
func (p *Proxy) serve(c net.Conn) {
	stop := make(chan struct{})
	var once sync.Once
	end := func() { once.Do(func() { close(stop) }) }
	l := &link{}
	p.mu.Lock()
	p.links[l] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
	}()
	if !p.gate(l, time.Now(), stop) {
		return
	}
	up, err := p.dialer.Dial("tcp", p.target)
	if err != nil {
		return // the client sees its connection close, as with a refused dial
	}
	if !p.track(up) {
		return
	}
	defer p.untrack(up)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pump(l, up, c, stop, end) }()
	go func() { defer wg.Done(); p.pump(l, c, up, stop, end) }()
	<-stop
	c.Close()
	up.Close()
	wg.Wait()
}

type chunk struct {
	b  []byte
	at time.Time
}

// pump copies src to dst through the gate. A reader goroutine keeps
// reading while the writer waits, up to a bounded queue, so a delay does
// not throttle throughput; a blackhole fills the queue and then stalls the
// sender, as a full TCP window would.
func (p *Proxy) pump(l *link, dst, src net.Conn, stop <-chan struct{}, end func()) {
	q := make(chan chunk, 64)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case q <- chunk{buf[:n], time.Now()}:
				case <-stop:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	for ch := range q {
		if !p.gate(l, ch.at, stop) {
			break
		}
		if _, err := dst.Write(ch.b); err != nil {
			break
		}
	}
	// End the link; serve then closes both connections, which ends the
	// reader, which closes q.
	end()
	for range q {
	}
}
