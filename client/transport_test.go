package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeSource hands out "live" until it is invalidated, then "fresh".
type fakeSource struct {
	mu      sync.Mutex
	cur     string
	next    string // what Invalidate of cur turns it into
	reports []string
	err     error
}

var _ TokenSource = (*fakeSource)(nil)

func (s *fakeSource) Token(ctx context.Context, app string) (Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return Token{}, s.err
	}
	return Token{App: app, AccessToken: s.cur}, nil
}

func (s *fakeSource) Invalidate(ctx context.Context, app, token string) (Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reports = append(s.reports, token)
	if token == s.cur {
		s.cur = s.next
	}
	return Token{App: app, AccessToken: s.cur}, nil
}

// fakeWeChat answers errcode for every token in dead, echoes the body and
// query otherwise, and records what it received.
type fakeWeChat struct {
	srv  *httptest.Server
	mu   sync.Mutex
	dead map[string]int // token -> errcode
	seen []seenCall
}

type seenCall struct {
	query string
	body  string
}

func newFakeWeChat(t *testing.T, dead map[string]int) *fakeWeChat {
	f := &fakeWeChat{dead: dead}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.seen = append(f.seen, seenCall{r.URL.RawQuery, string(body)})
		code := f.dead[r.URL.Query().Get("access_token")]
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json; encoding=utf-8")
		if code != 0 {
			fmt.Fprintf(w, `{"errcode":%d,"errmsg":"invalid credential rid: 1"}`, code)
			return
		}
		fmt.Fprintf(w, `{"errcode":0,"errmsg":"ok","echo":%q}`, body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeWeChat) calls() []seenCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenCall(nil), f.seen...)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	return string(b)
}

func TestTransportInjectsToken(t *testing.T) {
	wc := newFakeWeChat(t, nil)
	hc := &http.Client{Transport: &Transport{App: "shop", Source: &fakeSource{cur: "live"}}}
	resp, err := hc.Get(wc.srv.URL + "/cgi-bin/user/info?openid=o%2B1&access_token=mine&lang=zh_CN&ACCESS_TOKEN=x")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	readAll(t, resp)
	calls := wc.calls()
	if len(calls) != 1 {
		t.Fatalf("calls: got %d, want 1", len(calls))
	}
	if got, want := calls[0].query, "openid=o%2B1&lang=zh_CN&ACCESS_TOKEN=x&access_token=live"; got != want {
		t.Errorf("query: got %q, want %q", got, want)
	}
}

func TestSetToken(t *testing.T) {
	tests := []struct{ raw, tok, want string }{
		{"", "t", "access_token=t"},
		{"a=1", "t+/", "a=1&access_token=t%2B%2F"},
		{"access_token=old&a=1&access%5Ftoken=old2", "t", "a=1&access_token=t"},
		{"a=1&access_token=old", "", "a=1"},
		{"&&a=1&", "t", "a=1&access_token=t"},
	}
	for _, tt := range tests {
		if got := SetToken(tt.raw, tt.tok); got != tt.want {
			t.Errorf("SetToken(%q, %q): got %q, want %q", tt.raw, tt.tok, got, tt.want)
		}
	}
}

func TestTransportRetriesDeadToken(t *testing.T) {
	for _, code := range []int{40001, 40014, 42001} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			wc := newFakeWeChat(t, map[string]int{"live": code})
			src := &fakeSource{cur: "live", next: "fresh"}
			hc := &http.Client{Transport: &Transport{App: "shop", Source: src}}
			resp, err := hc.Post(wc.srv.URL+"/cgi-bin/message/custom/send", "application/json", strings.NewReader(`{"touser":"o1"}`))
			if err != nil {
				t.Fatalf("Post: %v", err)
			}
			if got, want := readAll(t, resp), `{"errcode":0,"errmsg":"ok","echo":"{\"touser\":\"o1\"}"}`; got != want {
				t.Errorf("answer: got %s, want %s", got, want)
			}
			calls := wc.calls()
			if len(calls) != 2 {
				t.Fatalf("calls: got %d, want 2", len(calls))
			}
			if calls[0].body != calls[1].body || calls[1].body != `{"touser":"o1"}` {
				t.Errorf("bodies: got %q and %q, want the request body twice", calls[0].body, calls[1].body)
			}
			if calls[1].query != "access_token=fresh" {
				t.Errorf("retry query: got %q, want access_token=fresh", calls[1].query)
			}
			if len(src.reports) != 1 || src.reports[0] != "live" {
				t.Errorf("reports: got %q, want [live]", src.reports)
			}
		})
	}
}

