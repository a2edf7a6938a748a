package fetcher

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode"
)

const (
	// maxBodySize bounds what is read of an answer; a longer body is an
	// ErrBadResponse.
	maxBodySize = 64 << 10
	// maxListBodySize bounds an api_get_authorizer_list answer: 500 lines
	// of appid, refresh token and time pass 64 KiB.
	maxListBodySize = 1 << 20
	// maxExpiresIn bounds expires_in, in seconds (WeChat says 7200): a larger
	// value is an ErrBadResponse rather than a Duration overflow.
	maxExpiresIn = 366 * 24 * 60 * 60
)

// wireResponse holds every field this package reads from an answer.
type wireResponse struct {
	ErrCode     int    `json:"errcode"`
	ErrMsg      string `json:"errmsg"`
	AccessToken string `json:"access_token"`
	// ComponentAccessToken is api_component_token's access_token.
	ComponentAccessToken string   `json:"component_access_token"`
	Ticket               string   `json:"ticket"`
	ExpiresIn            int64    `json:"expires_in"`
	IPList               []string `json:"ip_list"`
}

// readBody reads at most limit bytes of r and fails if there is more.
func readBody(r io.Reader, limit int) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read body: %w", ErrBadResponse, err)
	}
	if len(body) > limit {
		return nil, fmt.Errorf("%w: body exceeds %d bytes", ErrBadResponse, limit)
	}
	return body, nil
}

// decode checks the HTTP status and the errcode of an answer to op and
// returns its fields. Messages are cleaned with red.
func decode(op string, status int, body []byte, red redactor) (*wireResponse, error) {
	if status >= 500 {
		return nil, &statusError{op: op, status: status}
	}
	var w wireResponse
	jerr := json.Unmarshal(body, &w)
	if status != http.StatusOK {
		if jerr == nil && w.ErrCode != 0 {
			return nil, newAPIError(op, &w, red)
		}
		return nil, &statusError{op: op, status: status}
	}
	if jerr != nil {
		return nil, badJSON(body, jerr)
	}
	if w.ErrCode != 0 {
		return nil, newAPIError(op, &w, red)
	}
	return &w, nil
}

func newAPIError(op string, w *wireResponse, red redactor) *APIError {
	return &APIError{Op: op, Code: w.ErrCode, Msg: red.message(w.ErrMsg), Class: classify(op, w.ErrCode)}
}

// badJSON describes a body that did not decode, without quoting it: the
// body may echo the request.
func badJSON(body []byte, err error) error {
	trimmed := bytes.TrimSpace(body)
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
	)
	switch {
	case len(trimmed) == 0:
		return fmt.Errorf("%w: empty body", ErrBadResponse)
	case trimmed[0] == '<':
		return fmt.Errorf("%w: body is not JSON (looks like HTML or XML)", ErrBadResponse)
	case errors.As(err, &te):
		kind, _, _ := strings.Cut(te.Value, " ") // "number 1.5": drop the literal
		return fmt.Errorf("%w: field %q is a JSON %s, want %s", ErrBadResponse, te.Field, kind, te.Type)
	case errors.As(err, &se):
		return fmt.Errorf("%w: broken JSON at byte %d", ErrBadResponse, se.Offset)
	}
	return fmt.Errorf("%w: broken JSON", ErrBadResponse)
}

// parseToken checks an answer to a token or ticket call and returns the
// credential and its lifetime. It never returns an empty value or a
// non-positive lifetime without an error.
func parseToken(op string, status int, body []byte, red redactor) (string, time.Duration, error) {
	w, err := decode(op, status, body, red)
	if err != nil {
		return "", 0, err
	}
	field, value := "access_token", w.AccessToken
	switch op {
	case opGetTicket:
		field, value = "ticket", w.Ticket
	case opComponentToken:
		field, value = "component_access_token", w.ComponentAccessToken
	}
	switch {
	case value == "":
		return "", 0, fmt.Errorf("%w: empty %s", ErrBadResponse, field)
	case strings.IndexFunc(value, badTokenRune) >= 0:
		return "", 0, fmt.Errorf("%w: %s has space or control characters", ErrBadResponse, field)
	case w.ExpiresIn <= 0:
		return "", 0, fmt.Errorf("%w: expires_in %d is not positive", ErrBadResponse, w.ExpiresIn)
	case w.ExpiresIn > maxExpiresIn:
		return "", 0, fmt.Errorf("%w: expires_in %d is too large", ErrBadResponse, w.ExpiresIn)
	}
	return value, time.Duration(w.ExpiresIn) * time.Second, nil
}

// badTokenRune reports runes that cannot be part of a usable credential
// (it goes into URLs and headers).
func badTokenRune(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar
}

// parseIPList checks an answer to getcallbackip and returns ip_list.
func parseIPList(op string, status int, body []byte, red redactor) ([]string, error) {
	w, err := decode(op, status, body, red)
	if err != nil {
		return nil, err
	}
	if w.IPList == nil {
		return nil, fmt.Errorf("%w: no ip_list", ErrBadResponse)
	}
	return w.IPList, nil
}
