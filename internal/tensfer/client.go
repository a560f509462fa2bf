package tensfer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Environment is a Tensfer environment. Each has its own keys and base URL.
type Environment string

// The two Tensfer environments.
const (
	Sandbox    Environment = "sandbox"
	Production Environment = "production"
)

// Environments returns both environments, sandbox first.
func Environments() []Environment { return []Environment{Sandbox, Production} }

// ParseEnvironment validates an environment name from outside input
// (a URL segment, a flag, a JSON field).
func ParseEnvironment(s string) (Environment, error) {
	switch e := Environment(s); e {
	case Sandbox, Production:
		return e, nil
	}
	return "", fmt.Errorf("unknown environment %q: want sandbox or production", s)
}

// Valid reports whether e is sandbox or production.
func (e Environment) Valid() bool { return e == Sandbox || e == Production }

// Other returns the other environment, so messages can say "this is a
// sandbox key used against production".
func (e Environment) Other() Environment {
	if e == Production {
		return Sandbox
	}
	return Production
}

// KeyKind names one of the three credentials Tensfer issues per
// environment. Each endpoint says which one it expects.
type KeyKind string

// The key kinds. The values are the JSON field names used across the
// dashboard's API.
const (
	// KeySecret authenticates server-to-server calls; never leaves the server.
	KeySecret KeyKind = "secret_key"
	// KeyPublic identifies the integrator in browser and mobile code.
	KeyPublic KeyKind = "public_key"
	// KeyClientToken initialises Tensfer's front-end SDK.
	KeyClientToken KeyKind = "client_token"
)

// Valid reports whether k is one of the three key kinds.
func (k KeyKind) Valid() bool { return k == KeySecret || k == KeyPublic || k == KeyClientToken }

// Client defaults; see Config.
const (
	DefaultTimeout       = 10 * time.Second
	DefaultMaxRetries    = 2
	DefaultBackoffBase   = 250 * time.Millisecond
	DefaultBackoffMax    = 5 * time.Second
	DefaultMaxRetryAfter = 30 * time.Second
	// MaxResponseBytes bounds how much of a response body the client reads.
	MaxResponseBytes = 8 << 20
)

// Config configures a Client for one environment.
type Config struct {
	Env Environment
	// BaseURL is the environment's API root, e.g. https://sandbox.tensfer.example
	// or, against the simulator, http://127.0.0.1:8081/sandbox. It must be an
	// absolute http(s) URL without query, fragment or user info.
	BaseURL string
	// The environment's keys. Any may be empty; a call that needs a missing
	// key fails with KindMissingKey without being sent.
	ClientToken, PublicKey, SecretKey string
	// HTTPClient sends the requests; nil means a plain client that follows
	// no redirects (a redirect is reported as KindUnexpected naming the
	// Location, since it means the base URL is wrong). Use safehttp.NewClient
	// (internal/safehttp) when the base URL is user-configured.
	HTTPClient *http.Client
	// Timeout bounds each attempt, from sending to reading the whole body.
	// Zero means DefaultTimeout; negative means no per-attempt timeout. The
	// caller's context bounds the whole call including retries.
	Timeout time.Duration
	// MaxRetries is how many times a retryable failure is retried. Zero means
	// DefaultMaxRetries; negative disables retries.
	MaxRetries int
	// BackoffBase and BackoffMax shape the exponential backoff with full
	// jitter: attempt n waits a random time in [0, min(BackoffMax,
	// BackoffBase*2^(n-1))]. Zero means the defaults.
	BackoffBase, BackoffMax time.Duration
	// MaxRetryAfter caps how long a Retry-After header may make the client
	// wait. Zero means DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration
	// Sleep waits between attempts; nil means a timer that stops early when
	// ctx is done. Tests inject a recorder so they never wait in real time.
	Sleep func(ctx context.Context, d time.Duration) error
	// Observer, if set, is called once per logical call (after the last
	// attempt) with what happened, so every call can be logged with its
	// request_id. It runs on the caller's goroutine and must not block.
	Observer func(context.Context, Call)
	// UserAgent overrides the User-Agent header.
	UserAgent string
}

