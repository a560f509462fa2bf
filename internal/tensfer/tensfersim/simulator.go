// Package tensfersim simulates the Tensfer API for tests and the demo: an
// http.Handler that answers like both environments (with injectable
// failures), an emitter of signed webhooks and front-end callback beacons,
// generators of plausible events tied to the calls it answered, and a loop
// that keeps a steady trickle of all three going.
//
// It imports package tensfer (whose client, event types and webhook
// signing it speaks) and the standard library only. docs/tensfer.md
// describes what it simulates.
package tensfersim

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// Keys are the three keys of one simulated environment.
type Keys struct {
	ClientToken, PublicKey, SecretKey string
}

func (k Keys) byKind() map[tensfer.KeyKind]string {
	return map[tensfer.KeyKind]string{tensfer.KeySecret: k.SecretKey, tensfer.KeyPublic: k.PublicKey, tensfer.KeyClientToken: k.ClientToken}
}

// DefaultKeys returns recognisable keys for both environments: sandbox
// keys contain "_sandbox_", production keys "_live_".
func DefaultKeys() map[tensfer.Environment]Keys {
	return map[tensfer.Environment]Keys{
		tensfer.Sandbox: {
			ClientToken: "ct_sandbox_7Rq2dYp4Lw9xKs3m",
			PublicKey:   "pk_sandbox_4Hn8tVb2Qe6zJc1w",
			SecretKey:   "sk_sandbox_9Fx3kMs7Ua5rGd2p",
		},
		tensfer.Production: {
			ClientToken: "ct_live_2Wm6pXc8Nf4qTb7h",
			PublicKey:   "pk_live_8Jd1sRk5Ey3vLa9g",
			SecretKey:   "sk_live_5Tb9nQw2Hz7cMf4x",
		},
	}
}

// Failure modes for X-Sim-Fail, the sim_fail query parameter and
// Config.FailureModes.
const (
	FailTimeout = "timeout" // block until the client gives up (or MaxBlock, then 504)
	FailReset   = "reset"   // drop the connection without an answer
)

// injectedFailure returns the error code and message an injected status
// failure answers with.
func injectedFailure(status int) (code, message string, ok bool) {
	switch status {
	case 400:
		return "invalid_request", "injected failure: the request was malformed", true
	case 401:
		return tensfer.CodeInvalidAPIKey, "injected failure: the API key is not valid", true
	case 403:
		return "key_not_allowed", "injected failure: this key may not call this endpoint", true
	case 404:
		return "not_found", "injected failure: no such resource", true
	case 409:
		return "idempotency_conflict", "injected failure: a request with this idempotency key is in progress", true
	case 429:
		return "rate_limited", "injected failure: too many requests, retry after 1 second", true
	case 500:
		return "internal_error", "injected failure: something went wrong on Tensfer's side", true
	case 502:
		return "bad_gateway", "injected failure: upstream bank did not answer", true
	case 503:
		return "service_unavailable", "injected failure: Tensfer is temporarily unavailable", true
	case 504:
		return "gateway_timeout", "injected failure: upstream bank timed out", true
	}
	return "", "", false
}

// Config configures a Simulator. The zero value is usable.
type Config struct {
	// Keys per environment; nil means DefaultKeys().
	Keys map[tensfer.Environment]Keys
	// AccountName is reported by the credentials endpoint.
	AccountName string
	// FailureRate is the probability (0..1) that a request fails with one
	// of FailureModes, drawn from the seeded generator.
	FailureRate float64
	// FailureModes are the failures FailureRate picks from; nil means
	// "500", "503" and "429".
	FailureModes []string
	// Seed seeds the simulator's generator (request ids, failures, events);
	// 0 means a random seed.
	Seed uint64
	// MaxBlock is how long the "timeout" failure blocks before answering
	// 504 if the client waits that long; zero means 30 seconds.
	MaxBlock time.Duration
	// Institutions is how many institutions the catalogue lists; zero
	// means 45 (three pages at the default limit).
	Institutions int
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// HTTPClient sends webhooks and callbacks; nil means a client with a
	// 15 second timeout that follows no redirects.
	HTTPClient *http.Client
	// WebhookMaxAttempts bounds webhook delivery attempts; zero means 5.
	WebhookMaxAttempts int
	// WebhookBackoff is the wait after the first failed attempt, doubled
	// after each further one; zero means 1 second.
	WebhookBackoff time.Duration
	// Sleep waits between delivery attempts; nil means a context-aware
	// timer. Tests inject a recorder.
	Sleep func(ctx context.Context, d time.Duration) error
	// CallbackOrigin is the Origin header of callback beacons; "" means
	// http://localhost:3000, the integrator's front end in the demo.
	CallbackOrigin string
}

