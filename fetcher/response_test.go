package fetcher

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var fuzzOps = []string{opToken, opStableToken, opGetToken, opGetTicket, opCallbackIP}

// FuzzParseResponse checks the invariants of response parsing for any body,
// status, operation and secret: no panic; success only with HTTP 200, a
// non-empty credential and a positive lifetime; every error classified;
// APIError.Msg never holds the secret.
func FuzzParseResponse(f *testing.F) {
	seeds := []struct {
		status int
		body   string
		op     uint8
		secret string
	}{
		{200, `{"access_token":"ACCESS_TOKEN","expires_in":7200}`, 0, "s3cr3t"},
		{200, `{"errcode":0,"errmsg":"ok","access_token":"T","expires_in":7200}`, 2, "corp"},
		{200, `{"errcode":0,"errmsg":"ok","ticket":"bxLdikRXVbTPdHSM05e5u5sUoXNKd8-41ZO3MhKoyN5OfkWITDGgnr2fwJ0m9E8NYzWKVZvdVtaUgWvsdshFKA","expires_in":7200}`, 3, "tok"},
		{200, `{"errcode":0,"errmsg":"ok","ip_list":["101.226.62.77","101.226.62.78"]}`, 4, "tok"},
		{200, `{"errcode":40013,"errmsg":"invalid appid"}`, 0, "s"},
		{200, `{"errcode":40125,"errmsg":"invalid appsecret s3cr3tvalue, secret=s3cr3tvalue rid: 6523"}`, 0, "s3cr3tvalue"},
		{200, `{"errcode":40001,"errmsg":"invalid credential, access_token is invalid or not latest"}`, 3, "tok"},
		{200, `{"errcode":45009,"errmsg":"reach max api daily quota limit"}`, 1, "x"},
		{200, `{"errcode":-1,"errmsg":"system error"}`, 2, "x"},
		{200, `{"errcode":89503,"errmsg":"此IP调用需要管理员确认"}`, 0, "x"},
		{200, `{"access_token":"","expires_in":7200}`, 0, ""},
		{200, `{"access_token":"T","expires_in":0}`, 0, ""},
		{200, `{"access_token":"T","expires_in":-1}`, 1, ""},
		{200, `{"access_token":"T","expires_in":"7200"}`, 0, ""},
		{200, `{"access_token":"T","expires_in":1e3}`, 0, ""},
		{200, `{"access_token":"T","expires_in":9223372036854775807}`, 0, ""},
		{200, `{"access_token":"T","expires_in":7200`, 0, ""},
		{200, `{"access_token":"T","expires_in":7200}}`, 0, ""},
		{200, `null`, 0, ""},
		{200, `[]`, 4, ""},
		{200, ``, 0, ""},
		{200, `<html><body>bad gateway</body></html>`, 0, ""},
		{200, "{\"access_token\":\"\xff\xfe\",\"expires_in\":7200}", 0, ""},
		{400, `{"errcode":40002,"errmsg":"invalid grant_type"}`, 0, ""},
		{404, `not found`, 0, ""},
		{502, `{"errcode":0,"access_token":"T","expires_in":7200}`, 0, ""},
		{302, ``, 0, ""},
	}
	for _, s := range seeds {
		f.Add(s.status, []byte(s.body), s.op, s.secret)
	}
	f.Fuzz(func(t *testing.T, status int, body []byte, opIndex uint8, secret string) {
		op := fuzzOps[int(opIndex)%len(fuzzOps)]
		red := newRedactor(secret)
		var err error
		if op == opCallbackIP {
			var ips []string
			ips, err = parseIPList(op, status, body, red)
			if err == nil && ips == nil {
				t.Fatalf("parseIPList: nil list and nil error")
			}
		} else {
			var (
				v string
				d time.Duration
			)
			v, d, err = parseToken(op, status, body, red)
			if err == nil && (v == "" || d <= 0) {
				t.Fatalf("parseToken = %q, %v, nil: want a value and a positive lifetime", v, d)
			}
			if err != nil && (v != "" || d != 0) {
				t.Fatalf("parseToken = %q, %v, %v: want zero values with an error", v, d, err)
			}
		}
		if err == nil {
			if status != 200 {
				t.Fatalf("status %d accepted", status)
			}
			return
		}
		if c := ClassOf(err); c == ClassUnknown {
			t.Fatalf("ClassOf(%v) = unknown", err)
		}
		var ae *APIError
		if errors.As(err, &ae) {
			if ae.Code == 0 || ae.Op != op || ae.Class != classify(op, ae.Code) {
				t.Fatalf("APIError %+v: inconsistent for op %q", ae, op)
			}
			if secret != "" && strings.Contains(ae.Msg, secret) {
				t.Fatalf("APIError.Msg %q contains secret %q", ae.Msg, secret)
			}
			if len(ae.Msg) > maxMsgLen+len("...") {
				t.Fatalf("APIError.Msg is %d bytes", len(ae.Msg))
			}
		}
	})
}