// Call describes one logical API call for the Observer: one Call per
// method invocation, however many attempts it took.
type Call struct {
	Env    Environment
	Method string
	// Path is the API path relative to the base URL, without the query.
	Path string
	// Status is the HTTP status of the last attempt (0 if none answered).
	Status   int
	Duration time.Duration
	// RequestID is the last attempt's request id (header or error body).
	RequestID    string
	ErrorCode    string
	ErrorMessage string
	// Err is the *Error the call returned, or nil.
	Err error
	// Attempts is how many HTTP requests were sent (0 if none was).
	Attempts int
}

// Request is one API request for Client.Do. The typed methods (Payment,
// Institutions, ...) build these; Do is exported for endpoints the client
// does not wrap yet.
type Request struct {
	Method string
	// Path is relative to the base URL and starts with "/"; path segments
	// taken from input must be escaped with url.PathEscape.
	Path  string
	Query url.Values
	// Body, if non-nil, is sent as JSON.
	Body any
	// Key is the key kind to authenticate with; "" means KeySecret.
	Key KeyKind
	// IdempotencyKey is sent as the Idempotency-Key header. A POST or PATCH
	// is retried only when it has one; the typed methods that create things
	// generate one.
	IdempotencyKey string
	// Header holds extra headers, e.g. for the simulator's X-Sim-Fail.
	Header http.Header
}

// Response is what Do reports about a successful answer.
type Response struct {
	Status    int
	RequestID string
	Header    http.Header
}

// Client calls the Tensfer API of one environment. It is safe for
// concurrent use.
type Client struct {
	env           Environment
	base          string
	keys          map[KeyKind]string
	hc            *http.Client
	timeout       time.Duration
	maxRetries    int
	backoffBase   time.Duration
	backoffMax    time.Duration
	maxRetryAfter time.Duration
	sleep         func(context.Context, time.Duration) error
	observer      func(context.Context, Call)
	userAgent     string
}

// New validates cfg and returns a client for its environment.
func New(cfg Config) (*Client, error) {
	if !cfg.Env.Valid() {
		return nil, fmt.Errorf("tensfer: unknown environment %q: want sandbox or production", cfg.Env)
	}
	base, err := ValidateBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("tensfer: %w", err)
	}
	c := &Client{
		env:  cfg.Env,
		base: base,
		keys: map[KeyKind]string{
			KeySecret:      cfg.SecretKey,
			KeyPublic:      cfg.PublicKey,
			KeyClientToken: cfg.ClientToken,
		},
		hc:            cfg.HTTPClient,
		timeout:       cfg.Timeout,
		maxRetries:    cfg.MaxRetries,
		backoffBase:   cfg.BackoffBase,
		backoffMax:    cfg.BackoffMax,
		maxRetryAfter: cfg.MaxRetryAfter,
		sleep:         cfg.Sleep,
		observer:      cfg.Observer,
		userAgent:     cfg.UserAgent,
	}
	if c.hc == nil {
		c.hc = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxRetries == 0 {
		c.maxRetries = DefaultMaxRetries
	} else if c.maxRetries < 0 {
		c.maxRetries = 0
	}
	if c.backoffBase <= 0 {
		c.backoffBase = DefaultBackoffBase
	}
	if c.backoffMax <= 0 {
		c.backoffMax = DefaultBackoffMax
	}
	if c.maxRetryAfter <= 0 {
		c.maxRetryAfter = DefaultMaxRetryAfter
	}
	if c.sleep == nil {
		c.sleep = sleepContext
	}
	if c.userAgent == "" {
		c.userAgent = "tensfer-golive-dashboard"
	}
	return c, nil
}

