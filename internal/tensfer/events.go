package tensfer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// EventType is a webhook event type. Types this package does not know are
// kept as sent: Tensfer adds types without notice.
type EventType string

// Known webhook event types.
const (
	EventUserReauthenticationRequired EventType = "user.reauthentication_required"
	EventIdentityProfileReady         EventType = "identity.profile_ready"
	EventPaymentCancelled             EventType = "payment.cancelled"
)

// Known reports whether t is one of the types this package knows.
func (t EventType) Known() bool {
	switch t {
	case EventUserReauthenticationRequired, EventIdentityProfileReady, EventPaymentCancelled:
		return true
	}
	return false
}

// Field length limits for event parsing.
const (
	maxIDLen      = 255
	maxTypeLen    = 128
	maxScreenLen  = 128
	maxErrCodeLen = 128
	maxErrMsgLen  = 2048
)

// FieldError is a validation failure of one field of an inbound event;
// Message is a sentence a person can act on.
type FieldError struct {
	Field   string
	Message string
}

// Error returns the message.
func (e *FieldError) Error() string { return e.Message }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: field + " " + fmt.Sprintf(format, args...)}
}

// WebhookEvent is a Tensfer webhook body:
// {"id","type","created_at","request_id","data":{..}}. Unknown fields are
// kept in Extra, the original bytes in Raw.
type WebhookEvent struct {
	ID   string
	Type EventType
	// CreatedAt is zero when created_at is absent or not an RFC 3339 time
	// (the raw value stays in Raw).
	CreatedAt time.Time
	RequestID string
	// Data is the "data" member as sent; nil when absent.
	Data json.RawMessage
	// Extra holds the top-level members this package does not know.
	Extra map[string]json.RawMessage
	// Raw is the body as received; nil for events built in code.
	Raw json.RawMessage
}

// ParseWebhookEvent parses a webhook body. It rejects only what cannot be
// stored meaningfully: a body that is not a JSON object, a missing or
// non-string type, and known string fields of the wrong JSON type or an
// absurd length. Unknown types and fields are kept.
func ParseWebhookEvent(body []byte) (WebhookEvent, error) {
	m, err := jsonObject(body, "webhook body")
	if err != nil {
		return WebhookEvent{}, err
	}
	e := WebhookEvent{Raw: json.RawMessage(bytes.Clone(body))}
	var typ string
	for _, f := range []struct {
		name string
		dst  *string
		max  int
	}{{"id", &e.ID, maxIDLen}, {"type", &typ, maxTypeLen}, {"request_id", &e.RequestID, maxIDLen}} {
		if err := stringField(m, f.name, f.dst, f.max); err != nil {
			return WebhookEvent{}, err
		}
	}
	if typ == "" {
		return WebhookEvent{}, fieldErr("type", "is required")
	}
	e.Type = EventType(typ)
	var created string
	if json.Unmarshal(m["created_at"], &created) == nil {
		if t, err := time.Parse(time.RFC3339Nano, created); err == nil {
			e.CreatedAt = t
		}
	}
	if d, ok := m["data"]; ok {
		e.Data = d
	}
	for _, k := range []string{"id", "type", "created_at", "request_id", "data"} {
		delete(m, k)
	}
	if len(m) > 0 {
		e.Extra = m
	}
	return e, nil
}

// MarshalJSON encodes the event as a webhook body, with Extra members
// alongside the known ones (known ones win).
func (e WebhookEvent) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(e.Extra)+5)
	for k, v := range e.Extra {
		m[k] = v
	}
	m["id"] = e.ID
	m["type"] = e.Type
	if !e.CreatedAt.IsZero() {
		m["created_at"] = e.CreatedAt.UTC().Format(time.RFC3339)
	}
	if e.RequestID != "" {
		m["request_id"] = e.RequestID
	} else {
		m["request_id"] = nil
	}
	if len(e.Data) > 0 {
		m["data"] = e.Data
	} else {
		m["data"] = struct{}{}
	}
	return json.Marshal(m)
}

// DecodeData decodes Data into v, e.g. a *PaymentCancelledData.
func (e WebhookEvent) DecodeData(v any) error {
	if len(e.Data) == 0 {
		return errors.New("webhook event has no data")
	}
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("decode %s data: %w", e.Type, err)
	}
	return nil
}

// ReauthenticationRequiredData is the data of user.reauthentication_required:
// the user's bank connection needs them to log in again.
type ReauthenticationRequiredData struct {
	UserID        string     `json:"user_id"`
	ConnectionID  string     `json:"connection_id"`
	InstitutionID string     `json:"institution_id"`
	Reason        string     `json:"reason"`
	ExpiresAt     *time.Time `json:"expires_at"`
}

// IdentityProfileReadyData is the data of identity.profile_ready.
type IdentityProfileReadyData struct {
	UserID    string   `json:"user_id"`
	ProfileID string   `json:"profile_id"`
	SessionID string   `json:"session_id,omitempty"`
	Fields    []string `json:"fields"`
}

