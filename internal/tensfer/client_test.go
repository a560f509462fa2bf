package tensfer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder collects what a client reports so tests can assert on it
// without waiting in real time.
type recorder struct {
	mu     sync.Mutex
	sleeps []time.Duration
	calls  []Call
}

func (r *recorder) sleep(_ context.Context, d time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sleeps = append(r.sleeps, d)
	return nil
}

func (r *recorder) observe(_ context.Context, c Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

func (r *recorder) Sleeps() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.sleeps...)
}

func (r *recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Call(nil), r.calls...)
}

// newTestClient returns a sandbox client for baseURL with all keys set,
// sleeps and calls recorded, and cfg adjusted by mutate.
func newTestClient(t *testing.T, baseURL string, mutate func(*Config)) (*Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	cfg := Config{
		Env: Sandbox, BaseURL: baseURL,
		SecretKey: "sk_test_secret", PublicKey: "pk_test_public", ClientToken: "ct_test_token",
		Sleep: rec.sleep, Observer: rec.observe,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, rec
}

// scripted answers the n-th request with answers[n] (the last one repeats)
// and counts requests.
type scripted struct {
	answers []func(w http.ResponseWriter, r *http.Request)
	n       atomic.Int32
	mu      sync.Mutex
	reqs    []*http.Request
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := int(s.n.Add(1)) - 1
	s.mu.Lock()
	s.reqs = append(s.reqs, r.Clone(context.Background()))
	s.mu.Unlock()
	s.answers[min(i, len(s.answers)-1)](w, r)
}

func (s *scripted) Requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...)
}

