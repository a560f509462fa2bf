package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/events"
	"github.com/tensfer-golive/dashboard/internal/validation"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// httpError is an error a handler returns to choose the answer: its status, a stable machine code
// and a message a person can act on.
type httpError struct {
	status int
	code   string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errBadRequest(format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, code: "bad_request", msg: fmt.Sprintf(format, args...)}
}

func errNotFound(msg string) error {
	return &httpError{status: http.StatusNotFound, code: "not_found", msg: msg}
}

func errForbidden(msg string) error {
	return &httpError{status: http.StatusForbidden, code: "forbidden", msg: msg}
}

func errUnauthorized(msg string) error {
	return &httpError{status: http.StatusUnauthorized, code: "unauthorized", msg: msg}
}

// handlerFunc is the shape of every handler: it writes a success answer or returns an error.
type handlerFunc func(http.ResponseWriter, *http.Request) error

// h adapts a handlerFunc: the one place an error is logged (once, with the request id) and
// turned into an error page or a JSON error.
func (s *Server) h(fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// Read a form body up front so an oversized or malformed one is an error, not a silently
		// empty form (PostFormValue swallows parse errors).
		// Public ingest and the JSON API read their bodies themselves.
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") && infoFrom(r.Context()).kind == kindPage {
			if err := r.ParseForm(); err != nil {
				var mbe *http.MaxBytesError
				if !errors.As(err, &mbe) {
					err = errBadRequest("cannot read the form: %v", err)
				}
				s.fail(w, r, err)
				return
			}
		}
		if err := fn(w, r); err != nil {
			s.fail(w, r, err)
		}
	}
}

// fail answers an error. Expected errors (httpError, not found, oversized bodies) are logged at
// debug/info; anything else is a 500 logged at error level with the cause hidden from the client.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	var mbe *http.MaxBytesError
	var problem validation.Problem
	var fields validation.Errors
	var refusal *events.Refusal
	switch {
	case errors.As(err, &he):
	case errors.As(err, &refusal):
		he = refusalError(w, r, refusal)
	case errors.As(err, &problem):
		he = &httpError{status: http.StatusBadRequest, code: "bad_request", msg: string(problem)}
	case errors.As(err, &fields):
		he = &httpError{status: http.StatusUnprocessableEntity, code: "validation_failed", msg: fields.Error()}
	case errors.Is(err, db.ErrNotFound):
		he = &httpError{status: http.StatusNotFound, code: "not_found", msg: "nothing was found at " + validation.Clip(r.URL.Path, 200) + "; it may have been deleted, or the id is wrong"}
	case db.IsUnavailable(err):
		// PostgreSQL is down or restarting: nothing was stored; the sender should try again.
		w.Header().Set("Retry-After", "5")
		he = &httpError{status: http.StatusServiceUnavailable, code: "database_unavailable", msg: "the database cannot be reached just now; nothing was stored; try again in a few seconds"}
	case errors.As(err, &mbe):
		he = &httpError{status: http.StatusRequestEntityTooLarge, code: "body_too_large", msg: fmt.Sprintf("request body is larger than the %d byte limit", mbe.Limit)}
	default:
		he = &httpError{status: http.StatusInternalServerError, code: "internal", msg: "something went wrong on our side; quote the request id when you report it"}
	}
	info := infoFrom(r.Context())
	level := slog.LevelInfo
	switch {
	case info.counted:
		level = slog.LevelDebug
	case !info.authed && he.status < 500:
		// The access log's line carries the error, within its limit on refusals anyone can repeat.
		info.failure = err.Error()
		level = slog.LevelDebug
	case he.status >= 500:
		level = slog.LevelError
	}
	s.log.LogAttrs(r.Context(), level, "request failed",
		slog.String("request_id", requestIDFrom(r.Context())), slog.String("method", r.Method),
		slog.String("path", r.URL.Path), slog.Int("status", he.status), slog.String("error", err.Error()))
	if infoFrom(r.Context()).kind != kindPage {
		if fields != nil {
			writeFieldErrors(w, r, fields)
			return
		}
		writeJSONError(w, r, he)
		return
	}
	r = withNonce(w, r)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(he.status)
	vm := templates.ErrorVM{Status: he.status, Title: http.StatusText(he.status), Message: he.msg, RequestID: requestIDFrom(r.Context())}
	if u, ok := userFrom(r.Context()); ok {
		vm.Layout = s.layout(r, u, "", http.StatusText(he.status))
	}
	templates.ErrorPage(vm).Render(r.Context(), w)
}

// refusalError answers input the event pipeline refused and counted: 400 or 413 for its shape,
// 429 over a limit or budget, 503 for want of disk, with Retry-After when there is one. It marks
// the request as counted, so that neither this answer nor the access log writes a line for it.
func refusalError(w http.ResponseWriter, r *http.Request, ref *events.Refusal) *httpError {
	infoFrom(r.Context()).counted = true
	if ref.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(ref.RetryAfter.Seconds())))))
	}
	switch ref.Reason {
	case events.RefusedShape:
		return &httpError{status: http.StatusBadRequest, code: "bad_request", msg: ref.Message}
	case events.RefusedTooLarge:
		return &httpError{status: http.StatusRequestEntityTooLarge, code: "body_too_large", msg: ref.Message}
	case events.RefusedRateLimited:
		return &httpError{status: http.StatusTooManyRequests, code: "rate_limited", msg: ref.Message}
	case events.RefusedQuota:
		return &httpError{status: http.StatusTooManyRequests, code: "quota_exceeded", msg: ref.Message}
	}
	return &httpError{status: http.StatusServiceUnavailable, code: "storage_unavailable", msg: ref.Message}
}

type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

func writeJSONError(w http.ResponseWriter, r *http.Request, he *httpError) {
	writeJSON(w, he.status, apiError{Error: apiErrorBody{Code: he.code, Message: he.msg, RequestID: requestIDFrom(r.Context())}})
}

// writeJSON writes v as the JSON answer with status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
