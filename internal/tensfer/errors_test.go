package tensfer

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestErrorPredicatesAreDisjoint(t *testing.T) {
	kinds := []ErrorKind{KindAuth, KindForbidden, KindEnvironmentMismatch, KindTimeout, KindUnreachable}
	for _, k := range kinds {
		err := error(&Error{Kind: k})
		got := map[string]bool{
			"auth": IsAuth(err), "mismatch": IsEnvironmentMismatch(err), "timeout": IsTimeout(err), "unreachable": IsUnreachable(err),
		}
		n := 0
		for _, v := range got {
			if v {
				n++
			}
		}
		if n != 1 {
			t.Errorf("kind %s matches %d predicates (%v), want exactly 1", k, n, got)
		}
	}
	if KindOf(errors.New("plain")) != "" || IsTemporary(errors.New("plain")) {
		t.Error("a plain error is classified")
	}
}

func TestErrorFromResponse(t *testing.T) {
	tests := []struct {
		name                       string
		status                     int
		header                     http.Header
		body                       string
		wantKind                   ErrorKind
		wantCode, wantMsg, wantRID string
	}{
		{"documented shape", 401, nil, `{"error":{"code":"invalid_api_key","message":"bad","request_id":"req_1"}}`, KindAuth, "invalid_api_key", "bad", "req_1"},
		{"mismatch code refines 401", 401, nil, `{"error":{"code":"environment_mismatch","message":"m"}}`, KindEnvironmentMismatch, "environment_mismatch", "m", ""},
		{"mismatch code on 400 stays 400", 400, nil, `{"error":{"code":"environment_mismatch"}}`, KindInvalidRequest, "environment_mismatch", "bad request", ""},
		{"X-Request-Id header", 500, http.Header{"X-Request-Id": {"req_x"}}, ``, KindServer, "", "internal server error", "req_x"},
		{"Request-Id header", 404, http.Header{"Request-Id": {"req_y"}}, `not json`, KindNotFound, "", "not found", "req_y"},
		{"body id wins", 409, http.Header{"X-Request-Id": {"req_h"}}, `{"error":{"code":"c","request_id":"req_b"}}`, KindConflict, "c", "conflict", "req_b"},
		{"unknown shape", 429, nil, `{"error":{"unexpected":true}}`, KindRateLimited, "", "too many requests", ""},
		{"3xx", 302, nil, ``, KindUnexpected, "", "found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			e := errorFromResponse(tt.status, h, []byte(tt.body))
			if e.Kind != tt.wantKind || e.Code != tt.wantCode || e.Message != tt.wantMsg || e.RequestID != tt.wantRID || e.Status != tt.status {
				t.Errorf("got %+v; want kind %s code %q msg %q rid %q", e, tt.wantKind, tt.wantCode, tt.wantMsg, tt.wantRID)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		e    *Error
		want string
	}{
		{&Error{Kind: KindNotFound, Env: Sandbox, Method: "GET", Path: "/v1/payments/p", Status: 404, Code: "payment_not_found", Message: "no payment", RequestID: "req_1"},
			"tensfer sandbox GET /v1/payments/p: 404 payment_not_found: no payment (request_id req_1)"},
		{&Error{Kind: KindTimeout, Code: CodeTimeout, Message: "no response within 10s"}, "tensfer: timeout: no response within 10s"},
		{&Error{Kind: KindServer, Status: 503}, "tensfer: 503 server"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	cause := errors.New("dial tcp: refused")
	e := &Error{Kind: KindUnreachable, Err: cause, RetryAfter: time.Second}
	if !errors.Is(e, cause) || !strings.Contains(e.Error(), "unreachable") || e.Timeout() {
		t.Errorf("Unwrap/Error/Timeout wrong for %v", e)
	}
}