func answer(status int, body string, headers ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		if body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

func serve(t *testing.T, answers ...func(http.ResponseWriter, *http.Request)) (*httptest.Server, *scripted) {
	t.Helper()
	s := &scripted{answers: answers}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, s
}

func TestParseEnvironment(t *testing.T) {
	tests := []struct {
		in      string
		want    Environment
		wantErr bool
	}{
		{"sandbox", Sandbox, false},
		{"production", Production, false},
		{"Production", "", true},
		{"live", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		got, err := ParseEnvironment(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseEnvironment(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	if Sandbox.Other() != Production || Production.Other() != Sandbox {
		t.Error("Other does not swap environments")
	}
}

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
		wantURL string
	}{
		{"ok trailing slash", Config{Env: Sandbox, BaseURL: "https://api.example/sandbox/"}, "", "https://api.example/sandbox"},
		{"ok http loopback", Config{Env: Production, BaseURL: "http://127.0.0.1:8081/production"}, "", "http://127.0.0.1:8081/production"},
		{"bad env", Config{Env: "staging", BaseURL: "https://api.example"}, "unknown environment", ""},
		{"empty url", Config{Env: Sandbox}, "base URL is required", ""},
		{"ftp", Config{Env: Sandbox, BaseURL: "ftp://api.example"}, "must start with https://", ""},
		{"relative", Config{Env: Sandbox, BaseURL: "/sandbox"}, "must start with https://", ""},
		{"no host", Config{Env: Sandbox, BaseURL: "https://"}, "has no host", ""},
		{"query", Config{Env: Sandbox, BaseURL: "https://api.example/?x=1"}, "query or fragment", ""},
		{"user info", Config{Env: Sandbox, BaseURL: "https://u:p@api.example"}, "user info", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if c.BaseURL() != tt.wantURL || c.Env() != tt.cfg.Env {
				t.Errorf("BaseURL, Env = %q, %q; want %q, %q", c.BaseURL(), c.Env(), tt.wantURL, tt.cfg.Env)
			}
		})
	}
}

func TestClientErrorResponses(t *testing.T) {
	body := func(code, msg, rid string) string {
		return `{"error":{"code":"` + code + `","message":"` + msg + `","request_id":"` + rid + `"}}`
	}
	tests := []struct {
		name         string
		answer       func(http.ResponseWriter, *http.Request)
		wantKind     ErrorKind
		wantStatus   int
		wantCode     string
		wantMsg      string
		wantRID      string
		wantAttempts int
		wantPred     func(error) bool
		temporary    bool
	}{
		{"400 rid in body", answer(400, body("invalid_request", "limit too big", "req_body400")),
			KindInvalidRequest, 400, "invalid_request", "limit too big", "req_body400", 1, nil, false},
		{"401 rid in header", answer(401, `{"error":{"code":"invalid_api_key","message":"bad key"}}`, "X-Request-Id", "req_hdr401"),
			KindAuth, 401, "invalid_api_key", "bad key", "req_hdr401", 1, IsAuth, false},
		{"401 environment mismatch", answer(401, body("environment_mismatch", "sandbox key on production", "req_mm")),
			KindEnvironmentMismatch, 401, "environment_mismatch", "sandbox key on production", "req_mm", 1, IsEnvironmentMismatch, false},
		{"403 Request-Id header", answer(403, body("key_not_allowed", "needs secret key", ""), "Request-Id", "req_stripe_style"),
			KindForbidden, 403, "key_not_allowed", "needs secret key", "req_stripe_style", 1, IsAuth, false},
		{"404 body wins over header", answer(404, body("payment_not_found", "no payment", "req_from_body"), "X-Request-Id", "req_from_header"),
			KindNotFound, 404, "payment_not_found", "no payment", "req_from_body", 1, IsNotFound, false},
		{"409", answer(409, body("idempotency_conflict", "key reused", "req_409")),
			KindConflict, 409, "idempotency_conflict", "key reused", "req_409", 1, nil, false},
		{"422", answer(422, body("invalid_request", "amount", "req_422")),
			KindInvalidRequest, 422, "invalid_request", "amount", "req_422", 1, nil, false},
		{"429 retried", answer(429, body("rate_limited", "slow down", "req_429")),
			KindRateLimited, 429, "rate_limited", "slow down", "req_429", 3, IsRateLimited, true},
		{"500 retried", answer(500, body("internal_error", "oops", "req_500")),
			KindServer, 500, "internal_error", "oops", "req_500", 3, IsTemporary, true},
		{"502 non-JSON body", answer(502, "<html>bad gateway</html>", "X-Request-Id", "req_502"),
			KindServer, 502, "", "bad gateway", "req_502", 3, nil, true},
		{"503 empty body", answer(503, "", "X-Request-Id", "req_503"),
			KindServer, 503, "", "service unavailable", "req_503", 3, nil, true},
		{"501 not retried", answer(501, body("not_implemented", "nope", "req_501")),
			KindServer, 501, "not_implemented", "nope", "req_501", 1, nil, true},
		{"plaid-style body", answer(400, `{"error_code":"INVALID_FIELD","error_message":"bad field","request_id":"req_plaid"}`),
			KindInvalidRequest, 400, "INVALID_FIELD", "bad field", "req_plaid", 1, nil, false},
		{"string error", answer(418, `{"error":"teapot"}`, "X-Request-Id", "req_418"),
			KindUnexpected, 418, "", "teapot", "req_418", 1, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, s := serve(t, tt.answer)
			c, rec := newTestClient(t, srv.URL, nil)
			_, err := c.Payment(t.Context(), "pay_1")
			e, ok := errors.AsType[*Error](err)
			if !ok {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if e.Kind != tt.wantKind || e.Status != tt.wantStatus || e.Code != tt.wantCode || e.RequestID != tt.wantRID {
				t.Errorf("got kind=%s status=%d code=%q rid=%q; want %s %d %q %q", e.Kind, e.Status, e.Code, e.RequestID, tt.wantKind, tt.wantStatus, tt.wantCode, tt.wantRID)
			}
			if !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("message = %q, want containing %q", e.Message, tt.wantMsg)
			}
			if got := int(s.n.Load()); got != tt.wantAttempts {
				t.Errorf("server saw %d requests, want %d", got, tt.wantAttempts)
			}
			if e.Temporary() != tt.temporary || IsTemporary(err) != tt.temporary {
				t.Errorf("Temporary = %v, want %v", e.Temporary(), tt.temporary)
			}
			if tt.wantPred != nil && !tt.wantPred(err) {
				t.Errorf("predicate false for %v", err)
			}
			if tt.wantRID != "" && !strings.Contains(err.Error(), "request_id "+tt.wantRID) {
				t.Errorf("Error() = %q, want it to name the request id", err.Error())
			}
			calls := rec.Calls()
			if len(calls) != 1 || calls[0].Attempts != tt.wantAttempts || calls[0].RequestID != tt.wantRID ||
				calls[0].Status != tt.wantStatus || calls[0].ErrorCode != tt.wantCode || calls[0].Err == nil {
				t.Errorf("observer calls = %+v, want one call with %d attempts, rid %q", calls, tt.wantAttempts, tt.wantRID)
			}
		})
	}
}

func TestClientRetries(t *testing.T) {
	fail500 := answer(500, `{"error":{"code":"internal_error","message":"x","request_id":"req_a"}}`)
	ok := answer(200, `{"id":"pay_1","status":"pending"}`, "X-Request-Id", "req_ok")
	inTwentySeconds := time.Now().Add(20 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name         string
		method       string
		idem         string
		maxRetries   int
		answers      []func(http.ResponseWriter, *http.Request)
		wantAttempts int
		wantErr      bool
		// wantSleeps, if set, are the exact waits; otherwise each wait must
		// be within the jitter ceiling.
		wantSleeps []time.Duration
		sleepCheck func(t *testing.T, sleeps []time.Duration)
	}{
		{name: "GET 500 then 200", method: "GET", answers: answers(fail500, fail500, ok), wantAttempts: 3},
		{name: "GET 500 always", method: "GET", answers: answers(fail500), wantAttempts: 3, wantErr: true},
		{name: "GET 400 not retried", method: "GET", answers: answers(answer(400, `{}`), ok), wantAttempts: 1, wantErr: true},
		{name: "GET 401 not retried", method: "GET", answers: answers(answer(401, `{}`), ok), wantAttempts: 1, wantErr: true},
		{name: "GET 404 not retried", method: "GET", answers: answers(answer(404, `{}`), ok), wantAttempts: 1, wantErr: true},
		{name: "DELETE 503 retried", method: "DELETE", answers: answers(answer(503, ``), answer(204, ``)), wantAttempts: 2},
		{name: "PUT 502 retried", method: "PUT", answers: answers(answer(502, ``), ok), wantAttempts: 2},
		{name: "POST without key not retried", method: "POST", answers: answers(fail500, ok), wantAttempts: 1, wantErr: true},
		{name: "POST with key retried", method: "POST", idem: "idem_1", answers: answers(fail500, fail500, ok), wantAttempts: 3},
		{name: "PATCH with key retried", method: "PATCH", idem: "idem_2", answers: answers(fail500, ok), wantAttempts: 2},
		{name: "retries disabled", method: "GET", maxRetries: -1, answers: answers(fail500, ok), wantAttempts: 1, wantErr: true},
		{name: "five retries", method: "GET", maxRetries: 5, answers: answers(fail500), wantAttempts: 6, wantErr: true},
		{name: "429 Retry-After seconds", method: "GET", answers: answers(answer(429, ``, "Retry-After", "3"), ok),
			wantAttempts: 2, wantSleeps: []time.Duration{3 * time.Second}},
		{name: "503 Retry-After capped", method: "GET", answers: answers(answer(503, ``, "Retry-After", "3600"), ok),
			wantAttempts: 2, wantSleeps: []time.Duration{DefaultMaxRetryAfter}},
		{name: "429 Retry-After date", method: "GET", answers: answers(answer(429, ``, "Retry-After", inTwentySeconds), ok),
			wantAttempts: 2, sleepCheck: func(t *testing.T, s []time.Duration) {
				if len(s) != 1 || s[0] < 18*time.Second || s[0] > 20*time.Second {
					t.Errorf("sleeps = %v, want one of about 20s", s)
				}
			}},
		{name: "429 bad Retry-After falls back to backoff", method: "GET", answers: answers(answer(429, ``, "Retry-After", "soon"), ok),
			wantAttempts: 2, sleepCheck: func(t *testing.T, s []time.Duration) {
				if len(s) != 1 || s[0] > DefaultBackoffBase {
					t.Errorf("sleeps = %v, want one within the first backoff ceiling %v", s, DefaultBackoffBase)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, s := serve(t, tt.answers...)
			c, rec := newTestClient(t, srv.URL, func(cfg *Config) { cfg.MaxRetries = tt.maxRetries })
			_, err := c.Do(t.Context(), Request{Method: tt.method, Path: "/v1/things", Body: map[string]int{"a": 1}, IdempotencyKey: tt.idem}, nil)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got := int(s.n.Load()); got != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", got, tt.wantAttempts)
			}
			if calls := rec.Calls(); len(calls) != 1 || calls[0].Attempts != tt.wantAttempts {
				t.Errorf("observer = %+v, want one call with %d attempts", calls, tt.wantAttempts)
			}
			sleeps := rec.Sleeps()
			if len(sleeps) != tt.wantAttempts-1 {
				t.Errorf("sleeps = %v, want %d", sleeps, tt.wantAttempts-1)
			}
			switch {
			case tt.wantSleeps != nil:
				if len(sleeps) != len(tt.wantSleeps) || sleeps[0] != tt.wantSleeps[0] {
					t.Errorf("sleeps = %v, want %v", sleeps, tt.wantSleeps)
				}
			case tt.sleepCheck != nil:
				tt.sleepCheck(t, sleeps)
			default:
				for i, d := range sleeps {
					if ceil := min(DefaultBackoffMax, DefaultBackoffBase<<i); d < 0 || d > ceil {
						t.Errorf("sleep %d = %v, want within [0, %v]", i, d, ceil)
					}
				}
			}
			for _, r := range s.Requests() {
				if got := r.Header.Get("Idempotency-Key"); got != tt.idem {
					t.Errorf("Idempotency-Key = %q, want %q on every attempt", got, tt.idem)
				}
			}
		})
	}
}

func answers(a ...func(http.ResponseWriter, *http.Request)) []func(http.ResponseWriter, *http.Request) {
	return a
}

func TestBackoffFullJitter(t *testing.T) {
	c, _ := newTestClient(t, "http://127.0.0.1:1", func(cfg *Config) {
		cfg.BackoffBase, cfg.BackoffMax = 100*time.Millisecond, time.Second
	})
	for n := 1; n <= 8; n++ {
		ceil := min(time.Second, 100*time.Millisecond<<(n-1))
		var maxSeen time.Duration
		for range 200 {
			d := c.backoff(n, 0)
			if d < 0 || d > ceil {
				t.Fatalf("backoff(%d) = %v, want within [0, %v]", n, d, ceil)
			}
			maxSeen = max(maxSeen, d)
		}
		if maxSeen < ceil/2 {
			t.Errorf("backoff(%d) never exceeded %v in 200 draws; jitter is not spread over [0, %v]", n, maxSeen, ceil)
		}
	}
	if d := c.backoff(100, 0); d > time.Second {
		t.Errorf("backoff(100) = %v, want capped at 1s", d)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"7", 7 * time.Second},
		{" 12 ", 12 * time.Second},
		{"soon", 0},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-30 * time.Second).Format(http.TimeFormat), 0},
		{"99999999999999", 24 * time.Hour},
	}
	for _, tt := range tests {
		if got := ParseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestClientTimeouts(t *testing.T) {
	// block answers only when the client gives up, like a hung upstream.
	block := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	tests := []struct {
		name         string
		maxRetries   int
		ctx          func(t *testing.T) context.Context
		wantKind     ErrorKind
		wantAttempts int
	}{
		{"per-call timeout", -1, func(t *testing.T) context.Context { return t.Context() }, KindTimeout, 1},
		{"per-call timeout retried", 2, func(t *testing.T) context.Context { return t.Context() }, KindTimeout, 3},
		{"caller deadline not retried", 2, func(t *testing.T) context.Context {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
			t.Cleanup(cancel)
			return ctx
		}, KindTimeout, 1},
		{"caller cancel", 2, func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			return ctx
		}, KindCanceled, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := serve(t, block)
			c, rec := newTestClient(t, srv.URL, func(cfg *Config) {
				cfg.MaxRetries = tt.maxRetries
				if tt.wantKind == KindTimeout && tt.name != "caller deadline not retried" {
					cfg.Timeout = 40 * time.Millisecond
				}
			})
			_, err := c.Payment(tt.ctx(t), "pay_1")
			if KindOf(err) != tt.wantKind {
				t.Fatalf("err = %v, want kind %s", err, tt.wantKind)
			}
			if tt.wantKind == KindTimeout && (!IsTimeout(err) || !IsTemporary(err)) {
				t.Errorf("IsTimeout/IsTemporary false for %v", err)
			}
			if calls := rec.Calls(); len(calls) != 1 || calls[0].Attempts != tt.wantAttempts || calls[0].ErrorCode == "" {
				t.Errorf("observer = %+v, want one call with %d attempts and an error code", calls, tt.wantAttempts)
			}
		})
	}
}

func TestClientUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now: connection refused

	c, rec := newTestClient(t, "http://"+addr, nil)
	_, err = c.Payment(t.Context(), "pay_1")
	if !IsUnreachable(err) || !IsTemporary(err) || IsTimeout(err) {
		t.Fatalf("err = %v (kind %s), want unreachable", err, KindOf(err))
	}
	e, _ := errors.AsType[*Error](err)
	if e.Status != 0 || e.Code != CodeUnreachable || !strings.Contains(e.Message, "refused") {
		t.Errorf("error = %+v, want status 0, code unreachable and a message naming the refusal", e)
	}
	if calls := rec.Calls(); len(calls) != 1 || calls[0].Attempts != 3 {
		t.Errorf("observer = %+v, want one call with 3 attempts", calls)
	}
	// A POST without idempotency key is not retried even when unreachable.
	_, err = c.Do(t.Context(), Request{Method: "POST", Path: "/v1/x"}, nil)
	if !IsUnreachable(err) {
		t.Fatalf("POST err = %v, want unreachable", err)
	}
	if calls := rec.Calls(); calls[len(calls)-1].Attempts != 1 {
		t.Errorf("POST attempts = %d, want 1", calls[len(calls)-1].Attempts)
	}
}

func TestClientSuccessBodies(t *testing.T) {
	tests := []struct {
		name    string
		answer  func(http.ResponseWriter, *http.Request)
		wantErr ErrorKind
	}{
		{"204 no content", answer(204, ""), ""},
		{"200 empty body", answer(200, ""), ""},
		{"200 json ignored", answer(200, `{"ok":true}`), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, s := serve(t, tt.answer)
			c, rec := newTestClient(t, srv.URL, nil)
			err := c.RevokeSession(t.Context(), "sess_1")
			if KindOf(err) != tt.wantErr {
				t.Fatalf("RevokeSession err = %v, want kind %q", err, tt.wantErr)
			}
			r := s.Requests()[0]
			if r.Method != "DELETE" || r.URL.Path != "/v1/sessions/sess_1" || r.Header.Get("Authorization") != "Bearer sk_test_secret" {
				t.Errorf("request = %s %s auth %q", r.Method, r.URL.Path, r.Header.Get("Authorization"))
			}
			if calls := rec.Calls(); len(calls) != 1 || calls[0].Err != nil || calls[0].Attempts != 1 {
				t.Errorf("observer = %+v", calls)
			}
		})
	}
}

