package tensfer

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Credentials is what Tensfer says about the key a call used: the answer
// behind the dashboard's "Verify" button.
type Credentials struct {
	Environment Environment `json:"environment"`
	KeyKind     KeyKind     `json:"key_kind"`
	AccountID   string      `json:"account_id"`
	AccountName string      `json:"account_name"`
	// KeyLast4 is the last four characters of the key the server saw.
	KeyLast4  string `json:"key_last4"`
	Livemode  bool   `json:"livemode"`
	RequestID string `json:"request_id"`
}

// CheckCredentials verifies the secret key against the base URL; see
// CheckKey.
func (c *Client) CheckCredentials(ctx context.Context) (Credentials, error) {
	return c.CheckKey(ctx, KeySecret)
}

// CheckKey asks Tensfer (GET /v1/credentials) which environment, account
// and key kind it sees for the key of the given kind. Besides the server's
// own environment_mismatch answer, it reports KindEnvironmentMismatch when
// the server answers for the other environment than the client was built
// for (e.g. a production client whose base URL and keys are both
// sandbox's); the returned Credentials are filled in either way.
func (c *Client) CheckKey(ctx context.Context, kind KeyKind) (Credentials, error) {
	if !kind.Valid() {
		return Credentials{}, fmt.Errorf("tensfer: unknown key kind %q", kind)
	}
	var cr Credentials
	resp, err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/credentials", Key: kind}, &cr)
	if cr.RequestID == "" {
		cr.RequestID = resp.RequestID
	}
	if err != nil {
		return cr, err
	}
	if cr.Environment != c.env {
		return cr, &Error{
			Kind: KindEnvironmentMismatch, Env: c.env, Method: http.MethodGet, Path: "/v1/credentials",
			Status: resp.Status, Code: CodeEnvironmentMismatch, RequestID: cr.RequestID,
			Message: fmt.Sprintf("%s answered as the %q environment but this client is configured for %s", c.base, cr.Environment, c.env),
		}
	}
	return cr, nil
}

// InstitutionStatus is an institution's connection health. Values the
// client does not know are kept as sent.
type InstitutionStatus string

// Known institution statuses.
const (
	InstitutionHealthy  InstitutionStatus = "healthy"
	InstitutionDegraded InstitutionStatus = "degraded"
	InstitutionDown     InstitutionStatus = "down"
)

// Known reports whether s is one of the statuses this client knows.
func (s InstitutionStatus) Known() bool {
	return s == InstitutionHealthy || s == InstitutionDegraded || s == InstitutionDown
}

// Institution is a bank users can connect through Tensfer.
type Institution struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Country  string            `json:"country"`
	Products []string          `json:"products"`
	Status   InstitutionStatus `json:"status"`
	// LogoURL is nil when Tensfer has no logo (null).
	LogoURL *string `json:"logo_url"`
}

// Institutions iterates over every institution (GET /v1/institutions),
// following cursors page by page; p.Limit sets the page size. It uses the
// public key, which is enough for this read-only catalogue. A failure is
// yielded once, as the last element.
func (c *Client) Institutions(ctx context.Context, p ListParams) iter.Seq2[Institution, error] {
	return paginate[Institution](ctx, c, "/v1/institutions", KeyPublic, p)
}

// InstitutionsPage fetches one page, for callers that page by hand.
func (c *Client) InstitutionsPage(ctx context.Context, p ListParams) (Page[Institution], error) {
	return getPage[Institution](ctx, c, "/v1/institutions", KeyPublic, p)
}

// PaymentStatus is a payment's state. Values the client does not know are
// kept as sent.
type PaymentStatus string

// Known payment statuses.
const (
	PaymentPending   PaymentStatus = "pending"
	PaymentCompleted PaymentStatus = "completed"
	PaymentCancelled PaymentStatus = "cancelled"
	PaymentFailed    PaymentStatus = "failed"
)

// Known reports whether s is one of the statuses this client knows.
func (s PaymentStatus) Known() bool {
	switch s {
	case PaymentPending, PaymentCompleted, PaymentCancelled, PaymentFailed:
		return true
	}
	return false
}

