package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// Reference servers calibrate section 1: they answer every request with
// the same bytes a replica answers a token read with, one through net/http
// with the least handler possible, one as a bare HTTP/1.1 loop on a TCP
// connection. The runner starts them as child processes of its own binary
// (the hidden -reference-server flag), like the replica and redis-server.

const (
	refNetHTTP = "nethttp"
	refRaw     = "raw"
)

// serveReference runs a reference server of mode on addr until ctx ends.
func serveReference(ctx context.Context, mode, addr, bodyFile string) error {
	body, err := os.ReadFile(bodyFile)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	switch mode {
	case refNetHTTP:
		ct, cc, cl := []string{"application/json"}, []string{"no-store"}, []string{strconv.Itoa(len(body))}
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h["Content-Type"], h["Cache-Control"], h["Content-Length"] = ct, cc, cl
			_, _ = w.Write(body)
		})}
		go func() { <-ctx.Done(); srv.Close() }()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	case refRaw:
		var date atomic.Pointer[[]byte]
		setDate := func() {
			d := []byte(time.Now().UTC().Format(http.TimeFormat))
			date.Store(&d)
		}
		setDate()
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					ln.Close()
					return
				case <-t.C:
					setDate()
				}
			}
		}()
		head := "HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: " + strconv.Itoa(len(body)) +
			"\r\nContent-Type: application/json\r\nDate: "
		for {
			c, err := ln.Accept()
			if err != nil {
				return nil
			}
			go serveRaw(c, []byte(head), body, &date)
		}
	}
	return fmt.Errorf("unknown reference server %q", mode)
}

// serveRaw answers every request on c, each read up to its blank line,
// with head, the current date and body in one write.
func serveRaw(c net.Conn, head, body []byte, date *atomic.Pointer[[]byte]) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 4096)
	out := make([]byte, 0, len(head)+64+len(body))
	for {
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 {
				break
			}
		}
		out = append(append(append(append(out[:0], head...), *date.Load()...), "\r\n\r\n"...), body...)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// startReference starts a reference server of mode as a child process
// answering body, with env ("KEY=value") added to its environment, and
// waits until it accepts connections.
func (e *env) startReference(mode string, body []byte, env ...string) (*proc, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	bodyFile := e.dir + "/reference-body.json"
	if err := os.WriteFile(bodyFile, body, 0o644); err != nil {
		return nil, "", err
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := startProcEnv(self, []string{"-reference-server", mode, "-listen", addr, "-body", bodyFile}, env, e.dir, "reference-"+mode+".log")
	if err != nil {
		return nil, "", err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := dialHTTP(addr, "/")
		if err == nil {
			_, err = c.get()
			c.Close()
			if err == nil {
				return p, addr, nil
			}
		}
		if time.Now().After(deadline) || p.exited() {
			p.kill()
			return nil, "", fmt.Errorf("reference server %s did not answer: %v (log: %s)", mode, err, p.logPath)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
