package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Codes of the replica's errors, the values of Error.Code that callers may
// branch on.
const (
	CodeUnknownApp      = "unknown_app"      // no app of that name on the replica
	CodeUnknownTicket   = "unknown_ticket"   // the app has no such ticket enabled
	CodeNoCredential    = "no_credential"    // no usable token yet, or it expired: retry shortly
	CodeRefreshPending  = "refresh_pending"  // an invalidation's refresh did not arrive in time
	CodeEtcdUnavailable = "etcd_unavailable" // the replica cannot record an invalidation
	CodeBadRequest      = "bad_request"
	CodeBadURL          = "bad_url"       // a JS-SDK page URL the replica refuses
	CodeForbiddenURL    = "forbidden_url" // a JS-SDK page whose host is not among the app's jssdk_domains
	CodeUnauthorized    = "unauthorized"  // no credentials, or a token no client has
	CodeForbidden       = "forbidden"     // this client may not do that, or not for that app
	CodeRateLimited     = "rate_limited"  // too many reports of dead tokens: retry after Error.RetryAfter
)

// Error is an error answer of the replica.
type Error struct {
	Status  int    // HTTP status
	Code    string // stable code, such as CodeUnknownApp
	Message string // for people
	// RetryAfter is the answer's Retry-After (503, 429), or 0.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Temporary reports whether the same call may succeed later (HTTP 503).
func (e *Error) Temporary() bool { return e.Status == http.StatusServiceUnavailable }

// ErrUnreachable is wrapped by errors of calls that got no answer from the
// replica: refused connections, timeouts, broken answers.
var ErrUnreachable = errors.New("replica unreachable")

const maxAnswer = 1 << 20

// call sends a JSON request to the replica and decodes a 200 answer into
// out, or an error answer into *Error.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if c.auth != nil {
		req.Header["Authorization"] = c.auth // net/http only reads it
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return c.unreachable(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return c.unreachable(err)
	}
	if resp.StatusCode != http.StatusOK {
		e := answerError(resp.StatusCode, data)
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			e.RetryAfter = time.Duration(secs) * time.Second
		}
		return e
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%w at %s: bad answer: %v", ErrUnreachable, c.base, err)
	}
	return nil
}

// unreachable wraps a transport error in one line that names the replica.
func (c *Client) unreachable(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // drop the repeated method and URL
	}
	return fmt.Errorf("%w at %s: %w", ErrUnreachable, c.base, err)
}

// answerError decodes an error answer; one that is not the replica's JSON
// (a proxy's page, say) is summed up by its status.
func answerError(status int, data []byte) *Error {
	var e Error
	var body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &body) == nil && body.Code != "" {
		e.Code, e.Message = body.Code, body.Message
	} else {
		e.Code = "http_" + fmt.Sprint(status)
		e.Message = http.StatusText(status)
		if s := strings.TrimSpace(string(data)); s != "" && len(s) < 200 && !strings.ContainsAny(s, "\n\r") {
			e.Message += ": " + s
		}
	}
	e.Status = status
	return &e
}
