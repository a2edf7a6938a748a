package api_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/wxtoken/wxtoken/api"
)

func TestParseInvalidate(t *testing.T) {
	for _, tt := range []struct {
		body string
		want string // the token, "" for a refusal
	}{
		{`{"access_token":"abc"}`, "abc"},
		{` {"access_token":"abc"} ` + "\n", "abc"},
		{`{"access_token":"abc","other":1}`, "abc"},
		{`{"access_token":""}`, ""},
		{`{}`, ""},
		{`null`, ""},
		{`[]`, ""},
		{`{"access_token":5}`, ""},
		{`{"access_token":"abc"}{"access_token":"def"}`, ""},
		{`{"access_token":"abc"} x`, ""},
		{`access_token=abc`, ""},
		{``, ""},
	} {
		req, err := api.ParseInvalidate(strings.NewReader(tt.body))
		if tt.want == "" {
			var e *api.Error
			if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Code != "bad_request" {
				t.Errorf("ParseInvalidate(%q): got %+v, %v; want 400 bad_request", tt.body, req, err)
			}
			continue
		}
		if err != nil || req.AccessToken != tt.want {
			t.Errorf("ParseInvalidate(%q): got %+v, %v; want token %q", tt.body, req, err, tt.want)
		}
	}
}

// FuzzInvalidateBody: any body is either refused as bad_request or gives
// a non-empty token that survives a round trip.
func FuzzInvalidateBody(f *testing.F) {
	for _, s := range []string{`{"access_token":"abc"}`, `{"access_token":"\u0000"}`, `{"access_token":"a","access_token":"b"}`,
		`{"ACCESS_TOKEN":"x"}`, `{"access_token":"x"} `, `{"access_token":"x"}]`, `"x"`, `{"access_token":"\ud800"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req, err := api.ParseInvalidate(strings.NewReader(body))
		if err != nil {
			var e *api.Error
			if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Code != "bad_request" {
				t.Fatalf("ParseInvalidate(%q): error %v, want 400 bad_request", body, err)
			}
			return
		}
		if req.AccessToken == "" {
			t.Fatalf("ParseInvalidate(%q): accepted an empty token", body)
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		back, err := api.ParseInvalidate(strings.NewReader(string(again)))
		if err != nil || back != req {
			t.Fatalf("round trip of %q: got %+v, %v; want %+v", again, back, err, req)
		}
	})
}