func TestPaymentDecoding(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		check func(t *testing.T, p Payment)
	}{
		{"nulls", `{"id":"pay_1","status":"pending","amount":1250,"currency":"GBP","description":null,"metadata":null,
			"completed_at":null,"cancelled_at":null,"failure_reason":null,"request_id":"req_body"}`, func(t *testing.T, p Payment) {
			if p.Description != nil || p.Metadata != nil || p.CompletedAt != nil {
				t.Errorf("nullable fields not nil: %+v", p)
			}
			if !p.CancelledAt.IsNull() || !p.FailureReason.IsNull() || p.CancelledAt.Valid {
				t.Errorf("Optional fields = %+v %+v, want present and null", p.CancelledAt, p.FailureReason)
			}
			if p.RequestID != "req_body" {
				t.Errorf("RequestID = %q, want req_body", p.RequestID)
			}
		}},
		{"absent optional fields", `{"id":"pay_2","status":"completed"}`, func(t *testing.T, p Payment) {
			if p.CancelledAt.Present || p.FailureReason.Present || !p.CancelledAt.IsZero() {
				t.Errorf("absent Optional fields reported present: %+v %+v", p.CancelledAt, p.FailureReason)
			}
			if p.RequestID != "req_hdr" {
				t.Errorf("RequestID = %q, want the header's req_hdr", p.RequestID)
			}
		}},
		{"values", `{"id":"pay_3","status":"cancelled","description":"Invoice","metadata":{"k":"v"},
			"cancelled_at":"2025-01-02T15:04:05Z","failure_reason":"user_cancelled"}`, func(t *testing.T, p Payment) {
			at, ok := p.CancelledAt.Get()
			reason, ok2 := p.FailureReason.Get()
			if !ok || !at.Equal(time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC)) || !ok2 || reason != "user_cancelled" {
				t.Errorf("values = %v %v %q %v", at, ok, reason, ok2)
			}
			if p.Description == nil || *p.Description != "Invoice" || p.Metadata["k"] != "v" {
				t.Errorf("description/metadata = %v %v", p.Description, p.Metadata)
			}
		}},
		{"unknown enum and fields", `{"id":"pay_4","status":"awaiting_bank","new_field":{"x":1}}`, func(t *testing.T, p Payment) {
			if p.Status != "awaiting_bank" || p.Status.Known() {
				t.Errorf("status = %q known=%v, want raw unknown value", p.Status, p.Status.Known())
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := serve(t, answer(200, tt.body, "X-Request-Id", "req_hdr"))
			c, _ := newTestClient(t, srv.URL, nil)
			p, err := c.Payment(t.Context(), "pay_1")
			if err != nil {
				t.Fatalf("Payment: %v", err)
			}
			tt.check(t, p)
		})
	}
}