// Request is one API request the simulator answered, kept so that
// generated events can carry the request_id of a related call.
type Request struct {
	Env       tensfer.Environment
	RequestID string
	Method    string
	Path      string
	Status    int
	At        time.Time
}

// Simulator is an http.Handler that behaves like the Tensfer API for both
// environments, each under its own path prefix (/sandbox, /production),
// plus an emitter of signed webhooks and callback beacons. It is safe for
// concurrent use.
type Simulator struct {
	cfg          Config
	institutions []tensfer.Institution

	mu       sync.Mutex
	rng      *mrand.Rand
	payments map[tensfer.Environment]map[string]*tensfer.Payment
	sessions map[tensfer.Environment]map[string]*tensfer.Session
	idem     map[string]idemEntry
	recent   map[tensfer.Environment][]Request
	// failNext is the failure that Run's call (one in FailEvery) gets, its retries included:
	// requests to that environment with the call's method and path, while it is in flight.
	failNext map[tensfer.Environment]failure
}

// idemEntry is a stored answer to a POST with an Idempotency-Key.
type idemEntry struct {
	bodyHash [32]byte
	status   int
	body     []byte
}

const maxRecent = 200

// New returns a simulator with cfg's defaults filled in and a few
// seeded payments per environment (see docs/tensfer.md).
func New(cfg Config) *Simulator {
	if cfg.Keys == nil {
		cfg.Keys = DefaultKeys()
	}
	if cfg.AccountName == "" {
		cfg.AccountName = "Demo Company Ltd"
	}
	if cfg.FailureModes == nil {
		cfg.FailureModes = []string{"500", "503", "429"}
	}
	if cfg.MaxBlock <= 0 {
		cfg.MaxBlock = 30 * time.Second
	}
	if cfg.Institutions <= 0 {
		cfg.Institutions = 45
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{
			Timeout:       15 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if cfg.WebhookMaxAttempts <= 0 {
		cfg.WebhookMaxAttempts = 5
	}
	if cfg.WebhookBackoff <= 0 {
		cfg.WebhookBackoff = time.Second
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.CallbackOrigin == "" {
		cfg.CallbackOrigin = "http://localhost:3000"
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = mrand.Uint64()
	}
	s := &Simulator{
		cfg:          cfg,
		institutions: newInstitutions(cfg.Institutions),
		rng:          mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		payments:     map[tensfer.Environment]map[string]*tensfer.Payment{},
		sessions:     map[tensfer.Environment]map[string]*tensfer.Session{},
		idem:         map[string]idemEntry{},
		recent:       map[tensfer.Environment][]Request{},
		failNext:     map[tensfer.Environment]failure{},
	}
	for _, env := range tensfer.Environments() {
		s.payments[env] = seedPayments(env, cfg.Now())
		s.sessions[env] = map[string]*tensfer.Session{}
	}
	return s
}

// BaseURL returns the base URL of env on a simulator served at root,
// e.g. BaseURL("http://127.0.0.1:8081", tensfer.Sandbox) is
// "http://127.0.0.1:8081/sandbox".
func BaseURL(root string, env tensfer.Environment) string {
	return strings.TrimRight(root, "/") + "/" + string(env)
}

// RecentRequests returns the latest requests the simulator answered in
// env, oldest first (at most 200).
func (s *Simulator) RecentRequests(env tensfer.Environment) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.recent[env]...)
}

// endpoint is one route of the simulated API.
type endpoint struct {
	method string
	// keys are the key kinds the endpoint accepts.
	keys    []tensfer.KeyKind
	handler func(w http.ResponseWriter, r *http.Request, c *call)
}

// call is the per-request state handlers need.
type call struct {
	env       tensfer.Environment
	requestID string
	key       tensfer.KeyKind
	id        string // path parameter, if any
}

// route finds the endpoints of a path below the environment prefix.
func (s *Simulator) route(rest string) ([]endpoint, string) {
	all := []tensfer.KeyKind{tensfer.KeySecret, tensfer.KeyPublic, tensfer.KeyClientToken}
	secret := []tensfer.KeyKind{tensfer.KeySecret}
	switch {
	case rest == "/v1/credentials":
		return []endpoint{{http.MethodGet, all, s.credentials}}, ""
	case rest == "/v1/institutions":
		return []endpoint{{http.MethodGet, []tensfer.KeyKind{tensfer.KeySecret, tensfer.KeyPublic}, s.listInstitutions}}, ""
	case rest == "/v1/payments":
		return []endpoint{{http.MethodPost, secret, s.createPayment}}, ""
	case rest == "/v1/sessions":
		return []endpoint{{http.MethodPost, secret, s.createSession}}, ""
	}
	if id, ok := strings.CutPrefix(rest, "/v1/payments/"); ok && id != "" && !strings.Contains(id, "/") {
		return []endpoint{{http.MethodGet, secret, s.getPayment}}, id
	}
	if id, ok := strings.CutPrefix(rest, "/v1/sessions/"); ok && id != "" && !strings.Contains(id, "/") {
		return []endpoint{{http.MethodDelete, secret, s.revokeSession}}, id
	}
	return nil, ""
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ServeHTTP answers one API request: environment prefix, route, injected
// failure, key check, then the endpoint.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := s.newRequestID()
	w.Header().Set("X-Request-Id", rid)
	rec := &statusRecorder{ResponseWriter: w}
	prefix, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	rest = "/" + rest
	env, err := tensfer.ParseEnvironment(prefix)
	if err != nil {
		writeError(rec, http.StatusNotFound, rid, "unknown_environment",
			fmt.Sprintf("no Tensfer environment at /%s: base URLs end in /sandbox or /production", prefix))
		return
	}
	defer func() {
		status := rec.status
		if status == 0 {
			status = 499 // the handler gave up without answering (reset or client gone)
		}
		s.record(Request{Env: env, RequestID: rid, Method: r.Method, Path: rest, Status: status, At: s.cfg.Now()})
	}()
	eps, id := s.route(rest)
	if eps == nil {
		writeError(rec, http.StatusNotFound, rid, "route_not_found", fmt.Sprintf("no endpoint %s %s", r.Method, rest))
		return
	}
	var ep *endpoint
	for i := range eps {
		if eps[i].method == r.Method {
			ep = &eps[i]
		}
	}
	if ep == nil {
		rec.Header().Set("Allow", eps[0].method)
		writeError(rec, http.StatusMethodNotAllowed, rid, "method_not_allowed", fmt.Sprintf("%s %s is not supported; use %s", r.Method, rest, eps[0].method))
		return
	}
	if s.injectFailure(rec, r, rid, env, rest) {
		return
	}
	kind, ok := s.authenticate(rec, r, env, rid, ep.keys)
	if !ok {
		return
	}
	ep.handler(rec, r, &call{env: env, requestID: rid, key: kind, id: id})
}

// injectFailure applies X-Sim-Fail / sim_fail, a failure Run queued for env, or a FailureRate
// draw; it reports whether it answered the request.
func (s *Simulator) injectFailure(w http.ResponseWriter, r *http.Request, rid string, env tensfer.Environment, path string) bool {
	mode := r.Header.Get("X-Sim-Fail")
	if mode == "" {
		mode = r.URL.Query().Get("sim_fail")
	}
	if mode == "" {
		s.mu.Lock()
		if f, ok := s.failNext[env]; ok && f.method == r.Method && f.path == path {
			mode = f.mode
		}
		if mode == "" && s.cfg.FailureRate > 0 && len(s.cfg.FailureModes) > 0 && s.rng.Float64() < s.cfg.FailureRate {
			mode = s.cfg.FailureModes[s.rng.IntN(len(s.cfg.FailureModes))]
		}
		s.mu.Unlock()
	}
	switch mode = strings.TrimSpace(strings.ToLower(mode)); mode {
	case "":
		return false
	case FailTimeout:
		t := time.NewTimer(s.cfg.MaxBlock)
		defer t.Stop()
		select {
		case <-r.Context().Done():
		case <-t.C:
			writeError(w, http.StatusGatewayTimeout, rid, "gateway_timeout", "injected failure: no answer within "+s.cfg.MaxBlock.String())
		}
		return true
	case FailReset:
		panic(http.ErrAbortHandler) // net/http drops the connection without logging
	}
	status, err := strconv.Atoi(mode)
	code, message, ok := injectedFailure(status)
	if err != nil || !ok {
		writeError(w, http.StatusBadRequest, rid, "invalid_sim_fail",
			fmt.Sprintf("X-Sim-Fail %q is not one of 400, 401, 403, 404, 409, 429, 500, 502, 503, 504, timeout, reset", mode))
		return true
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeError(w, status, rid, code, message)
	return true
}

// authenticate checks the bearer key against env and the endpoint's key
// kinds, answering 401/403 itself when it fails.
func (s *Simulator) authenticate(w http.ResponseWriter, r *http.Request, env tensfer.Environment, rid string, allowed []tensfer.KeyKind) (tensfer.KeyKind, bool) {
	auth := r.Header.Get("Authorization")
	scheme, key, _ := strings.Cut(auth, " ")
	key = strings.TrimSpace(key)
	if auth == "" || !strings.EqualFold(scheme, "Bearer") || key == "" {
		writeError(w, http.StatusUnauthorized, rid, tensfer.CodeInvalidAPIKey, "no API key: send Authorization: Bearer <key>")
		return "", false
	}
	kind := s.keyKind(env, key)
	if kind == "" {
		if other := s.keyKind(env.Other(), key); other != "" {
			writeError(w, http.StatusUnauthorized, rid, tensfer.CodeEnvironmentMismatch,
				fmt.Sprintf("this is a %s %s but this is the %s API: use the %s key, or the %s base URL",
					env.Other(), strings.ReplaceAll(string(other), "_", " "), env, env, env.Other()))
			return "", false
		}
		writeError(w, http.StatusUnauthorized, rid, tensfer.CodeInvalidAPIKey,
			fmt.Sprintf("the API key ending in %q is not a valid %s key", last4(key), env))
		return "", false
	}
	for _, k := range allowed {
		if k == kind {
			return kind, true
		}
	}
	writeError(w, http.StatusForbidden, rid, "key_not_allowed",
		fmt.Sprintf("this endpoint needs the %s; the %s cannot call it", strings.ReplaceAll(string(allowed[0]), "_", " "), strings.ReplaceAll(string(kind), "_", " ")))
	return "", false
}

// keyKind returns which key of env key is, or "".
func (s *Simulator) keyKind(env tensfer.Environment, key string) tensfer.KeyKind {
	for kind, k := range s.cfg.Keys[env].byKind() {
		if k != "" && k == key {
			return kind
		}
	}
	return ""
}

func (s *Simulator) credentials(w http.ResponseWriter, _ *http.Request, c *call) {
	key := s.cfg.Keys[c.env].byKind()[c.key]
	writeJSON(w, http.StatusOK, tensfer.Credentials{
		Environment: c.env,
		KeyKind:     c.key,
		AccountID:   "acct_sim_" + string(c.env),
		AccountName: s.cfg.AccountName,
		KeyLast4:    last4(key),
		Livemode:    c.env == tensfer.Production,
		RequestID:   c.requestID,
	})
}

// Page sizes of the simulated lists.
const (
	defaultLimit = 20
	maxLimit     = 100
)

func (s *Simulator) listInstitutions(w http.ResponseWriter, r *http.Request, c *call) {
	q := r.URL.Query()
	limit := defaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			writeError(w, http.StatusBadRequest, c.requestID, "invalid_request", fmt.Sprintf("limit must be an integer from 1 to %d", maxLimit))
			return
		}
		limit = n
	}
	offset := 0
	if v := q.Get("cursor"); v != "" {
		n, ok := decodeCursor(v)
		if !ok || n > len(s.institutions) {
			writeError(w, http.StatusBadRequest, c.requestID, "invalid_cursor", "cursor is not one this API returned")
			return
		}
		offset = n
	}
	end := min(offset+limit, len(s.institutions))
	page := tensfer.Page[tensfer.Institution]{Data: s.institutions[offset:end], HasMore: end < len(s.institutions), RequestID: c.requestID}
	if page.HasMore {
		cur := encodeCursor(end)
		page.NextCursor = &cur
	}
	if page.Data == nil {
		page.Data = []tensfer.Institution{}
	}
	writeJSON(w, http.StatusOK, page)
}

func encodeCursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("ins:" + strconv.Itoa(offset)))
}

func decodeCursor(c string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	v, ok := strings.CutPrefix(string(b), "ins:")
	n, err := strconv.Atoi(v)
	return n, ok && err == nil && n >= 0
}

func (s *Simulator) getPayment(w http.ResponseWriter, _ *http.Request, c *call) {
	s.mu.Lock()
	p, ok := s.payments[c.env][c.id]
	var out tensfer.Payment
	if ok {
		out = *p
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, c.requestID, "payment_not_found", fmt.Sprintf("no payment %q in %s", c.id, c.env))
		return
	}
	out.RequestID = c.requestID
	writeJSON(w, http.StatusOK, out)
}

// readBody reads a JSON request body (at most 64 KiB) into v, answering
// 400 itself when it cannot. It returns the raw bytes.
func readBody(w http.ResponseWriter, r *http.Request, rid string, v any) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		writeError(w, http.StatusBadRequest, rid, "invalid_json", "request body is unreadable or over 64 KiB")
		return nil, false
	}
	if err := json.Unmarshal(body, v); err != nil {
		writeError(w, http.StatusBadRequest, rid, "invalid_json", "request body is not valid JSON: "+strings.TrimPrefix(err.Error(), "json: "))
		return nil, false
	}
	return body, true
}