// ValidateBaseURL checks that s can serve as a Tensfer base URL and returns
// it without a trailing slash. It is exported so configuration forms can
// give the same answer as New.
func ValidateBaseURL(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", errors.New("base URL is required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("base URL %q is not a valid URL", s)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("base URL %q must start with https:// (or http:// for a local simulator)", s)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("base URL %q has no host", s)
	case u.User != nil:
		return "", fmt.Errorf("base URL %q must not contain user info", s)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("base URL %q must not have a query or fragment", s)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// Env returns the client's environment.
func (c *Client) Env() Environment { return c.env }

// BaseURL returns the validated base URL, without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// Do sends r, retrying where safe, decodes a 2xx JSON body into out (if
// out is non-nil and the body is not empty) and reports the call to the
// Observer. Every error it returns is a *Error.
func (c *Client) Do(ctx context.Context, r Request, out any) (Response, error) {
	start := time.Now()
	if r.Key == "" {
		r.Key = KeySecret
	}
	resp, attempts, e := c.do(ctx, r, out)
	call := Call{
		Env:       c.env,
		Method:    r.Method,
		Path:      r.Path,
		Status:    resp.Status,
		Duration:  time.Since(start),
		RequestID: resp.RequestID,
		Attempts:  attempts,
	}
	if e != nil {
		e.Env, e.Method, e.Path = c.env, r.Method, r.Path
		call.Status, call.RequestID = e.Status, e.RequestID
		call.ErrorCode, call.ErrorMessage, call.Err = e.Code, e.Message, e
	}
	if c.observer != nil {
		c.observer(ctx, call)
	}
	if e != nil {
		return resp, e
	}
	return resp, nil
}

// do runs the attempt loop and returns the last response, the number of
// attempts sent and the final error.
func (c *Client) do(ctx context.Context, r Request, out any) (Response, int, *Error) {
	key := c.keys[r.Key]
	if key == "" {
		return Response{}, 0, &Error{
			Kind:    KindMissingKey,
			Code:    CodeMissingKey,
			Message: fmt.Sprintf("no %s configured for the %s environment", strings.ReplaceAll(string(r.Key), "_", " "), c.env),
		}
	}
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = json.Marshal(r.Body); err != nil {
			return Response{}, 0, &Error{Kind: KindInvalidRequest, Code: "invalid_request_body", Message: "encode request body: " + err.Error(), Err: err}
		}
	}
	u := c.base + r.Path
	if len(r.Query) > 0 {
		u += "?" + r.Query.Encode()
	}
	for attempt := 1; ; attempt++ {
		resp, e := c.attempt(ctx, r, u, key, body, out)
		if e == nil {
			return resp, attempt, nil
		}
		if attempt > c.maxRetries || !c.retryable(ctx, r, e) {
			return resp, attempt, e
		}
		wait := c.backoff(attempt, e.RetryAfter)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return resp, attempt, e // waiting would outlive the caller
		}
		if err := c.sleep(ctx, wait); err != nil {
			return resp, attempt, e
		}
	}
}

