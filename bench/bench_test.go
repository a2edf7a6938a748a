package main

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/fetcher/wechattest"
)

func TestHTTPConn(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ok" {
			http.Error(w, "nope", http.StatusNotFound)
			return
		}
		w.Write([]byte(`{"access_token":"abc"}`))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	c, err := dialHTTP(addr, "/ok")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 { // the connection is reused
		body, err := c.get()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(body), `{"access_token":"abc"}`; got != want {
			t.Errorf("body: got %q, want %q", got, want)
		}
	}
	bad, err := dialHTTP(addr, "/missing")
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if _, err := bad.get(); !isStatus(err) {
		t.Errorf("get of a 404: got %v, want a status error", err)
	}
}

// fakeRedis answers GET with value and SET with +OK, in RESP, on a
// loopback port whose address it returns.
func fakeRedis(t *testing.T, value string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fakeRedisOn(t, ln, value)
	return ln.Addr().String()
}

// fakeRedisOn serves fakeRedis's answers on ln.
func fakeRedisOn(t *testing.T, ln net.Listener, value string) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					var args []string
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
					if err != nil || line[0] != '*' {
						return
					}
					for range n {
						if _, err := r.ReadString('\n'); err != nil { // $len
							return
						}
						a, err := r.ReadString('\n')
						if err != nil {
							return
						}
						args = append(args, strings.TrimSpace(a))
					}
					switch args[0] {
					case "GET":
						c.Write([]byte("$" + strconv.Itoa(len(value)) + "\r\n" + value + "\r\n"))
					default:
						c.Write([]byte("+OK\r\n"))
					}
				}
			}()
		}
	}()
}

func TestRESPConn(t *testing.T) {
	value := strings.Repeat("v", redisValueLen)
	c, err := dialRedis(fakeRedis(t, value), "k")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := c.command("SET", "k", value); err != nil || got != "+OK" {
		t.Fatalf("SET: got %q, %v", got, err)
	}
	for range 3 {
		got, err := c.get()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != value {
			t.Errorf("GET: got %d bytes, want %d", len(got), len(value))
		}
	}
}

func TestLoadGen(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	g, err := newLoadGen(4, func() (conn, error) { return dialHTTP(addr, "/") })
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for range 2 {
		if err := g.run(context.Background(), 10*time.Millisecond, 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	l, err := g.result()
	if err != nil {
		t.Fatal(err)
	}
	if l.Requests == 0 || l.Duration != 100*time.Millisecond || l.P50 > l.P99 || l.P99 > l.Max {
		t.Errorf("result: %+v", l)
	}
}

func TestQuantile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{{0.5, 50}, {0.99, 99}, {1, 100}, {0, 1}}
	for _, tt := range tests {
		if got := quantile(d, tt.q); got != tt.want {
			t.Errorf("quantile(%v): got %v, want %v", tt.q, got, tt.want)
		}
	}
}

func TestMaxInFlight(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond) }
	ledger := []wechattest.Fetch{
		{Start: at(0), At: at(10)},
		{Start: at(5), At: at(15)},
		{Start: at(10), At: at(20)}, // starts as the first ends: not 3 at once
		{Start: at(12), At: at(13)},
	}
	if got, want := maxInFlight(ledger), 3; got != want {
		t.Errorf("maxInFlight: got %d, want %d", got, want)
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		v    float64
		unit string
		want string
	}{
		{12345.6, "req/s", "12,346 req/s"},
		{0.4567, "ms", "0.457 ms"},
		{25.66, "ms", "25.7 ms"},
		{1234.6, "ms", "1235 ms"},
		{13.2449, "calls/day", "13.24 calls/day"},
		{7, "", "7"},
		{0.59, "x", "0.59 x"},
		{149.96, "MB", "150.0 MB"},
		{149.84, "MB", "149.8 MB"},
	}
	for _, tt := range tests {
		if got := formatValue(tt.v, tt.unit); got != tt.want {
			t.Errorf("formatValue(%v, %q): got %q, want %q", tt.v, tt.unit, got, tt.want)
		}
	}
}