// idempotent replays the stored answer for r's Idempotency-Key, or answers
// 409 when the key was used with another body. It reports whether it
// answered; store must be called with the fresh answer otherwise.
func (s *Simulator) idempotent(w http.ResponseWriter, r *http.Request, c *call, body []byte) (handled bool, store func(status int, resp []byte)) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return false, func(int, []byte) {}
	}
	full := string(c.env) + " " + r.URL.Path + " " + key
	h := sha256.Sum256(body)
	s.mu.Lock()
	prev, ok := s.idem[full]
	s.mu.Unlock()
	switch {
	case ok && prev.bodyHash != h:
		writeError(w, http.StatusConflict, c.requestID, "idempotency_conflict", "this Idempotency-Key was already used with a different request body")
		return true, nil
	case ok:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(prev.status)
		_, _ = w.Write(prev.body)
		return true, nil
	}
	return false, func(status int, resp []byte) {
		s.mu.Lock()
		s.idem[full] = idemEntry{bodyHash: h, status: status, body: resp}
		s.mu.Unlock()
	}
}

func (s *Simulator) createPayment(w http.ResponseWriter, r *http.Request, c *call) {
	var in tensfer.PaymentParams
	body, ok := readBody(w, r, c.requestID, &in)
	if !ok {
		return
	}
	done, store := s.idempotent(w, r, c, body)
	if done {
		return
	}
	switch {
	case in.Amount <= 0 || in.Amount > 100_000_000:
		writeError(w, http.StatusBadRequest, c.requestID, "invalid_request", "amount must be a positive integer in minor units, at most 100000000")
		return
	case len(in.Currency) != 3 || strings.ToUpper(in.Currency) != in.Currency:
		writeError(w, http.StatusBadRequest, c.requestID, "invalid_request", "currency must be a three-letter upper-case ISO 4217 code such as GBP")
		return
	case in.UserID == "":
		writeError(w, http.StatusBadRequest, c.requestID, "invalid_request", "user_id is required")
		return
	}
	p := tensfer.Payment{
		ID:                "pay_" + s.randHex(12),
		Status:            tensfer.PaymentPending,
		Amount:            in.Amount,
		Currency:          in.Currency,
		UserID:            in.UserID,
		Description:       in.Description,
		Metadata:          in.Metadata,
		CreatedAt:         s.cfg.Now().UTC().Truncate(time.Second),
		CancelledAt:       tensfer.Null[time.Time](),
		FailureReason:     tensfer.Null[string](),
		CreationRequestID: c.requestID,
	}
	s.mu.Lock()
	stored := p
	s.payments[c.env][p.ID] = &stored
	s.mu.Unlock()
	p.RequestID = c.requestID
	store(http.StatusCreated, writeJSON(w, http.StatusCreated, p))
}