func TestClientDecodeError(t *testing.T) {
	srv, _ := serve(t, answer(200, `{"id": 42`, "X-Request-Id", "req_trunc"))
	c, _ := newTestClient(t, srv.URL, nil)
	_, err := c.Payment(t.Context(), "pay_1")
	e, ok := errors.AsType[*Error](err)
	if !ok || e.Kind != KindDecode || e.RequestID != "req_trunc" || e.Status != 200 {
		t.Fatalf("err = %#v, want decode error with request id", err)
	}
}

// boundedTransport bounds every response body the way the SSRF-safe
// transport does, failing reads past limit with an *http.MaxBytesError.
type boundedTransport struct{ limit int64 }

func (b boundedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		res.Body = http.MaxBytesReader(nil, res.Body, b.limit)
	}
	return res, err
}

func TestClientBoundsResponseBody(t *testing.T) {
	big := `{"id":"pay_1","description":"` + strings.Repeat("x", MaxResponseBytes) + `"}`
	tests := []struct {
		name    string
		body    string
		hc      *http.Client
		wantMsg string
	}{
		{"over the client's bound", big, nil, fmt.Sprintf("response body too large: over %d bytes", MaxResponseBytes)},
		{"over the transport's bound", `{"id":"pay_1","description":"` + strings.Repeat("x", 200) + `"}`,
			&http.Client{Transport: boundedTransport{limit: 100}}, "response body too large: over 100 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := serve(t, answer(200, tt.body, "X-Request-Id", "req_big"))
			c, rec := newTestClient(t, srv.URL, func(cfg *Config) { cfg.HTTPClient = tt.hc })
			_, err := c.Payment(t.Context(), "pay_1")
			e, ok := errors.AsType[*Error](err)
			if !ok || e.Kind != KindDecode || e.Message != tt.wantMsg || e.RequestID != "req_big" || e.Status != 200 {
				t.Fatalf("err = %v, want a decode error %q with the request id", err, tt.wantMsg)
			}
			if calls := rec.Calls(); len(calls) != 1 || calls[0].Attempts != 1 {
				t.Errorf("observer = %+v, want one call, not retried", calls)
			}
		})
	}
}