// attempt sends one HTTP request and interprets its answer.
func (c *Client) attempt(ctx context.Context, r Request, u, key string, body []byte, out any) (Response, *Error) {
	actx, cancel := ctx, context.CancelFunc(func() {})
	if c.timeout > 0 {
		actx, cancel = context.WithTimeout(ctx, c.timeout)
	}
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, r.Method, u, rd)
	if err != nil {
		return Response{}, &Error{Kind: KindInvalidRequest, Code: "invalid_request", Message: err.Error(), Err: err}
	}
	for k, vs := range r.Header {
		req.Header[k] = vs
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.IdempotencyKey != "" {
		req.Header.Set("Idempotency-Key", r.IdempotencyKey)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return Response{}, c.transportError(ctx, actx, err)
	}
	defer res.Body.Close()
	resp := Response{Status: res.StatusCode, RequestID: requestIDFromHeader(res.Header), Header: res.Header}
	data, err := io.ReadAll(http.MaxBytesReader(nil, res.Body, MaxResponseBytes))
	if err != nil {
		// NB: any bound on the body fails with an *http.MaxBytesError: this
		// one, and the SSRF-safe transport's when HTTPClient is that client.
		if tooLarge, ok := errors.AsType[*http.MaxBytesError](err); ok {
			msg := fmt.Sprintf("response body too large: over %d bytes", tooLarge.Limit)
			return resp, &Error{Kind: KindDecode, Status: res.StatusCode, Code: CodeDecode, Message: msg, RequestID: resp.RequestID, Err: err}
		}
		e := c.transportError(ctx, actx, err)
		e.Status, e.RequestID = res.StatusCode, resp.RequestID
		return resp, e
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		e := errorFromResponse(res.StatusCode, res.Header, data)
		if loc := res.Header.Get("Location"); res.StatusCode >= 300 && res.StatusCode <= 399 && loc != "" {
			e.Message = "redirected to " + loc + ": set the base URL to the final address"
		}
		e.RetryAfter = ParseRetryAfter(res.Header.Get("Retry-After"), time.Now())
		return resp, e
	}
	if out == nil || res.StatusCode == http.StatusNoContent || len(bytes.TrimSpace(data)) == 0 {
		return resp, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp, &Error{Kind: KindDecode, Status: res.StatusCode, Code: CodeDecode, Message: "decode response: " + err.Error(), RequestID: resp.RequestID, Err: err}
	}
	return resp, nil
}

// transportError classifies a failure that produced no usable response.
func (c *Client) transportError(ctx, actx context.Context, err error) *Error {
	cause := err
	if ue, ok := errors.AsType[*url.Error](err); ok {
		cause = ue.Err
	}
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return &Error{Kind: KindCanceled, Code: CodeCanceled, Message: "call canceled", Err: err}
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &Error{Kind: KindTimeout, Code: CodeTimeout, Message: "caller's deadline passed before a response arrived", Err: err}
	case errors.Is(actx.Err(), context.DeadlineExceeded):
		return &Error{Kind: KindTimeout, Code: CodeTimeout, Message: fmt.Sprintf("no response within %s", c.timeout), Err: err}
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return &Error{Kind: KindTimeout, Code: CodeTimeout, Message: cause.Error(), Err: err}
	}
	return &Error{Kind: KindUnreachable, Code: CodeUnreachable, Message: cause.Error(), Err: err}
}

// retryable reports whether e may be retried for r: only transient
// failures, only for methods where a repeat is harmless, and never after
// the caller gave up.
func (c *Client) retryable(ctx context.Context, r Request, e *Error) bool {
	if ctx.Err() != nil {
		return false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
	case http.MethodPost, http.MethodPatch:
		if r.IdempotencyKey == "" {
			return false
		}
	default:
		return false
	}
	switch e.Kind {
	case KindTimeout, KindUnreachable, KindRateLimited:
		return true
	case KindServer:
		return e.Status != http.StatusNotImplemented
	}
	return false
}

// backoff returns the wait before attempt n+1: the server's Retry-After
// (capped) if it gave one, else full-jitter exponential backoff.
func (c *Client) backoff(n int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, c.maxRetryAfter)
	}
	ceil := c.backoffMax
	if n-1 < 30 {
		ceil = min(c.backoffMax, c.backoffBase<<(n-1))
	}
	return time.Duration(mrand.Int64N(int64(ceil) + 1))
}

// ParseRetryAfter reads a Retry-After value, either delay-seconds or an
// HTTP date; it returns 0 when absent, invalid or in the past.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// sleepContext waits for d or until ctx is done.
func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// NewIdempotencyKey returns a random key for the Idempotency-Key header.
func NewIdempotencyKey() string { return "idem_" + randomHex(16) }

// randomHex returns n random bytes, hex-encoded.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