// Payment is a pay-by-bank payment. Nullable fields are pointers when
// absent and null mean the same, Optional when they do not.
type Payment struct {
	ID     string        `json:"id"`
	Status PaymentStatus `json:"status"`
	// Amount is in minor units (pence, cents).
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	UserID   string `json:"user_id"`
	// Description is nil when the payer gave none.
	Description *string `json:"description"`
	// Metadata is nil when null.
	Metadata    map[string]string `json:"metadata"`
	CreatedAt   time.Time         `json:"created_at"`
	CompletedAt *time.Time        `json:"completed_at"`
	// CancelledAt is null while the payment is not cancelled and absent
	// when the server does not report cancellations for it.
	CancelledAt Optional[time.Time] `json:"cancelled_at,omitzero"`
	// FailureReason is null when the payment did not fail and absent when
	// the server does not report a reason.
	FailureReason Optional[string] `json:"failure_reason,omitzero"`
	// CreationRequestID is the request id of the call that created the
	// payment, so webhooks about it can be traced back to that call.
	CreationRequestID string `json:"creation_request_id,omitempty"`
	// RequestID is the request id of the response this value came from.
	RequestID string `json:"request_id"`
}

// Payment fetches one payment (GET /v1/payments/{id}) with the secret key.
func (c *Client) Payment(ctx context.Context, id string) (Payment, error) {
	if err := checkID("payment id", id); err != nil {
		return Payment{}, err
	}
	var p Payment
	resp, err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/payments/" + url.PathEscape(id)}, &p)
	if p.RequestID == "" {
		p.RequestID = resp.RequestID
	}
	return p, err
}

// PaymentParams creates a payment.
type PaymentParams struct {
	Amount      int64             `json:"amount"`
	Currency    string            `json:"currency"`
	UserID      string            `json:"user_id"`
	Description *string           `json:"description,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	// IdempotencyKey makes the create safe to retry; "" generates one.
	IdempotencyKey string `json:"-"`
}

// CreatePayment creates a payment (POST /v1/payments) with the secret key.
// It always sends an Idempotency-Key, so it is retried like a GET.
func (c *Client) CreatePayment(ctx context.Context, p PaymentParams) (Payment, error) {
	if p.IdempotencyKey == "" {
		p.IdempotencyKey = NewIdempotencyKey()
	}
	var out Payment
	resp, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/payments", Body: p, IdempotencyKey: p.IdempotencyKey}, &out)
	if out.RequestID == "" {
		out.RequestID = resp.RequestID
	}
	return out, err
}

// SessionParams starts a Tensfer link session for one user.
type SessionParams struct {
	UserID      string `json:"user_id"`
	RedirectURI string `json:"redirect_uri,omitempty"`
	// IdempotencyKey makes the create safe to retry; "" generates one.
	IdempotencyKey string `json:"-"`
}

// Session is a link session: the front end opens URL, and Tensfer later
// sends callbacks and webhooks naming the session.
type Session struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
	RequestID string    `json:"request_id"`
}

// CreateSession starts a link session (POST /v1/sessions) with the secret
// key and an idempotency key.
func (c *Client) CreateSession(ctx context.Context, p SessionParams) (Session, error) {
	if p.IdempotencyKey == "" {
		p.IdempotencyKey = NewIdempotencyKey()
	}
	var out Session
	resp, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/v1/sessions", Body: p, IdempotencyKey: p.IdempotencyKey}, &out)
	if out.RequestID == "" {
		out.RequestID = resp.RequestID
	}
	return out, err
}

// RevokeSession ends a link session (DELETE /v1/sessions/{id}); Tensfer
// answers 204 No Content.
func (c *Client) RevokeSession(ctx context.Context, id string) error {
	if err := checkID("session id", id); err != nil {
		return err
	}
	_, err := c.Do(ctx, Request{Method: http.MethodDelete, Path: "/v1/sessions/" + url.PathEscape(id)}, nil)
	return err
}

// checkID rejects ids that cannot name a resource before a request is sent.
func checkID(what, id string) error {
	switch {
	case id == "":
		return errors.New("tensfer: " + what + " is required")
	case len(id) > 255 || strings.ContainsAny(id, "/?#\x00"):
		return fmt.Errorf("tensfer: %s %q is not valid", what, id)
	}
	return nil
}