// PaymentCancelledData is the data of payment.cancelled.
type PaymentCancelledData struct {
	PaymentID   string    `json:"payment_id"`
	UserID      string    `json:"user_id"`
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	CancelledAt time.Time `json:"cancelled_at"`
	// CancelledBy is who cancelled: "user", "institution" or "integrator".
	CancelledBy string `json:"cancelled_by"`
	// Reason is nil when none was given.
	Reason *string `json:"reason"`
}

// CallbackType is the "event" of a front-end callback beacon. Unknown
// values are kept.
type CallbackType string

// Known callback events.
const (
	CallbackScreenLoaded        CallbackType = "screen_loaded"
	CallbackAccountsConnected   CallbackType = "accounts_connected"
	CallbackInitializationError CallbackType = "initialization_error"
)

// Known reports whether t is one of the callback events this package knows.
func (t CallbackType) Known() bool {
	switch t {
	case CallbackScreenLoaded, CallbackAccountsConnected, CallbackInitializationError:
		return true
	}
	return false
}

// CallbackError is the "error" member of a callback, e.g. of an
// initialization_error.
type CallbackError struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// CallbackEvent is a beacon from the integrator's front end:
// {"event","event_id","session_id","user_id","request_id","screen",
// "error":{..},"occurred_at"}. Unknown members are kept in Extra.
type CallbackEvent struct {
	Event      CallbackType
	EventID    string
	SessionID  string
	UserID     string
	RequestID  string
	Screen     string
	Error      *CallbackError
	OccurredAt time.Time
	// Extra holds members this package does not know, including the
	// error object's other members under "error.<name>".
	Extra map[string]json.RawMessage
	// Raw is the body (or, for ParseCallbackQuery, the query as a JSON
	// object) as received; nil for events built in code.
	Raw json.RawMessage
}

// callbackStringFields maps JSON names to fields for parsing and encoding.
func (e *CallbackEvent) stringFields() []struct {
	name string
	dst  *string
	max  int
} {
	return []struct {
		name string
		dst  *string
		max  int
	}{
		{"event_id", &e.EventID, maxIDLen}, {"session_id", &e.SessionID, maxIDLen},
		{"user_id", &e.UserID, maxIDLen}, {"request_id", &e.RequestID, maxIDLen},
		{"screen", &e.Screen, maxScreenLen},
	}
}

// ParseCallbackEvent parses and validates a callback beacon body.
func ParseCallbackEvent(body []byte) (CallbackEvent, error) {
	m, err := jsonObject(body, "callback body")
	if err != nil {
		return CallbackEvent{}, err
	}
	e := CallbackEvent{Raw: json.RawMessage(bytes.Clone(body))}
	var ev string
	if err := stringField(m, "event", &ev, maxTypeLen); err != nil {
		return CallbackEvent{}, err
	}
	e.Event = CallbackType(ev)
	for _, f := range e.stringFields() {
		if err := stringField(m, f.name, f.dst, f.max); err != nil {
			return CallbackEvent{}, err
		}
	}
	if raw, ok := m["error"]; ok && !isNull(raw) {
		var s string
		var obj map[string]json.RawMessage
		switch {
		case json.Unmarshal(raw, &s) == nil:
			e.Error = &CallbackError{Message: s}
		case json.Unmarshal(raw, &obj) == nil && obj != nil:
			e.Error = &CallbackError{}
			if err := stringField(obj, "code", &e.Error.Code, maxErrCodeLen); err != nil {
				return CallbackEvent{}, fieldErr("error.code", "must be a string of at most %d characters", maxErrCodeLen)
			}
			if err := stringField(obj, "message", &e.Error.Message, maxErrMsgLen); err != nil {
				return CallbackEvent{}, fieldErr("error.message", "must be a string of at most %d characters", maxErrMsgLen)
			}
			delete(obj, "code")
			delete(obj, "message")
			for k, v := range obj {
				m["error."+k] = v
			}
		default:
			return CallbackEvent{}, fieldErr("error", "must be an object like {\"code\":\"..\",\"message\":\"..\"}")
		}
	}
	var occurred string
	if err := stringField(m, "occurred_at", &occurred, 64); err != nil {
		return CallbackEvent{}, err
	}
	if occurred != "" {
		t, err := time.Parse(time.RFC3339Nano, occurred)
		if err != nil {
			return CallbackEvent{}, fieldErr("occurred_at", "must be an RFC 3339 time like 2025-01-02T15:04:05Z")
		}
		e.OccurredAt = t
	}
	for _, k := range []string{"event", "event_id", "session_id", "user_id", "request_id", "screen", "error", "occurred_at"} {
		delete(m, k)
	}
	if len(m) > 0 {
		e.Extra = m
	}
	return e, e.Validate()
}

