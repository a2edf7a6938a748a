package wechattest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// from serves one GET on sim as if it came from remote (ip:port).
func from(t *testing.T, sim *Sim, remote, pathQuery string) answer {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, pathQuery, nil)
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	sim.ServeHTTP(w, r)
	var a answer
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
		t.Fatalf("decode %q: %v", w.Body.String(), err)
	}
	return a
}

const (
	classicPath = "/cgi-bin/token?grant_type=client_credential&appid=" + appID + "&secret=" + appSecret
	otherPath   = "/cgi-bin/token?grant_type=client_credential&appid=wxother&secret=other"
	wecomPath   = "/cgi-bin/gettoken?corpid=" + corpID + "&corpsecret=" + corpSecret
)

func TestRefuse(t *testing.T) {
	clock := NewFakeClock(t0)
	sim := New(Config{Now: clock.Now, Seed: 1})
	sim.AddApp(appID, appSecret)
	sim.AddApp("wxother", "other")
	sim.AddCorp(corpID, corpSecret)
	const leader, other = "127.0.0.11:5000", "127.0.0.12:5000"

	if err := sim.Refuse(appID, []string{"127.0.0.11"}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	a := from(t, sim, leader, classicPath)
	wantCode(t, a, 40164)
	if !strings.Contains(a.Errmsg, "invalid ip 127.0.0.11") {
		t.Errorf("errmsg = %q, want the caller's IP", a.Errmsg)
	}
	wantCode(t, from(t, sim, other, classicPath), 0)  // another host of the same app
	wantCode(t, from(t, sim, leader, otherPath), 0)   // another app from the refused host
	wantCode(t, from(t, sim, leader, wecomPath), 0)   // the corp is not refused
	clock.Advance(10 * time.Second)                   // the refusal ends
	wantCode(t, from(t, sim, leader, classicPath), 0) // at its Until, exactly
	if got := sim.Refusals(); len(got) != 0 {
		t.Errorf("Refusals after the end = %+v, want none", got)
	}

	// Every caller, until cleared; WeCom answers 60020.
	if err := sim.Refuse(corpID, nil, 0); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	wantCode(t, from(t, sim, leader, wecomPath), 60020)
	wantCode(t, from(t, sim, "[::ffff:127.0.0.1]:80", wecomPath), 60020)
	if got := sim.Refusals(); len(got) != 1 || got[0].AppID != corpID || !got[0].Until.IsZero() {
		t.Errorf("Refusals = %+v, want the corp's, with no end", got)
	}
	sim.ClearRefusals(corpID)
	wantCode(t, from(t, sim, leader, wecomPath), 0)

	l := sim.Ledger()
	if len(l) != 8 || l[0].Errcode != 40164 || l[0].Caller != "127.0.0.11" || l[0].Issued || l[6].Errcode != 60020 {
		t.Errorf("ledger = %+v, want refused calls recorded with their errcode and caller", l)
	}
	if err := sim.Refuse(appID, []string{"not-an-ip"}, 0); err == nil {
		t.Error("Refuse accepted a bad address")
	}
	if err := sim.Refuse("", nil, 0); err == nil {
		t.Error("Refuse accepted no appid")
	}
}

func TestAdminRefuse(t *testing.T) {
	e := newEnv(t, Config{})
	e.admin(http.MethodPost, "/_sim/refuse", `{"appid":"`+appID+`","for":"30s"}`, http.StatusNoContent, nil)
	wantCode(t, e.classic(), 40164)
	wantCode(t, e.stable(false), 40164)
	var got []struct {
		AppID string    `json:"appid"`
		Until time.Time `json:"until"`
	}
	e.admin(http.MethodGet, "/_sim/refuse", "", http.StatusOK, &got)
	if len(got) != 1 || got[0].AppID != appID || !got[0].Until.Equal(t0.Add(30*time.Second)) {
		t.Errorf("GET /_sim/refuse = %+v, want %s until t0+30s", got, appID)
	}
	e.admin(http.MethodDelete, "/_sim/refuse?appid="+appID, "", http.StatusNoContent, nil)
	wantCode(t, e.classic(), 0)
	e.admin(http.MethodPost, "/_sim/refuse", `{"appid":"`+appID+`","ips":["127.0.0.2"]}`, http.StatusNoContent, nil)
	wantCode(t, e.classic(), 0) // the test calls from 127.0.0.1
	e.admin(http.MethodDelete, "/_sim/refuse", "", http.StatusNoContent, nil)
	e.admin(http.MethodGet, "/_sim/refuse", "", http.StatusOK, &got)
	if len(got) != 0 {
		t.Errorf("after DELETE: %+v, want none", got)
	}
	for _, bad := range []string{`{"appid":""}`, `{"appid":"x","for":"soon"}`, `{"appid":"x","for":"-1s"}`, `{"appid":"x","ips":["nope"]}`} {
		e.admin(http.MethodPost, "/_sim/refuse", bad, http.StatusBadRequest, nil)
	}
}
