package fetcher

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// call is one WeChat request, made once per attempt.
type call struct {
	op      string // APIError.Op
	what    string // error prefix, e.g. "fetch classic token"
	appID   string // for logs; "" when the request has none
	method  string
	url     string // with secrets: only for the request itself
	safeURL string // url with secret parameters replaced
	body    []byte // nil for GET
	red     redactor
	maxBody int // 0: maxBodySize
}

// newGetCall builds a GET call to endpoint with query q, whose parameter
// hide is sensitive.
func newGetCall(op, what, appID, endpoint string, q url.Values, hide string, red redactor) *call {
	safe := make(url.Values, len(q))
	for key, v := range q {
		safe[key] = v
	}
	safe.Set(hide, redactedParam)
	return &call{
		op: op, what: what, appID: appID, method: http.MethodGet,
		url: endpoint + "?" + q.Encode(), safeURL: endpoint + "?" + safe.Encode(), red: red,
	}
}

// run makes k until parse succeeds, the error is not Transient (an
// Ambiguous call may have minted a token: it is never retried), MaxAttempts
// calls were made, the backoff policy stops or ctx ends. It returns the
// number of HTTP calls made and, on failure, the last error wrapped with
// k.what (and ctx's error if ctx stopped the retries).
func run[T any](ctx context.Context, c *Client, k *call, parse func(status int, body []byte) (T, error)) (T, int, error) {
	var zero T
	log := c.log.With("op", k.op)
	if k.appID != "" {
		log = log.With("appid", k.appID)
	}
	if _, err := url.Parse(k.url); err != nil {
		// Not reachable with a checked base and an encoded query; never
		// show the parse error, it quotes the URL.
		return zero, 0, &opError{msg: k.what + ": invalid request URL"}
	}
	b := backoff.WithContext(c.newBackOff(), ctx)
	b.Reset()
	for attempt := 1; ; attempt++ {
		log.Debug("wechat call", "attempt", attempt)
		tctx, cancel := ctx, context.CancelFunc(func() {})
		if _, ok := ctx.Deadline(); !ok || c.tryTimeout > 0 {
			tctx, cancel = context.WithTimeout(ctx, cmp.Or(c.tryTimeout, DefaultTimeout))
		}
		status, body, err := c.roundTrip(tctx, k)
		cancel()
		var res T
		if err == nil {
			res, err = parse(status, body)
		}
		if err == nil {
			log.Debug("wechat call succeeded", "attempt", attempt)
			return res, attempt, nil
		}
		class := ClassOf(err)
		retriable := class == Transient || (class == Ambiguous && c.retryAmbiguous)
		var stop error
		switch {
		case !retriable:
		case ctx.Err() != nil:
			stop = ctx.Err()
		case c.maxAttempts > 0 && attempt >= c.maxAttempts:
		default:
			wait := b.NextBackOff()
			if wait == backoff.Stop {
				stop = ctx.Err()
				break
			}
			logFailure(log, slog.LevelWarn, "wechat call failed, retrying", k, attempt, class, err, "wait", wait)
			if stop = sleep(ctx, wait); stop == nil {
				continue
			}
		}
		logFailure(log, slog.LevelDebug, "wechat call failed", k, attempt, class, err)
		return zero, attempt, k.fail(err, stop)
	}
}

// sleep waits d or until ctx ends, and returns ctx's error in that case.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func logFailure(log *slog.Logger, level slog.Level, msg string, k *call, attempt int, class Class, err error, extra ...any) {
	args := []any{"attempt", attempt, "class", class.String()}
	var ae *APIError
	if errors.As(err, &ae) {
		args = append(args, "errcode", ae.Code)
	}
	args = append(args, "err", k.redact(err.Error()))
	log.Log(context.Background(), level, msg, append(args, extra...)...)
}

// roundTrip makes one HTTP call and returns the status and the body, read
// up to k.maxBody (default maxBodySize).
func (c *Client) roundTrip(ctx context.Context, k *call) (int, []byte, error) {
	var body io.Reader
	if k.body != nil {
		body = bytes.NewReader(k.body)
	}
	req, err := http.NewRequestWithContext(ctx, k.method, k.url, body)
	if err != nil {
		return 0, nil, k.hideURL(err)
	}
	req.Header.Set("Accept", "application/json")
	if k.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// Whether the request was written decides what a failure means: before
	// it, WeChat surely minted nothing; after it, it may have.
	var written atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) { written.Store(info.Err == nil) },
	}))
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, &sendError{err: k.hideURL(err), written: written.Load()}
	}
	defer resp.Body.Close()
	data, err := readBody(resp.Body, cmp.Or(k.maxBody, maxBodySize))
	if err != nil {
		drain(resp.Body)
		return 0, nil, err
	}
	return resp.StatusCode, data, nil
}

// hideURL replaces the URL of a *url.Error, which net/http fills with the
// full request URL (secret included), by the redacted one.
func (k *call) hideURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: k.safeURL, Err: ue.Err}
	}
	return err
}

// redact removes k's secrets from s; if they cannot be removed it returns a
// fixed text.
func (k *call) redact(s string) string {
	if r := k.red.redact(s); r != "" || s == "" {
		return r
	}
	return "error message withheld: it contained a secret"
}

// fail builds the error returned when k is given up: last is the last
// attempt's error, stop the context error that ended retries, if any.
func (k *call) fail(last, stop error) error {
	msg := k.what + ": " + last.Error()
	errs := []error{last}
	if stop != nil && !errors.Is(last, stop) {
		msg += " (gave up: " + stop.Error() + ")"
		errs = append(errs, stop)
	}
	return &opError{msg: k.redact(msg), errs: errs}
}