func (s *Simulator) createSession(w http.ResponseWriter, r *http.Request, c *call) {
	var in tensfer.SessionParams
	body, ok := readBody(w, r, c.requestID, &in)
	if !ok {
		return
	}
	done, store := s.idempotent(w, r, c, body)
	if done {
		return
	}
	if in.UserID == "" {
		writeError(w, http.StatusBadRequest, c.requestID, "invalid_request", "user_id is required")
		return
	}
	if in.RedirectURI != "" {
		if u, err := url.Parse(in.RedirectURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			writeError(w, http.StatusBadRequest, c.requestID, "invalid_request", "redirect_uri must be an absolute http(s) URL")
			return
		}
	}
	id := "sess_" + s.randHex(12)
	sess := tensfer.Session{
		ID:        id,
		UserID:    in.UserID,
		URL:       "https://link.tensfer.example/s/" + id + "?env=" + string(c.env),
		ExpiresAt: s.cfg.Now().UTC().Add(30 * time.Minute).Truncate(time.Second),
		RequestID: c.requestID,
	}
	s.mu.Lock()
	stored := sess
	s.sessions[c.env][id] = &stored
	s.mu.Unlock()
	store(http.StatusCreated, writeJSON(w, http.StatusCreated, sess))
}

func (s *Simulator) revokeSession(w http.ResponseWriter, _ *http.Request, c *call) {
	s.mu.Lock()
	_, ok := s.sessions[c.env][c.id]
	delete(s.sessions[c.env], c.id)
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, c.requestID, "session_not_found", fmt.Sprintf("no active session %q in %s", c.id, c.env))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// record remembers a request for event linking, keeping the latest ones.
func (s *Simulator) record(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := append(s.recent[r.Env], r)
	if len(l) > maxRecent {
		l = append([]Request(nil), l[len(l)-maxRecent:]...)
	}
	s.recent[r.Env] = l
}

