package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// front is the public host of the platform's event URL: the simulator
// pushes there, and the front passes each push on to one replica,
// taking them in turn and trying the next when one does not answer (a
// killed or stopped replica), as a load balancer in front of the
// replicas would. Every replica accepts pushes.
type front struct {
	ln       net.Listener
	srv      *http.Server
	replicas func() []*replica
	hc       *http.Client
	next     atomic.Uint64
	done     sync.WaitGroup
}

// newFront listens on addr and serves until close.
func newFront(addr string, replicas func() []*replica) (*front, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("front: %w", err)
	}
	f := &front{ln: ln, replicas: replicas, hc: &http.Client{Timeout: 3 * time.Second}}
	f.srv = &http.Server{Handler: f, ReadHeaderTimeout: 5 * time.Second}
	f.done.Add(1)
	go func() { defer f.done.Done(); _ = f.srv.Serve(ln) }()
	return f, nil
}

func (f *front) url() string { return "http://" + f.ln.Addr().String() }

// ServeHTTP passes the push on to the first replica that answers.
func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "front: body", http.StatusRequestEntityTooLarge)
		return
	}
	rs := f.replicas()
	start := int(f.next.Add(1))
	errs := []error{errors.New("front: no replica answered")}
	for i := range rs {
		rep := rs[(start+i)%len(rs)]
		if !rep.proc.running() {
			continue
		}
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, rep.url()+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
		resp, err := f.hc.Do(req)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", rep.name, err))
			continue
		}
		ans, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(ans)
		return
	}
	http.Error(w, errors.Join(errs...).Error(), http.StatusBadGateway)
}

// close stops the front and waits for it.
func (f *front) close() {
	_ = f.srv.Close()
	f.done.Wait()
}
