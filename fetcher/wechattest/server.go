package wechattest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server is a Sim listening on a real address, like httptest.Server. Its
// methods are safe for concurrent use.
type Server struct {
	*Sim
	// URL is the base URL, http://ipaddr:port with no trailing slash. Use
	// it as both the api.weixin.qq.com and the qyapi.weixin.qq.com base.
	URL string

	ln         net.Listener
	srv        *http.Server
	done       chan struct{} // closed when Serve returns
	stopPushes context.CancelFunc
	pushesDone chan struct{} // closed when RunPushes returns

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
	conns    atomic.Int64 // connections accepted
}

// NewServer starts a simulator on 127.0.0.1 and a random port. Like
// httptest.NewServer it panics if it cannot listen; call Close when done.
func NewServer(cfg Config) *Server {
	s, err := Start("127.0.0.1:0", cfg)
	if err != nil {
		panic(fmt.Sprintf("wechattest: %v", err))
	}
	return s
}

// Start starts a simulator listening on addr (host:port; port 0 picks one),
// for standalone use. Call Close when done.
func Start(addr string, cfg Config) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	s := &Server{
		Sim:        New(cfg),
		URL:        "http://" + ln.Addr().String(),
		ln:         ln,
		done:       make(chan struct{}),
		pushesDone: make(chan struct{}),
	}
	var pctx context.Context
	pctx, s.stopPushes = context.WithCancel(context.Background())
	go func() {
		defer close(s.pushesDone)
		_ = s.Sim.RunPushes(pctx) // Open Platform ticket pushes; nil when stopped
	}()
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.conns.Add(1)
			}
		}}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln) // http.ErrServerClosed once Close is called
	}()
	return s, nil
}

// Conns returns how many connections the server has accepted: beside the
// ledger's count of calls, it tells whether clients reuse connections
// (against WeChat, every new one is a TLS handshake).
func (s *Server) Conns() int64 { return s.conns.Load() }

// serve tracks in-flight requests so Close can wait for them.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	defer s.inflight.Done()
	s.Sim.ServeHTTP(w, r)
}

// Close stops the server: Open Platform pushes stop (one in progress is
// cancelled), held (timeout and latency) requests are released at once,
// connections are closed, and Close returns when every handler has
// finished. It is safe to call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if already {
		<-s.done
		<-s.pushesDone
		return
	}
	s.stopPushes()
	<-s.pushesDone
	s.Sim.relOnce.Do(func() { close(s.Sim.release) })
	_ = s.srv.Close()
	<-s.done
	s.inflight.Wait()
}