// ParseCallbackQuery turns the query of a callback (redirect) URL into a
// CallbackEvent: known names map to fields, error_code / error_message to
// Error, anything else to Extra as JSON strings (first value only).
func ParseCallbackQuery(q url.Values) (CallbackEvent, error) {
	flat := make(map[string]string, len(q))
	for k, vs := range q {
		if len(vs) > 0 {
			flat[k] = vs[0]
		}
	}
	raw, err := json.Marshal(flat)
	if err != nil {
		return CallbackEvent{}, err
	}
	e := CallbackEvent{Event: CallbackType(flat["event"]), Raw: raw}
	for _, f := range e.stringFields() {
		*f.dst = flat[f.name]
	}
	if c, m := flat["error_code"], flat["error_message"]; c != "" || m != "" {
		e.Error = &CallbackError{Code: c, Message: m}
	}
	if s := flat["occurred_at"]; s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return CallbackEvent{}, fieldErr("occurred_at", "must be an RFC 3339 time like 2025-01-02T15:04:05Z")
		}
		e.OccurredAt = t
	}
	for k, v := range flat {
		switch k {
		case "event", "event_id", "session_id", "user_id", "request_id", "screen", "error_code", "error_message", "occurred_at":
			continue
		}
		if e.Extra == nil {
			e.Extra = map[string]json.RawMessage{}
		}
		b, _ := json.Marshal(v)
		e.Extra[k] = b
	}
	return e, e.Validate()
}

// Validate checks a callback event: event is required and made of
// lower-case letters, digits, '_', '.' or '-'; ids and strings are
// bounded.
func (e CallbackEvent) Validate() error {
	if e.Event == "" {
		return fieldErr("event", "is required (e.g. %q)", CallbackScreenLoaded)
	}
	if len(e.Event) > maxTypeLen {
		return fieldErr("event", "must be at most %d characters", maxTypeLen)
	}
	for _, r := range e.Event {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return fieldErr("event", "must contain only a-z, 0-9, '_', '.' and '-'")
		}
	}
	for _, f := range e.stringFields() {
		if utf8.RuneCountInString(*f.dst) > f.max {
			return fieldErr(f.name, "must be at most %d characters", f.max)
		}
	}
	if e.Error != nil {
		if utf8.RuneCountInString(e.Error.Code) > maxErrCodeLen {
			return fieldErr("error.code", "must be at most %d characters", maxErrCodeLen)
		}
		if utf8.RuneCountInString(e.Error.Message) > maxErrMsgLen {
			return fieldErr("error.message", "must be at most %d characters", maxErrMsgLen)
		}
	}
	return nil
}

// MarshalJSON encodes the event as a beacon body, with Extra members
// alongside the known ones (known ones win; "error.x" members go back
// into the error object).
func (e CallbackEvent) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(e.Extra)+8)
	errObj := map[string]any{}
	for k, v := range e.Extra {
		if sub, ok := strings.CutPrefix(k, "error."); ok {
			errObj[sub] = v
			continue
		}
		m[k] = v
	}
	m["event"] = e.Event
	for _, f := range e.stringFields() {
		if *f.dst != "" {
			m[f.name] = *f.dst
		}
	}
	if e.Error != nil {
		if e.Error.Code != "" {
			errObj["code"] = e.Error.Code
		}
		if e.Error.Message != "" {
			errObj["message"] = e.Error.Message
		}
	}
	if e.Error != nil || len(errObj) > 0 {
		m["error"] = errObj
	}
	if !e.OccurredAt.IsZero() {
		m["occurred_at"] = e.OccurredAt.UTC().Format(time.RFC3339Nano)
	}
	return json.Marshal(m)
}

// jsonObject decodes body, which must be a JSON object, into its members.
func jsonObject(body []byte, what string) (map[string]json.RawMessage, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		if len(trimmed) == 0 || json.Valid(body) {
			return nil, errors.New(what + " must be a JSON object")
		}
		return nil, errors.New(what + " is not valid JSON")
	}
	if !utf8.Valid(body) {
		// encoding/json would replace the bad bytes and accept it: JSON is UTF-8 (RFC 8259).
		return nil, errors.New(what + " is not valid UTF-8")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %s", what, jsonErrorText(err))
	}
	return m, nil
}

// jsonErrorText strips the "json: " prefix some decoding errors carry.
func jsonErrorText(err error) string { return strings.TrimPrefix(err.Error(), "json: ") }

// stringField reads member name of m into dst: absent and null leave dst
// empty, anything but a string of at most max characters is an error.
func stringField(m map[string]json.RawMessage, name string, dst *string, max int) error {
	raw, ok := m[name]
	if !ok || isNull(raw) {
		return nil
	}
	// Fast path: a plain quoted string without escapes (the map decode already validated the
	// JSON) is its bytes; anything else goes through the decoder.
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' && bytes.IndexByte(raw[1:n-1], '\\') < 0 && bytes.IndexByte(raw[1:n-1], '"') < 0 && utf8.Valid(raw[1:n-1]) {
		*dst = string(raw[1 : n-1])
	} else if err := json.Unmarshal(raw, dst); err != nil {
		return fieldErr(name, "must be a string")
	}
	if utf8.RuneCountInString(*dst) > max {
		return fieldErr(name, "must be at most %d characters", max)
	}
	return nil
}

// isNull reports whether raw is the JSON literal null.
func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }
