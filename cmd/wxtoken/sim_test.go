package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
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
