package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// ParseInvalidate reads the body of an invalidation: one JSON object
// {"access_token":"..."} with a non-empty token and nothing after it. Its
// error is a 400 bad_request *Error. Callers bound the body (maxBody).
func ParseInvalidate(body io.Reader) (InvalidateRequest, error) {
	var req InvalidateRequest
	dec := json.NewDecoder(body)
	err := dec.Decode(&req)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("data after the object")
		}
	}
	if err != nil || req.AccessToken == "" {
		return InvalidateRequest{}, &Error{Status: http.StatusBadRequest, Code: "bad_request", Message: `body must be JSON {"access_token":"..."} of at most 4 KiB`}
	}
	return req, nil
}