func TestTransportRetriesOnce(t *testing.T) {
	wc := newFakeWeChat(t, map[string]int{"live": 40001, "fresh": 40001})
	src := &fakeSource{cur: "live", next: "fresh"}
	hc := &http.Client{Transport: &Transport{App: "shop", Source: src}}
	resp, err := hc.Get(wc.srv.URL + "/cgi-bin/getcallbackip")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if body := readAll(t, resp); !strings.Contains(body, `"errcode":40001`) {
		t.Errorf("answer: got %s, want the second 40001", body)
	}
	if n := len(wc.calls()); n != 2 {
		t.Errorf("calls: got %d, want 2", n)
	}
}

func TestTransportNoRetry(t *testing.T) {
	tests := []struct {
		name      string
		next      string // the token Invalidate hands back
		body      func() io.Reader
		wantCalls int
	}{
		{"same token back", "live", func() io.Reader { return nil }, 1},
		// A body without GetBody cannot be sent twice: the first answer
		// stands, though the token is still reported.
		{"body not replayable", "fresh", func() io.Reader { return io.MultiReader(strings.NewReader("x")) }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wc := newFakeWeChat(t, map[string]int{"live": 40001})
			src := &fakeSource{cur: "live", next: tt.next}
			hc := &http.Client{Transport: &Transport{App: "shop", Source: src}}
			req, err := http.NewRequest(http.MethodPost, wc.srv.URL+"/cgi-bin/x", tt.body())
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if body := readAll(t, resp); !strings.Contains(body, `"errcode":40001`) {
				t.Errorf("answer: got %s, want the first answer", body)
			}
			if n := len(wc.calls()); n != tt.wantCalls {
				t.Errorf("calls: got %d, want %d", n, tt.wantCalls)
			}
			if len(src.reports) != 1 {
				t.Errorf("reports: got %d, want 1", len(src.reports))
			}
		})
	}
}

func TestTransportLeavesAnswerReadable(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB, past the peek
	tests := []struct {
		name, ctype string
		body        []byte
	}{
		{"small json", "application/json", []byte(`{"errcode":0,"errmsg":"ok"}`)},
		{"large json", "application/json", append(append([]byte(`{"errcode":0,"x":"`), big...), '"', '}')},
		{"no type, chunked", "", big},
		{"media", "image/jpeg", big},
		{"text that is not json", "text/plain", []byte("hello")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Type"] = []string{tt.ctype}
				if tt.ctype == "" {
					w.Header()["Content-Type"] = nil
				}
				w.Write(tt.body)
			}))
			defer srv.Close()
			hc := &http.Client{Transport: &Transport{App: "shop", Source: &fakeSource{cur: "live"}}}
			resp, err := hc.Get(srv.URL)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got := readAll(t, resp); got != string(tt.body) {
				t.Errorf("answer: got %d bytes, want the %d sent", len(got), len(tt.body))
			}
		})
	}
}

// closeRecorder records whether the request body was closed.
type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestTransportSourceError(t *testing.T) {
	want := &Error{Status: 404, Code: CodeUnknownApp, Message: "unknown app"}
	tr := &Transport{App: "nope", Source: &fakeSource{err: want}}
	body := &closeRecorder{Reader: strings.NewReader("x")}
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/", body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if resp != nil {
		t.Errorf("RoundTrip: got an answer, want none")
	}
	var ae *Error
	if !errors.As(err, &ae) || ae != want {
		t.Errorf("RoundTrip: got %v, want the source's *Error", err)
	}
	if !body.closed {
		t.Errorf("request body: not closed, want closed")
	}
}
