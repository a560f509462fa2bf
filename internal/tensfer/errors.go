package tensfer

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// ErrorKind classifies a failed call so callers can react without parsing
// messages: a wrong key, a key of the other environment, an unreachable
// host and a timeout all need different advice on the dashboard.
type ErrorKind string

// Error kinds. Each failed call has exactly one kind.
const (
	// KindInvalidRequest is a 400 or 422: the request itself is wrong.
	KindInvalidRequest ErrorKind = "invalid_request"
	// KindAuth is a 401 other than an environment mismatch: the key is
	// missing, unknown or revoked.
	KindAuth ErrorKind = "auth"
	// KindEnvironmentMismatch is a key of one environment used against the
	// other environment's base URL (401 environment_mismatch), or a server
	// that reports a different environment than the client was built for.
	KindEnvironmentMismatch ErrorKind = "environment_mismatch"
	// KindForbidden is a 403: the key is valid but may not call this endpoint.
	KindForbidden ErrorKind = "forbidden"
	// KindNotFound is a 404.
	KindNotFound ErrorKind = "not_found"
	// KindConflict is a 409, e.g. an idempotency key reused with another body.
	KindConflict ErrorKind = "conflict"
	// KindRateLimited is a 429.
	KindRateLimited ErrorKind = "rate_limited"
	// KindServer is a 5xx answer.
	KindServer ErrorKind = "server"
	// KindTimeout is a call that ran out of time: the per-call timeout or the
	// caller's deadline expired before a response arrived.
	KindTimeout ErrorKind = "timeout"
	// KindUnreachable is a transport failure without an HTTP response:
	// DNS failure, connection refused or reset, TLS failure.
	KindUnreachable ErrorKind = "unreachable"
	// KindCanceled is a call whose context was canceled by the caller.
	KindCanceled ErrorKind = "canceled"
	// KindMissingKey is a call that was not sent because the client has no
	// key of the kind the endpoint needs.
	KindMissingKey ErrorKind = "missing_key"
	// KindDecode is a 2xx answer whose body could not be understood.
	KindDecode ErrorKind = "decode"
	// KindUnexpected is any other status (e.g. a 3xx or an unusual 4xx).
	KindUnexpected ErrorKind = "unexpected"
)

// Error is the error returned by every Client call. It carries what
// Tensfer support needs (RequestID) and what the dashboard needs to explain
// the failure (Kind, Status, Code, Message).
type Error struct {
	Kind ErrorKind
	// Env, Method and Path identify the call.
	Env    Environment
	Method string
	Path   string
	// Status is the HTTP status of the last attempt, 0 when there was none.
	Status int
	// Code and Message come from the error body
	// {"error":{"code":"..","message":"..","request_id":".."}}; for failures
	// without a body the client fills in its own code (e.g. "timeout").
	Code    string
	Message string
	// RequestID is the Tensfer request id from the error body or, failing
	// that, the X-Request-Id or Request-Id response header.
	RequestID string
	// RetryAfter is the server's Retry-After hint, if any.
	RetryAfter time.Duration
	// Err is the underlying transport or decoding error, if any.
	Err error
}

// Error formats the failure on one line, ending with the request id so it
// can be pasted into a support ticket.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("tensfer")
	if e.Env != "" {
		b.WriteString(" " + string(e.Env))
	}
	if e.Method != "" {
		b.WriteString(" " + e.Method + " " + e.Path)
	}
	b.WriteString(": ")
	if e.Status != 0 {
		fmt.Fprintf(&b, "%d ", e.Status)
	}
	if e.Code != "" {
		b.WriteString(e.Code)
	} else {
		b.WriteString(string(e.Kind))
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request_id " + e.RequestID + ")")
	}
	return b.String()
}

// Unwrap returns the underlying transport or decoding error.
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether trying again later may succeed: timeouts,
// unreachable hosts, rate limits and server errors.
func (e *Error) Temporary() bool {
	switch e.Kind {
	case KindTimeout, KindUnreachable, KindRateLimited, KindServer:
		return true
	}
	return false
}

// Timeout reports whether the call ran out of time; it lets *Error satisfy
// the conventional interface{ Timeout() bool }.
func (e *Error) Timeout() bool { return e.Kind == KindTimeout }

// KindOf returns the kind of a *Error in err's chain, or "" if there is none.
func KindOf(err error) ErrorKind {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Kind
	}
	return ""
}

// IsTimeout reports whether err is a call that ran out of time.
func IsTimeout(err error) bool { return KindOf(err) == KindTimeout }

// IsUnreachable reports whether err is a call that got no HTTP response
// because the host could not be reached.
func IsUnreachable(err error) bool { return KindOf(err) == KindUnreachable }

// IsAuth reports whether Tensfer rejected the key (401 or 403). NB: it is
// false for an environment mismatch, which has its own predicate, so a
// caller can tell "wrong key" from "right key, wrong environment".
func IsAuth(err error) bool {
	k := KindOf(err)
	return k == KindAuth || k == KindForbidden
}

// IsEnvironmentMismatch reports whether err says a key or base URL belongs
// to the other environment.
func IsEnvironmentMismatch(err error) bool { return KindOf(err) == KindEnvironmentMismatch }

// IsNotFound reports whether err is a 404.
func IsNotFound(err error) bool { return KindOf(err) == KindNotFound }

// IsRateLimited reports whether err is a 429.
func IsRateLimited(err error) bool { return KindOf(err) == KindRateLimited }

// IsTemporary reports whether err is a *Error for which trying again later
// may succeed (see Error.Temporary).
func IsTemporary(err error) bool {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Temporary()
	}
	return false
}

// Error codes the client sets itself when the server sent none, and codes
// the simulator and Tensfer send that callers may want to match.
const (
	CodeTimeout             = "timeout"
	CodeUnreachable         = "unreachable"
	CodeCanceled            = "canceled"
	CodeMissingKey          = "missing_key"
	CodeDecode              = "invalid_response"
	CodeInvalidAPIKey       = "invalid_api_key"
	CodeEnvironmentMismatch = "environment_mismatch"
)

// errorBody is the documented Tensfer error shape. Tolerated variants: a
// plain string in "error", and Plaid-style top-level error_code /
// error_message / request_id.
type errorBody struct {
	Error        json.RawMessage `json:"error"`
	ErrorCode    string          `json:"error_code"`
	ErrorMessage string          `json:"error_message"`
	RequestID    string          `json:"request_id"`
}

type errorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// kindForStatus maps an HTTP status to the kind of error it means. The
// error code refines 401s: environment_mismatch has its own kind.
func kindForStatus(status int, code string) ErrorKind {
	switch {
	case status == http.StatusUnauthorized && code == CodeEnvironmentMismatch:
		return KindEnvironmentMismatch
	case status == http.StatusBadRequest, status == http.StatusUnprocessableEntity:
		return KindInvalidRequest
	case status == http.StatusUnauthorized:
		return KindAuth
	case status == http.StatusForbidden:
		return KindForbidden
	case status == http.StatusNotFound:
		return KindNotFound
	case status == http.StatusConflict:
		return KindConflict
	case status == http.StatusTooManyRequests:
		return KindRateLimited
	case status >= 500 && status <= 599:
		return KindServer
	}
	return KindUnexpected
}

// errorFromResponse builds the *Error for a non-2xx answer from its status,
// headers and (possibly empty or non-JSON) body.
func errorFromResponse(status int, h http.Header, body []byte) *Error {
	e := &Error{Status: status}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil {
		var d errorDetail
		var s string
		switch {
		case json.Unmarshal(eb.Error, &d) == nil && (d.Code != "" || d.Message != ""):
			e.Code, e.Message, e.RequestID = d.Code, d.Message, d.RequestID
		case json.Unmarshal(eb.Error, &s) == nil:
			e.Message = s
		}
		if e.Code == "" {
			e.Code = eb.ErrorCode
		}
		if e.Message == "" {
			e.Message = eb.ErrorMessage
		}
		if e.RequestID == "" {
			e.RequestID = eb.RequestID
		}
	}
	if e.RequestID == "" {
		e.RequestID = requestIDFromHeader(h)
	}
	if e.Message == "" {
		e.Message = strings.ToLower(http.StatusText(status))
	}
	e.Kind = kindForStatus(status, e.Code)
	return e
}

// requestIDFromHeader returns the request id Tensfer put in the response
// headers, trying X-Request-Id then Request-Id.
func requestIDFromHeader(h http.Header) string {
	if v := h.Get("X-Request-Id"); v != "" {
		return v
	}
	return h.Get("Request-Id")
}
