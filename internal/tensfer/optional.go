package tensfer

import (
	"bytes"
	"encoding/json"
)

// Optional is a JSON field where absent and null mean different things, so
// neither may be folded into the zero value. Tensfer (like Stripe) sends
// null for "known to have no value" and may omit a field altogether when
// it does not apply or the API version predates it.
//
// Use it with the omitzero tag option so an absent value stays absent when
// encoding.
type Optional[T any] struct {
	// Value holds the decoded value when Valid.
	Value T
	// Present is true when the field appeared in the JSON, null or not.
	Present bool
	// Valid is true when the field appeared with a non-null value.
	Valid bool
}

// Some returns an Optional holding v.
func Some[T any](v T) Optional[T] { return Optional[T]{Value: v, Present: true, Valid: true} }

// Null returns an Optional that encodes as JSON null.
func Null[T any]() Optional[T] { return Optional[T]{Present: true} }

// Get returns the value and whether there is one.
func (o Optional[T]) Get() (T, bool) { return o.Value, o.Valid }

// IsNull reports whether the field was present and null.
func (o Optional[T]) IsNull() bool { return o.Present && !o.Valid }

// IsZero reports whether the field was absent; it makes omitzero omit it.
func (o Optional[T]) IsZero() bool { return !o.Present }

// UnmarshalJSON records presence and nullness; it is only called when the
// field is present.
func (o *Optional[T]) UnmarshalJSON(data []byte) error {
	var zero T
	o.Value, o.Present, o.Valid = zero, true, false
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return nil
	}
	if err := json.Unmarshal(data, &o.Value); err != nil {
		return err
	}
	o.Valid = true
	return nil
}

// MarshalJSON encodes the value or null.
func (o Optional[T]) MarshalJSON() ([]byte, error) {
	if !o.Valid {
		return []byte("null"), nil
	}
	return json.Marshal(o.Value)
}