func TestClientKeysAndHeaders(t *testing.T) {
	srv, s := serve(t, answer(200, `{"environment":"sandbox","key_kind":"public_key","data":[]}`))
	c, _ := newTestClient(t, srv.URL, nil)
	ctx := t.Context()
	_, _ = c.CheckKey(ctx, KeyPublic)
	_, _ = c.CheckKey(ctx, KeyClientToken)
	_, _ = c.CheckCredentials(ctx)
	for range c.Institutions(ctx, ListParams{}) {
	}
	_, _ = c.Payment(ctx, "pay/../x")
	_, _ = c.CreatePayment(ctx, PaymentParams{Amount: 1, Currency: "GBP", UserID: "u"})
	want := []struct{ path, auth string }{
		{"/v1/credentials", "Bearer pk_test_public"},
		{"/v1/credentials", "Bearer ct_test_token"},
		{"/v1/credentials", "Bearer sk_test_secret"},
		{"/v1/institutions", "Bearer pk_test_public"},
		{"/v1/payments", "Bearer sk_test_secret"},
	}
	reqs := s.Requests()
	if len(reqs) != len(want) {
		t.Fatalf("server saw %d requests, want %d (an id with / must not be sent)", len(reqs), len(want))
	}
	for i, w := range want {
		if reqs[i].URL.Path != w.path || reqs[i].Header.Get("Authorization") != w.auth {
			t.Errorf("request %d = %s auth %q, want %s auth %q", i, reqs[i].URL.Path, reqs[i].Header.Get("Authorization"), w.path, w.auth)
		}
	}
	if k := reqs[4].Header.Get("Idempotency-Key"); !strings.HasPrefix(k, "idem_") {
		t.Errorf("CreatePayment Idempotency-Key = %q, want a generated one", k)
	}
	if ct := reqs[4].Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
}

