package tensfersim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// recorder collects what a client or the emitter reports so tests can
// assert on it without waiting in real time.
type recorder struct {
	mu     sync.Mutex
	sleeps []time.Duration
	calls  []tensfer.Call
}

func (r *recorder) sleep(_ context.Context, d time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sleeps = append(r.sleeps, d)
	return nil
}

func (r *recorder) observe(_ context.Context, c tensfer.Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

func (r *recorder) Sleeps() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.sleeps...)
}

func (r *recorder) Calls() []tensfer.Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tensfer.Call(nil), r.calls...)
}

// simServer serves a simulator on loopback and returns it with its root URL.
func simServer(t *testing.T, cfg Config) (*Simulator, string) {
	t.Helper()
	if cfg.Seed == 0 {
		cfg.Seed = 42
	}
	sim := New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv.URL
}

// simClient returns a client for env on the simulator at root using keys,
// with sleeps and calls recorded and its config adjusted by mutate.
func simClient(t *testing.T, root string, env tensfer.Environment, keys Keys, mutate func(*tensfer.Config)) (*tensfer.Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	cfg := tensfer.Config{
		Env: env, BaseURL: BaseURL(root, env),
		SecretKey: keys.SecretKey, PublicKey: keys.PublicKey, ClientToken: keys.ClientToken,
		Sleep: rec.sleep, Observer: rec.observe,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := tensfer.New(cfg)
	if err != nil {
		t.Fatalf("tensfer.New: %v", err)
	}
	return c, rec
}

func TestSimCredentials(t *testing.T) {
	_, root := simServer(t, Config{AccountName: "Acme Payments"})
	keys := DefaultKeys()
	tests := []struct {
		name     string
		env      tensfer.Environment
		keys     Keys
		kind     tensfer.KeyKind
		wantKind tensfer.ErrorKind
		wantCode string
		wantMsg  string
	}{
		{name: "sandbox secret", env: tensfer.Sandbox, keys: keys[tensfer.Sandbox], kind: tensfer.KeySecret},
		{name: "sandbox public", env: tensfer.Sandbox, keys: keys[tensfer.Sandbox], kind: tensfer.KeyPublic},
		{name: "sandbox client token", env: tensfer.Sandbox, keys: keys[tensfer.Sandbox], kind: tensfer.KeyClientToken},
		{name: "production secret", env: tensfer.Production, keys: keys[tensfer.Production], kind: tensfer.KeySecret},
		{name: "production client token", env: tensfer.Production, keys: keys[tensfer.Production], kind: tensfer.KeyClientToken},
		{name: "sandbox key on production", env: tensfer.Production, keys: keys[tensfer.Sandbox], kind: tensfer.KeySecret,
			wantKind: tensfer.KindEnvironmentMismatch, wantCode: tensfer.CodeEnvironmentMismatch,
			wantMsg: "this is a sandbox secret key but this is the production API"},
		{name: "production key on sandbox", env: tensfer.Sandbox, keys: keys[tensfer.Production], kind: tensfer.KeyPublic,
			wantKind: tensfer.KindEnvironmentMismatch, wantCode: tensfer.CodeEnvironmentMismatch,
			wantMsg: "this is a production public key but this is the sandbox API"},
		{name: "unknown key", env: tensfer.Sandbox, keys: Keys{SecretKey: "sk_sandbox_typo1234"}, kind: tensfer.KeySecret,
			wantKind: tensfer.KindAuth, wantCode: tensfer.CodeInvalidAPIKey, wantMsg: `ending in "1234" is not a valid sandbox key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := simClient(t, root, tt.env, tt.keys, nil)
			cr, err := c.CheckKey(t.Context(), tt.kind)
			if tt.wantKind == "" {
				if err != nil {
					t.Fatalf("CheckKey: %v", err)
				}
				want := tt.keys.byKind()[tt.kind]
				if cr.Environment != tt.env || cr.KeyKind != tt.kind || cr.AccountName != "Acme Payments" ||
					cr.KeyLast4 != want[len(want)-4:] || cr.Livemode != (tt.env == tensfer.Production) || !strings.HasPrefix(cr.RequestID, "req_") {
					t.Errorf("credentials = %+v", cr)
				}
				return
			}
			e, ok := errors.AsType[*tensfer.Error](err)
			if !ok || e.Kind != tt.wantKind || e.Code != tt.wantCode || e.Status != 401 || !strings.Contains(e.Message, tt.wantMsg) {
				t.Fatalf("err = %v, want %s %s containing %q", err, tt.wantKind, tt.wantCode, tt.wantMsg)
			}
			if !strings.HasPrefix(e.RequestID, "req_") || rec.Calls()[0].RequestID != e.RequestID {
				t.Errorf("request id %q not reported (observer %+v)", e.RequestID, rec.Calls())
			}
		})
	}
}

func TestSimRawAuthAndRouting(t *testing.T) {
	_, root := simServer(t, Config{})
	keys := DefaultKeys()
	tests := []struct {
		name, method, path, auth string
		wantStatus               int
		wantCode                 string
	}{
		{"no authorization", "GET", "/sandbox/v1/credentials", "", 401, tensfer.CodeInvalidAPIKey},
		{"basic auth", "GET", "/sandbox/v1/credentials", "Basic " + keys[tensfer.Sandbox].SecretKey, 401, tensfer.CodeInvalidAPIKey},
		{"lower-case bearer", "GET", "/sandbox/v1/credentials", "bearer " + keys[tensfer.Sandbox].SecretKey, 200, ""},
		{"public key on payments", "GET", "/sandbox/v1/payments/pay_demo_pending", "Bearer " + keys[tensfer.Sandbox].PublicKey, 403, "key_not_allowed"},
		{"client token on institutions", "GET", "/sandbox/v1/institutions", "Bearer " + keys[tensfer.Sandbox].ClientToken, 403, "key_not_allowed"},
		{"unknown environment", "GET", "/staging/v1/credentials", "Bearer " + keys[tensfer.Sandbox].SecretKey, 404, "unknown_environment"},
		{"unknown route", "GET", "/sandbox/v1/nothing", "Bearer " + keys[tensfer.Sandbox].SecretKey, 404, "route_not_found"},
		{"wrong method", "POST", "/sandbox/v1/credentials", "Bearer " + keys[tensfer.Sandbox].SecretKey, 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, root+tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			rid := res.Header.Get("X-Request-Id")
			if res.StatusCode != tt.wantStatus || !strings.HasPrefix(rid, "req_") {
				t.Fatalf("status %d rid %q body %s; want %d", res.StatusCode, rid, body, tt.wantStatus)
			}
			if tt.wantCode == "" {
				return
			}
			var eb struct {
				Error struct {
					Code      string `json:"code"`
					Message   string `json:"message"`
					RequestID string `json:"request_id"`
				} `json:"error"`
			}
			if err := json.Unmarshal(body, &eb); err != nil {
				t.Fatalf("error body %s: %v", body, err)
			}
			if e := eb.Error; e.Code != tt.wantCode || e.RequestID != rid || e.Message == "" {
				t.Errorf("error body %s: code %q rid %q; want code %q and the header's request id %q", body, e.Code, e.RequestID, tt.wantCode, rid)
			}
		})
	}
}

func TestSimInjectedFailures(t *testing.T) {
	_, root := simServer(t, Config{MaxBlock: 5 * time.Second})
	tests := []struct {
		name         string
		header       string
		query        string
		timeout      time.Duration
		wantKind     tensfer.ErrorKind
		wantStatus   int
		wantCode     string
		wantAttempts int
		wantSleeps   []time.Duration
	}{
		{name: "500", header: "500", wantKind: tensfer.KindServer, wantStatus: 500, wantCode: "internal_error", wantAttempts: 3},
		{name: "502 via query", query: "sim_fail=502", wantKind: tensfer.KindServer, wantStatus: 502, wantCode: "bad_gateway", wantAttempts: 3},
		{name: "503 Retry-After", header: "503", wantKind: tensfer.KindServer, wantStatus: 503, wantCode: "service_unavailable", wantAttempts: 3,
			wantSleeps: []time.Duration{time.Second, time.Second}},
		{name: "429 Retry-After", header: "429", wantKind: tensfer.KindRateLimited, wantStatus: 429, wantCode: "rate_limited", wantAttempts: 3,
			wantSleeps: []time.Duration{time.Second, time.Second}},
		{name: "400", header: "400", wantKind: tensfer.KindInvalidRequest, wantStatus: 400, wantCode: "invalid_request", wantAttempts: 1},
		{name: "401", header: "401", wantKind: tensfer.KindAuth, wantStatus: 401, wantCode: tensfer.CodeInvalidAPIKey, wantAttempts: 1},
		{name: "403", header: "403", wantKind: tensfer.KindForbidden, wantStatus: 403, wantCode: "key_not_allowed", wantAttempts: 1},
		{name: "404", header: "404", wantKind: tensfer.KindNotFound, wantStatus: 404, wantCode: "not_found", wantAttempts: 1},
		{name: "409", header: "409", wantKind: tensfer.KindConflict, wantStatus: 409, wantCode: "idempotency_conflict", wantAttempts: 1},
		{name: "unknown mode", header: "teapot", wantKind: tensfer.KindInvalidRequest, wantStatus: 400, wantCode: "invalid_sim_fail", wantAttempts: 1},
		{name: "timeout", header: "timeout", timeout: 50 * time.Millisecond, wantKind: tensfer.KindTimeout, wantCode: tensfer.CodeTimeout, wantAttempts: 3},
		{name: "reset", header: "reset", wantKind: tensfer.KindUnreachable, wantCode: tensfer.CodeUnreachable, wantAttempts: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := simClient(t, root, tensfer.Sandbox, DefaultKeys()[tensfer.Sandbox], func(cfg *tensfer.Config) { cfg.Timeout = tt.timeout })
			r := tensfer.Request{Method: "GET", Path: "/v1/payments/pay_demo_pending", Header: http.Header{}}
			if tt.header != "" {
				r.Header.Set("X-Sim-Fail", tt.header)
			}
			if tt.query != "" {
				r.Path += "?" + tt.query
			}
			_, err := c.Do(t.Context(), r, nil)
			e, ok := errors.AsType[*tensfer.Error](err)
			if !ok || e.Kind != tt.wantKind || e.Status != tt.wantStatus || e.Code != tt.wantCode {
				t.Fatalf("err = %v, want kind %s status %d code %s", err, tt.wantKind, tt.wantStatus, tt.wantCode)
			}
			if tt.wantStatus != 0 && !strings.HasPrefix(e.RequestID, "req_") {
				t.Errorf("request id = %q, want the simulator's", e.RequestID)
			}
			if calls := rec.Calls(); len(calls) != 1 || calls[0].Attempts != tt.wantAttempts {
				t.Errorf("observer = %+v, want %d attempts", calls, tt.wantAttempts)
			}
			if tt.wantSleeps != nil {
				if s := rec.Sleeps(); len(s) != len(tt.wantSleeps) || s[0] != tt.wantSleeps[0] || s[1] != tt.wantSleeps[1] {
					t.Errorf("sleeps = %v, want %v (Retry-After honoured)", s, tt.wantSleeps)
				}
			}
		})
	}
}

func TestSimTimeoutAnswers504AfterMaxBlock(t *testing.T) {
	_, root := simServer(t, Config{MaxBlock: 20 * time.Millisecond})
	c, _ := simClient(t, root, tensfer.Sandbox, DefaultKeys()[tensfer.Sandbox], func(cfg *tensfer.Config) { cfg.MaxRetries = -1 })
	_, err := c.Do(t.Context(), tensfer.Request{Method: "GET", Path: "/v1/credentials", Header: http.Header{"X-Sim-Fail": {"timeout"}}}, nil)
	if e, ok := errors.AsType[*tensfer.Error](err); !ok || e.Status != 504 || e.Code != "gateway_timeout" {
		t.Fatalf("err = %v, want 504 gateway_timeout", err)
	}
}

func TestSimFailureRate(t *testing.T) {
	tests := []struct {
		name       string
		rate       float64
		modes      []string
		wantAllErr bool
		wantSome   bool
	}{
		{name: "always", rate: 1, modes: []string{"500"}, wantAllErr: true},
		{name: "never", rate: 0},
		{name: "half", rate: 0.5, modes: []string{"503", "429"}, wantSome: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, root := simServer(t, Config{FailureRate: tt.rate, FailureModes: tt.modes, Seed: 7})
			c, _ := simClient(t, root, tensfer.Sandbox, DefaultKeys()[tensfer.Sandbox], func(cfg *tensfer.Config) { cfg.MaxRetries = -1 })
			failed := 0
			const n = 40
			for range n {
				if _, err := c.CheckCredentials(t.Context()); err != nil {
					if !tensfer.IsTemporary(err) {
						t.Fatalf("injected failure %v is not temporary", err)
					}
					failed++
				}
			}
			switch {
			case tt.wantAllErr && failed != n:
				t.Errorf("%d of %d failed, want all", failed, n)
			case tt.rate == 0 && failed != 0:
				t.Errorf("%d of %d failed, want none", failed, n)
			case tt.wantSome && (failed < 5 || failed > 35):
				t.Errorf("%d of %d failed at rate 0.5", failed, n)
			}
		})
	}
}

func TestSimPaginationWalksAllPages(t *testing.T) {
	tests := []struct {
		limit, institutions, wantPages int
	}{
		{0, 45, 3},
		{10, 45, 5},
		{100, 45, 1},
		{7, 21, 3},
	}
	for _, tt := range tests {
		_, root := simServer(t, Config{Institutions: tt.institutions})
		c, rec := simClient(t, root, tensfer.Production, DefaultKeys()[tensfer.Production], nil)
		seen := map[string]bool{}
		var unknownStatus, nullLogo int
		for ins, err := range c.Institutions(t.Context(), tensfer.ListParams{Limit: tt.limit}) {
			if err != nil {
				t.Fatalf("limit %d: %v", tt.limit, err)
			}
			if seen[ins.ID] {
				t.Fatalf("limit %d: %s listed twice", tt.limit, ins.ID)
			}
			seen[ins.ID] = true
			if !ins.Status.Known() {
				unknownStatus++
			}
			if ins.LogoURL == nil {
				nullLogo++
			}
		}
		if len(seen) != tt.institutions || len(rec.Calls()) != tt.wantPages {
			t.Errorf("limit %d: %d institutions in %d pages, want %d in %d", tt.limit, len(seen), len(rec.Calls()), tt.institutions, tt.wantPages)
		}
		if unknownStatus != 1 || nullLogo == 0 {
			t.Errorf("limit %d: %d unknown statuses, %d null logos; want 1 kept as sent and some nulls", tt.limit, unknownStatus, nullLogo)
		}
	}
}

func TestSimListValidation(t *testing.T) {
	_, root := simServer(t, Config{})
	c, _ := simClient(t, root, tensfer.Sandbox, DefaultKeys()[tensfer.Sandbox], nil)
	tests := []struct {
		p        tensfer.ListParams
		wantCode string
	}{
		{tensfer.ListParams{Limit: 101}, "invalid_request"},
		{tensfer.ListParams{Limit: -1}, "invalid_request"},
		{tensfer.ListParams{Cursor: "not-a-cursor"}, "invalid_cursor"},
		{tensfer.ListParams{Cursor: encodeCursor(1000)}, "invalid_cursor"},
	}
	for _, tt := range tests {
		_, err := c.InstitutionsPage(t.Context(), tt.p)
		if e, ok := errors.AsType[*tensfer.Error](err); !ok || e.Kind != tensfer.KindInvalidRequest || e.Code != tt.wantCode {
			t.Errorf("%+v: err = %v, want 400 %s", tt.p, err, tt.wantCode)
		}
	}
}

func TestSimPayments(t *testing.T) {
	_, root := simServer(t, Config{})
	c, _ := simClient(t, root, tensfer.Sandbox, DefaultKeys()[tensfer.Sandbox], nil)
	ctx := t.Context()
	tests := []struct {
		id    string
		check func(t *testing.T, p tensfer.Payment, err error)
	}{
		{"pay_demo_pending", func(t *testing.T, p tensfer.Payment, err error) {
			if err != nil || p.Status != tensfer.PaymentPending || p.Description != nil || p.Metadata != nil || p.CompletedAt != nil ||
				!p.CancelledAt.IsNull() || !p.FailureReason.IsNull() || !strings.HasPrefix(p.RequestID, "req_") {
				t.Errorf("payment = %+v, %v; want pending with null fields", p, err)
			}
		}},
		{"pay_demo_completed", func(t *testing.T, p tensfer.Payment, err error) {
			if err != nil || p.CompletedAt == nil || p.Description == nil || p.Metadata["env"] != "sandbox" || !p.CancelledAt.IsNull() {
				t.Errorf("payment = %+v, %v", p, err)
			}
		}},
		{"pay_demo_legacy", func(t *testing.T, p tensfer.Payment, err error) {
			if err != nil || p.CancelledAt.Present || p.FailureReason.Present {
				t.Errorf("payment = %+v, %v; want cancelled_at and failure_reason absent", p, err)
			}
		}},
		{"pay_missing", func(t *testing.T, p tensfer.Payment, err error) {
			if e, ok := errors.AsType[*tensfer.Error](err); !ok || e.Kind != tensfer.KindNotFound || e.Code != "payment_not_found" || !strings.HasPrefix(e.RequestID, "req_") {
				t.Errorf("err = %v, want 404 payment_not_found with request id", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			p, err := c.Payment(ctx, tt.id)
			tt.check(t, p, err)
		})
	}
}

func TestSimCreatePayment(t *testing.T) {
	_, root := simServer(t, Config{})
	c, rec := simClient(t, root, tensfer.Sandbox, DefaultKeys()[tensfer.Sandbox], nil)
	ctx := t.Context()
	desc := "Order 7"
	params := tensfer.PaymentParams{Amount: 1999, Currency: "GBP", UserID: "usr_0007", Description: &desc, IdempotencyKey: "idem_fixed"}
	first, err := c.CreatePayment(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if first.Status != tensfer.PaymentPending || first.CreationRequestID != first.RequestID || *first.Description != desc {
		t.Errorf("created = %+v", first)
	}
	replay, err := c.CreatePayment(ctx, params)
	if err != nil || replay.ID != first.ID {
		t.Errorf("replay with same idempotency key = %s, %v; want the same payment %s", replay.ID, err, first.ID)
	}
	params.Amount = 2000
	if _, err := c.CreatePayment(ctx, params); tensfer.KindOf(err) != tensfer.KindConflict {
		t.Errorf("same key, other body: err = %v, want conflict", err)
	}
	got, err := c.Payment(ctx, first.ID)
	if err != nil || got.CreationRequestID != first.RequestID || got.RequestID == first.RequestID {
		t.Errorf("fetched = %+v, %v; want creation request id kept and a fresh request id", got, err)
	}
	for _, bad := range []tensfer.PaymentParams{
		{Amount: 0, Currency: "GBP", UserID: "u"},
		{Amount: 10, Currency: "gbp", UserID: "u"},
		{Amount: 10, Currency: "GBP"},
	} {
		if _, err := c.CreatePayment(ctx, bad); tensfer.KindOf(err) != tensfer.KindInvalidRequest {
			t.Errorf("%+v: err = %v, want invalid request", bad, err)
		}
	}
	// A POST with an idempotency key is retried through injected 503s.
	res, err := c.Do(ctx, tensfer.Request{Method: "POST", Path: "/v1/payments?sim_fail=503", Body: tensfer.PaymentParams{Amount: 5, Currency: "EUR", UserID: "u"}, IdempotencyKey: "idem_retry"}, nil)
	if tensfer.KindOf(err) != tensfer.KindServer || res.Status != 503 {
		t.Fatalf("err = %v, want the injected 503 after retries", err)
	}
	if calls := rec.Calls(); calls[len(calls)-1].Attempts != 3 {
		t.Errorf("POST with idempotency key made %d attempts, want 3", calls[len(calls)-1].Attempts)
	}
}

func TestSimSessions(t *testing.T) {
	_, root := simServer(t, Config{})
	c, _ := simClient(t, root, tensfer.Production, DefaultKeys()[tensfer.Production], nil)
	ctx := t.Context()
	s, err := c.CreateSession(ctx, tensfer.SessionParams{UserID: "usr_0001", RedirectURI: "https://app.example/return"})
	if err != nil || !strings.HasPrefix(s.ID, "sess_") || !strings.Contains(s.URL, "env=production") || s.ExpiresAt.IsZero() {
		t.Fatalf("session = %+v, %v", s, err)
	}
	if _, err := c.CreateSession(ctx, tensfer.SessionParams{UserID: "u", RedirectURI: "javascript:alert(1)"}); tensfer.KindOf(err) != tensfer.KindInvalidRequest {
		t.Errorf("bad redirect_uri: err = %v", err)
	}
	tests := []struct {
		id       string
		wantKind tensfer.ErrorKind
	}{
		{s.ID, ""},
		{s.ID, tensfer.KindNotFound}, // already revoked
		{"sess_unknown", tensfer.KindNotFound},
	}
	for _, tt := range tests {
		if err := c.RevokeSession(ctx, tt.id); tensfer.KindOf(err) != tt.wantKind {
			t.Errorf("RevokeSession(%s) = %v, want kind %q", tt.id, err, tt.wantKind)
		}
	}
}

func TestSimRecentRequests(t *testing.T) {
	sim, root := simServer(t, Config{})
	c, rec := simClient(t, root, tensfer.Sandbox, DefaultKeys()[tensfer.Sandbox], nil)
	_, _ = c.Payment(context.Background(), "pay_nope")
	got := sim.RecentRequests(tensfer.Sandbox)
	if len(got) != 1 || got[0].Status != 404 || got[0].RequestID != rec.Calls()[0].RequestID || got[0].Path != "/v1/payments/pay_nope" {
		t.Errorf("recent = %+v", got)
	}
	if len(sim.RecentRequests(tensfer.Production)) != 0 {
		t.Error("a sandbox request was recorded under production")
	}
}
