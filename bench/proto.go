package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// The load generator speaks both protocols with the same minimal design:
// one persistent connection (TCP, or a unix socket), the request bytes
// prepared once, one write per request, the answer read through a
// bufio.Reader into a reused buffer. Neither side gets a client library
// the other lacks.

// unixPrefix marks an address as a unix socket path: "unix:/run/x.sock".
const unixPrefix = "unix:"

// dial connects to addr: host:port over TCP, or unixPrefix and a socket
// path.
func dial(addr string) (net.Conn, error) {
	if path, ok := strings.CutPrefix(addr, unixPrefix); ok {
		return net.DialTimeout("unix", path, 5*time.Second)
	}
	return net.DialTimeout("tcp", addr, 5*time.Second)
}

// httpConn sends one GET over HTTP/1.1 keep-alive.
type httpConn struct {
	c    net.Conn
	r    *bufio.Reader
	req  []byte
	body []byte
}

var _ conn = (*httpConn)(nil)

// dialHTTP connects to addr (host:port, or unix:path) for GETs of path.
func dialHTTP(addr, path string) (*httpConn, error) {
	c, err := dial(addr)
	if err != nil {
		return nil, fmt.Errorf("dial http %s: %w", addr, err)
	}
	host := addr
	if strings.HasPrefix(addr, unixPrefix) {
		host = "localhost" // what Go's client sends for a unix: base URL
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: wxtoken-bench\r\nAccept: */*\r\n\r\n"
	return &httpConn{c: c, r: bufio.NewReaderSize(c, 4096), req: []byte(req), body: make([]byte, 1024)}, nil
}

func (h *httpConn) Close() error { return h.c.Close() }

func (h *httpConn) do() error {
	_, err := h.get()
	return err
}

// get sends the request and returns the body of a 200 answer; the slice is
// valid until the next call.
func (h *httpConn) get() ([]byte, error) {
	if _, err := h.c.Write(h.req); err != nil {
		return nil, fmt.Errorf("http write: %w", err)
	}
	line, err := h.r.ReadSlice('\n')
	if err != nil {
		return nil, fmt.Errorf("http status line: %w", err)
	}
	status := 0
	if len(line) >= 12 && bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		status, _ = strconv.Atoi(string(line[9:12]))
	}
	n := -1
	for {
		line, err = h.r.ReadSlice('\n')
		if err != nil {
			return nil, fmt.Errorf("http header: %w", err)
		}
		if len(line) <= 2 {
			break
		}
		if len(line) > 16 && bytes.EqualFold(line[:15], []byte("content-length:")) {
			n, err = strconv.Atoi(string(bytes.TrimSpace(line[15:])))
			if err != nil {
				return nil, fmt.Errorf("http content-length: %w", err)
			}
		}
	}
	if n < 0 {
		return nil, errors.New("http: answer without Content-Length")
	}
	if n > len(h.body) {
		h.body = make([]byte, n)
	}
	if _, err := io.ReadFull(h.r, h.body[:n]); err != nil {
		return nil, fmt.Errorf("http body: %w", err)
	}
	if status != 200 {
		return nil, &statusError{code: status, body: string(h.body[:n])}
	}
	return h.body[:n], nil
}

// statusError is an HTTP answer other than 200; the connection stays
// usable.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string { return fmt.Sprintf("http status %d: %s", e.code, e.body) }

// isStatus reports whether err is an HTTP answer other than 200.
func isStatus(err error) bool {
	var se *statusError
	return errors.As(err, &se)
}

// respConn sends one Redis GET in RESP.
type respConn struct {
	c   net.Conn
	r   *bufio.Reader
	req []byte
	buf []byte
}

var _ conn = (*respConn)(nil)

// dialRedis connects to a Redis server at addr (host:port, or unix:path)
// for GETs of key.
func dialRedis(addr, key string) (*respConn, error) {
	c, err := dial(addr)
	if err != nil {
		return nil, fmt.Errorf("dial redis %s: %w", addr, err)
	}
	return &respConn{c: c, r: bufio.NewReaderSize(c, 4096), req: respCommand("GET", key), buf: make([]byte, 1024)}, nil
}

func (r *respConn) Close() error { return r.c.Close() }

func (r *respConn) do() error {
	_, err := r.get()
	return err
}

// get sends GET and returns the value; the slice is valid until the next
// call.
func (r *respConn) get() ([]byte, error) {
	if _, err := r.c.Write(r.req); err != nil {
		return nil, fmt.Errorf("redis write: %w", err)
	}
	line, err := r.r.ReadSlice('\n')
	if err != nil {
		return nil, fmt.Errorf("redis read: %w", err)
	}
	if len(line) < 4 || line[0] != '$' {
		return nil, fmt.Errorf("redis: unexpected answer %q", bytes.TrimSpace(line))
	}
	n, err := strconv.Atoi(string(line[1 : len(line)-2]))
	if err != nil || n < 0 {
		return nil, fmt.Errorf("redis: no value (%q)", bytes.TrimSpace(line))
	}
	if n+2 > len(r.buf) {
		r.buf = make([]byte, n+2)
	}
	if _, err := io.ReadFull(r.r, r.buf[:n+2]); err != nil {
		return nil, fmt.Errorf("redis value: %w", err)
	}
	return r.buf[:n], nil
}

// command sends any command and returns its first answer line (simple
// strings, errors, integers).
func (r *respConn) command(args ...string) (string, error) {
	if _, err := r.c.Write(respCommand(args...)); err != nil {
		return "", fmt.Errorf("redis write: %w", err)
	}
	line, err := r.r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("redis read: %w", err)
	}
	return string(bytes.TrimSpace([]byte(line))), nil
}

// respCommand encodes a command as a RESP array of bulk strings.
func respCommand(args ...string) []byte {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	return b
}