func TestClientMissingKey(t *testing.T) {
	srv, s := serve(t, answer(200, `{}`))
	c, rec := newTestClient(t, srv.URL, func(cfg *Config) { cfg.PublicKey = "" })
	var err error
	for _, e := range c.Institutions(t.Context(), ListParams{}) {
		err = e
	}
	e, ok := errors.AsType[*Error](err)
	if !ok || e.Kind != KindMissingKey || !strings.Contains(e.Message, "no public key configured for the sandbox environment") {
		t.Fatalf("err = %v, want missing public key", err)
	}
	if s.n.Load() != 0 {
		t.Error("a request was sent without a key")
	}
	if calls := rec.Calls(); len(calls) != 1 || calls[0].Attempts != 0 || calls[0].ErrorCode != CodeMissingKey {
		t.Errorf("observer = %+v, want one call with 0 attempts", calls)
	}
}

func TestCheckKeyReportsEnvironmentTheServerSees(t *testing.T) {
	tests := []struct {
		name         string
		env          Environment
		body         string
		wantMismatch bool
	}{
		{"same environment", Production, `{"environment":"production","key_kind":"secret_key","account_name":"Acme","request_id":"req_1"}`, false},
		{"other environment", Production, `{"environment":"sandbox","key_kind":"secret_key","account_name":"Acme","request_id":"req_2"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := serve(t, answer(200, tt.body))
			c, _ := newTestClient(t, srv.URL, func(cfg *Config) { cfg.Env = tt.env })
			cr, err := c.CheckCredentials(t.Context())
			if IsEnvironmentMismatch(err) != tt.wantMismatch {
				t.Fatalf("err = %v, want mismatch %v", err, tt.wantMismatch)
			}
			if cr.AccountName != "Acme" || cr.RequestID == "" {
				t.Errorf("credentials = %+v, want them filled in either way", cr)
			}
		})
	}
}

func TestObserverOneCallPerLogicalCall(t *testing.T) {
	srv, _ := serve(t, answer(503, ``, "X-Request-Id", "req_first"), answer(200, `{"id":"pay_1"}`, "X-Request-Id", "req_second"))
	c, rec := newTestClient(t, srv.URL, nil)
	if _, err := c.Payment(t.Context(), "pay_1"); err != nil {
		t.Fatal(err)
	}
	calls := rec.Calls()
	if len(calls) != 1 {
		t.Fatalf("observer got %d calls, want 1", len(calls))
	}
	got := calls[0]
	if got.Env != Sandbox || got.Method != "GET" || got.Path != "/v1/payments/pay_1" || got.Status != 200 ||
		got.RequestID != "req_second" || got.Attempts != 2 || got.Err != nil || got.ErrorCode != "" || got.Duration <= 0 {
		t.Errorf("call = %+v", got)
	}
}

func TestClientReportsRedirectInsteadOfFollowing(t *testing.T) {
	srv, s := serve(t, answer(301, "", "Location", "https://api.example/sandbox/v1/payments/pay_1"))
	c, _ := newTestClient(t, srv.URL, nil)
	_, err := c.Payment(t.Context(), "pay_1")
	e, ok := errors.AsType[*Error](err)
	if !ok || e.Kind != KindUnexpected || e.Status != 301 || !strings.Contains(e.Message, "redirected to https://api.example/sandbox") {
		t.Fatalf("err = %v, want an unexpected 301 naming the Location", err)
	}
	if s.n.Load() != 1 {
		t.Errorf("server saw %d requests, want 1 (no follow, no retry)", s.n.Load())
	}
}
