package fetcher

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
)

// Class tells a caller how to react to an error from this package. Values
// are immutable and safe to share.
type Class int

const (
	// ClassUnknown is the class of nil and of errors this package does not
	// know (for example a Config error from New).
	ClassUnknown Class = iota
	// Transient errors surely minted nothing and may succeed on retry: a
	// complete answer with errcode -1 or 45011, an HTTP status below 500
	// without an errcode, or a failure before the request was written
	// (dial, DNS, refused connection, a context that ended first).
	Transient
	// Permanent errors fail again on retry: a wrong appid or secret, a
	// refused host (see APIError.HostSpecific), a missing parameter and any
	// errcode this package does not know. Never retry them in a loop.
	Permanent
	// Quota is errcode 45009: the daily call quota is spent until the next
	// China-time day.
	Quota
	// TokenDead is 40001, 40014 or 42001 on a call that carried an
	// access_token: that token is no longer valid and must be refreshed.
	TokenDead
	// Ambiguous errors are calls that may have reached WeChat without a
	// complete answer: a timeout or reset after the request was written,
	// HTTP 5xx, a truncated or malformed body. WeChat may have minted a
	// token (and so doomed the previous one): such a call is never retried
	// inside the same fetch; the caller keeps its intent and waits its
	// window out.
	Ambiguous
)

// String returns a lower-case name, stable enough for logs and metrics.
func (c Class) String() string {
	switch c {
	case ClassUnknown:
		return "unknown"
	case Transient:
		return "transient"
	case Permanent:
		return "permanent"
	case Quota:
		return "quota"
	case TokenDead:
		return "token_dead"
	case Ambiguous:
		return "ambiguous"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// ErrBadResponse is wrapped, with detail, by every error about a malformed
// answer: broken, truncated or non-JSON body, oversize body, empty token, bad
// expires_in. Such errors are Ambiguous: something answered, but not WeChat's
// complete verdict.
var ErrBadResponse = errors.New("bad response from wechat")

// Operation names, as used in APIError.Op.
const (
	opToken       = "token"
	opStableToken = "stable_token"
	opGetToken    = "gettoken"
	opGetTicket   = "getticket"
	opCallbackIP  = "getcallbackip"

	// Open Platform operations: the last part of /cgi-bin/component/...
	opComponentToken  = "api_component_token"
	opStartPushTicket = "api_start_push_ticket"
	opPreAuthCode     = "api_create_preauthcode"
	opQueryAuth       = "api_query_auth"
	opAuthorizerToken = "api_authorizer_token"
	opAuthorizerList  = "api_get_authorizer_list"
)

// APIError is a WeChat answer with a nonzero errcode. Msg has been cleaned of
// the secret or token sent with the request. An APIError is not modified
// after it is returned, so it may be shared between goroutines.
type APIError struct {
	Op    string // "token", "stable_token", "gettoken", "getticket", "getcallbackip", or an Open Platform "api_..." name
	Code  int    // errcode
	Msg   string // errmsg, redacted and shortened
	Class Class
}

// Error returns e.g. "wechat token: errcode 40125: invalid appsecret".
func (e *APIError) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("wechat %s: errcode %d", e.Op, e.Code)
	}
	return fmt.Sprintf("wechat %s: errcode %d: %s", e.Op, e.Code, e.Msg)
}

// HostSpecific reports whether the code refuses the calling host rather than
// the app: 40164 (IP not whitelisted), 60020 (WeCom: IP not allowed),
// 61004 (Open Platform: "access clientip is not registered", the
// platform's egress IP list) and 89501, 89503, 89506, 89507 (IP approval
// pending or refused). Another host may succeed with the same credentials.
func (e *APIError) HostSpecific() bool {
	switch e.Code {
	case 40164, 60020, 61004, 89501, 89503, 89506, 89507:
		return true
	}
	return false
}

// classify maps an errcode returned by op to a Class.
func classify(op string, code int) Class {
	switch code {
	case 0:
		return ClassUnknown
	case -1, 45011:
		return Transient
	case 45009:
		return Quota
	case 40001, 40014, 42001:
		if carriesToken(op) {
			return TokenDead
		}
		return Permanent // on a token endpoint 40001 means a wrong secret
	}
	return Permanent
}

// carriesToken reports whether op sends an access_token (or a
// component_access_token) with its request.
func carriesToken(op string) bool {
	switch op {
	case opGetTicket, opCallbackIP, opPreAuthCode, opQueryAuth, opAuthorizerToken, opAuthorizerList:
		return true
	}
	return false
}

// ClassOf classifies an error returned by this package: an *APIError has its
// own Class; ErrBadResponse, HTTP 5xx and failures after the request was
// written are Ambiguous; other HTTP status errors, failures before the
// request was written and bare context errors are Transient; nil and
// anything else is ClassUnknown.
func ClassOf(err error) Class {
	if err == nil {
		return ClassUnknown
	}
	var ae *APIError
	if errors.As(err, &ae) && ae != nil {
		return ae.Class
	}
	var (
		se *statusError
		te *sendError
		ue *url.Error
		ne net.Error
	)
	switch {
	case errors.As(err, &te):
		if te.written {
			return Ambiguous
		}
		return Transient
	case errors.Is(err, ErrBadResponse):
		return Ambiguous
	case errors.As(err, &se):
		if se.status >= 500 {
			return Ambiguous
		}
		return Transient
	case errors.Is(err, context.Canceled),
		errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ue),
		errors.As(err, &ne):
		return Transient
	}
	return ClassUnknown
}

// sendError is a failure of the HTTP exchange itself; written tells
// whether the whole request had been written when it failed (after that,
// WeChat may have acted on it).
type sendError struct {
	err     error
	written bool
}

func (e *sendError) Error() string { return e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// statusError is an HTTP status other than 200 without a usable errcode.
type statusError struct {
	op     string
	status int
}

func (e *statusError) Error() string {
	return fmt.Sprintf("wechat %s: http status %d %s", e.op, e.status, http.StatusText(e.status))
}

// opError is the error a Client method returns: the last attempt's error,
// prefixed with the operation, and the context error that stopped retries,
// if any. Its message is redacted when built; it holds no secret.
type opError struct {
	msg  string
	errs []error
}

func (e *opError) Error() string   { return e.msg }
func (e *opError) Unwrap() []error { return e.errs }
