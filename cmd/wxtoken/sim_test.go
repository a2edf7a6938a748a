package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/wxcrypt"
)

// TestWechatSim: `wechat-sim --listen 127.0.0.1:0` prints its address; a
// token fetched from it is accepted by getcallbackip, a made-up one is not.
func TestWechatSim(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout syncWriter
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"wechat-sim", "--listen", "127.0.0.1:0", "--app", "wxa0000000000001:sec"}, &stdout, &bytes.Buffer{})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("wechat-sim: %v", err)
		}
	}()
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no address printed: %q", stdout.String())
		}
		if _, u, ok := strings.Cut(strings.TrimSpace(stdout.String()), "listening on "); ok {
			url = u
		}
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	getJSON(t, url+"/cgi-bin/token?grant_type=client_credential&appid=wxa0000000000001&secret=sec", &tok)
	if tok.AccessToken == "" || tok.ExpiresIn != 7200 {
		t.Fatalf("token answer %+v", tok)
	}
	var ips struct {
		IPList  []string `json:"ip_list"`
		Errcode int      `json:"errcode"`
	}
	getJSON(t, url+"/cgi-bin/getcallbackip?access_token="+tok.AccessToken, &ips)
	if len(ips.IPList) == 0 || ips.Errcode != 0 {
		t.Fatalf("getcallbackip with the token: %+v", ips)
	}
	ips.IPList = nil
	getJSON(t, url+"/cgi-bin/getcallbackip?access_token=made-up", &ips)
	if ips.Errcode != 40001 {
		t.Fatalf("getcallbackip with a made-up token: %+v, want 40001", ips)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestWechatSimPlatform: `wechat-sim --platform ...` pushes encrypted
// tickets to the platform's URL on the --ticket-every schedule, and a
// pushed ticket buys a component token.
func TestWechatSimPlatform(t *testing.T) {
	const (
		comp  = "wxcomp0000000001"
		token = "msgtoken"
		key   = "Q0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaMDEyMzQ1Njc"
	)
	crypt, err := wxcrypt.New(wxcrypt.Config{Token: token, AppID: comp, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	tickets := make(chan string, 10)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		q := r.URL.Query()
		op, err := crypt.Open(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), body)
		if err != nil {
			t.Errorf("push refused: %v", err)
			return
		}
		ev, err := wxcrypt.ParseEvent(op.Msg)
		if tk, ok := wxcrypt.TicketOf(ev); err == nil && ok {
			tickets <- tk.Value
		}
		_, _ = io.WriteString(w, "success")
	}))
	defer rc.Close()

	ctx, cancel := context.WithCancel(context.Background())
	var stdout syncWriter
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"wechat-sim", "--listen", "127.0.0.1:0", "--ticket-every", "50ms",
			"--platform", comp + ",compsecret," + token + "," + key + "," + rc.URL + "/events?x=1"}, &stdout, &bytes.Buffer{})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("wechat-sim: %v", err)
		}
	}()
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no address printed: %q", stdout.String())
		}
		if _, u, ok := strings.Cut(strings.TrimSpace(stdout.String()), "listening on "); ok {
			url = u
		}
	}
	var ticket string
	for range 2 { // two pushes: the schedule repeats
		select {
		case ticket = <-tickets:
		case <-time.After(10 * time.Second):
			t.Fatal("no ticket pushed within 10 s")
		}
	}
	body, _ := json.Marshal(map[string]string{"component_appid": comp, "component_appsecret": "compsecret", "component_verify_ticket": ticket})
	resp, err := http.Post(url+"/cgi-bin/component/api_component_token", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		ComponentAccessToken string `json:"component_access_token"`
		ExpiresIn            int    `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.ComponentAccessToken == "" || tok.ExpiresIn != 7200 {
		t.Fatalf("component token: %+v, %v", tok, err)
	}
}

func TestWechatSimPlatformFlag(t *testing.T) {
	for _, arg := range []string{"wxcomp,secret", "wxcomp,secret,token,short-key"} {
		err := run(context.Background(), []string{"wechat-sim", "--listen", "127.0.0.1:0", "--platform", arg}, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil {
			t.Errorf("--platform %q: nil error", arg)
		}
	}
}