// newRequestID returns a fresh request id such as req_3f9c0b1e2d4a5c6b7e8f9a0b.
func (s *Simulator) newRequestID() string { return "req_" + s.randHex(12) }

// randHex returns n bytes from the seeded generator, hex-encoded.
func (s *Simulator) randHex(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return randHexFrom(s.rng, n)
}

func randHexFrom(r *mrand.Rand, n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 2*n)
	for i := range b {
		b[i] = digits[r.IntN(16)]
	}
	return string(b)
}

// writeJSON writes v as the JSON answer and returns the bytes written.
func writeJSON(w http.ResponseWriter, status int, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"error":{"code":"internal_error","message":"encode response"}}`)
		status = http.StatusInternalServerError
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return b
}

// writeError writes the documented error body.
func writeError(w http.ResponseWriter, status int, rid, code, message string) {
	type detail struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	}
	writeJSON(w, status, struct {
		Error detail `json:"error"`
	}{detail{code, message, rid}})
}

// last4 returns the last four characters of a key for messages.
func last4(key string) string {
	if len(key) <= 4 {
		return key
	}
	return key[len(key)-4:]
}

// newInstitutions builds a deterministic catalogue of n institutions. A
// few have no logo (null) and one reports a status the client does not
// know, as a real catalogue eventually will.
func newInstitutions(n int) []tensfer.Institution {
	names := []string{"Northwind Bank", "Harbor Savings", "Crescent Credit Union", "Summit Trust", "Meridian Bank",
		"Bluebell Building Society", "Granite Financial", "Lakeside Bank", "Orchard Mutual", "Pioneer Bank",
		"Riverstone Bank", "Silverline", "Thistle Bank", "Union Square Bank", "Westgate Bank"}
	countries := []string{"GB", "IE", "FR", "DE", "ES", "NL"}
	out := make([]tensfer.Institution, n)
	for i := range out {
		id := fmt.Sprintf("ins_%03d", i+1)
		status := tensfer.InstitutionHealthy
		switch {
		case i%11 == 4:
			status = tensfer.InstitutionDegraded
		case i%17 == 9:
			status = tensfer.InstitutionDown
		case i == 7:
			status = "scheduled_maintenance"
		}
		var logo *string
		if i%5 != 3 {
			l := "https://cdn.tensfer.example/logos/" + id + ".png"
			logo = &l
		}
		products := []string{"payments", "identity"}
		if i%3 == 2 {
			products = []string{"payments"}
		}
		out[i] = tensfer.Institution{
			ID:       id,
			Name:     fmt.Sprintf("%s %s", names[i%len(names)], countries[i%len(countries)]),
			Country:  countries[i%len(countries)],
			Products: products,
			Status:   status,
			LogoURL:  logo,
		}
	}
	return out
}

// seedPayments returns the payments every environment starts with: one
// pending with null fields, one completed, and one "legacy" payment whose
// cancelled_at and failure_reason are absent rather than null.
func seedPayments(env tensfer.Environment, now time.Time) map[string]*tensfer.Payment {
	created := now.UTC().Add(-time.Hour).Truncate(time.Second)
	completed := created.Add(2 * time.Minute)
	desc := "Invoice 1042"
	return map[string]*tensfer.Payment{
		"pay_demo_pending": {
			ID: "pay_demo_pending", Status: tensfer.PaymentPending, Amount: 1250, Currency: "GBP", UserID: "usr_0001",
			CreatedAt: created, CancelledAt: tensfer.Null[time.Time](), FailureReason: tensfer.Null[string](),
		},
		"pay_demo_completed": {
			ID: "pay_demo_completed", Status: tensfer.PaymentCompleted, Amount: 9900, Currency: "EUR", UserID: "usr_0002",
			Description: &desc, Metadata: map[string]string{"order": "1042", "env": string(env)},
			CreatedAt: created, CompletedAt: &completed, CancelledAt: tensfer.Null[time.Time](), FailureReason: tensfer.Null[string](),
		},
		"pay_demo_legacy": {
			ID: "pay_demo_legacy", Status: tensfer.PaymentCompleted, Amount: 500, Currency: "GBP", UserID: "usr_0003",
			CreatedAt: created, CompletedAt: &completed,
		},
	}
}
