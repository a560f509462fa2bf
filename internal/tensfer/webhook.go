package tensfer

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks v1 header names.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// Webhook secret limits and defaults.
const (
	// SecretPrefix starts every displayed webhook secret.
	SecretPrefix = "whsec_"
	// MinSecretBytes and MaxSecretBytes bound the decoded key, as the
	// Standard Webhooks spec does (24 to 64 bytes).
	MinSecretBytes = 24
	MaxSecretBytes = 64
	// DefaultTolerance is how far a webhook-timestamp may be from now.
	DefaultTolerance = 5 * time.Minute
	// maxSignatureEntries bounds the work one header can cause.
	maxSignatureEntries = 16
)

// Verification failure reasons, stored with rejected deliveries.
const (
	ReasonMissingHeader       = "missing_header"
	ReasonInvalidTimestamp    = "invalid_timestamp"
	ReasonTimestampSkew       = "timestamp_skew"
	ReasonMalformedSignature  = "malformed_signature"
	ReasonNoMatchingSignature = "no_matching_signature"
	ReasonNoActiveSecret      = "no_active_secret"
)

// VerifyError says why a webhook delivery was rejected. Reason is one of
// the Reason* constants; Detail is a sentence for people.
type VerifyError struct {
	Reason string
	Detail string
	// SkewSeconds is now minus the webhook timestamp for timestamp_skew:
	// positive when the message is too old, negative when it is from the
	// future.
	SkewSeconds int64
}

// Error returns "webhook signature: <reason>: <detail>".
func (e *VerifyError) Error() string {
	if e.Detail == "" {
		return "webhook signature: " + e.Reason
	}
	return "webhook signature: " + e.Reason + ": " + e.Detail
}

// GenerateSecret returns a new random webhook secret in its displayed form
// whsec_<base64 of 32 bytes>.
func GenerateSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate webhook secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// ParseSecret turns a displayed secret (whsec_<base64>) into the HMAC key.
func ParseSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, errors.New("webhook secret must start with whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		if key, err = base64.RawStdEncoding.DecodeString(rest); err != nil {
			return nil, errors.New("webhook secret after whsec_ is not valid base64")
		}
	}
	switch {
	case len(key) < MinSecretBytes:
		return nil, fmt.Errorf("webhook secret is too short: %d bytes, need at least %d", len(key), MinSecretBytes)
	case len(key) > MaxSecretBytes:
		return nil, fmt.Errorf("webhook secret is too long: %d bytes, at most %d", len(key), MaxSecretBytes)
	}
	return key, nil
}

// FormatSecret returns the displayed form of an HMAC key.
func FormatSecret(key []byte) string { return SecretPrefix + base64.StdEncoding.EncodeToString(key) }

// sign returns the raw HMAC-SHA256 of "{id}.{ts}.{body}".
func sign(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Sign returns a webhook-signature entry "v1,<base64>" for body sent with
// the given id and timestamp (truncated to Unix seconds).
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	sig := sign(key, id, strconv.FormatInt(ts.Unix(), 10), body)
	return "v1," + base64.StdEncoding.EncodeToString(sig)
}

// SignRequest sets the three Standard Webhooks headers on req, signing
// body (which must be exactly what req sends) with every key, as a
// provider does while secrets rotate.
func SignRequest(req *http.Request, id string, ts time.Time, body []byte, keys ...[]byte) {
	SignHeaders(req.Header, id, ts, body, keys...)
}

// SignHeaders sets the webhook-id, webhook-timestamp and webhook-signature headers in h, with one
// signature per key (as SignRequest does for a request).
func SignHeaders(h http.Header, id string, ts time.Time, body []byte, keys ...[]byte) {
	sigs := make([]string, 0, len(keys))
	for _, k := range keys {
		sigs = append(sigs, Sign(k, id, ts, body))
	}
	h.Set(HeaderWebhookID, id)
	h.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderWebhookSignature, strings.Join(sigs, " "))
}

// Signature is one entry of a webhook-signature header.
type Signature struct {
	// Version is the part before the comma, e.g. "v1".
	Version string
	// Value is the part after the comma as sent.
	Value string
	// MAC is the decoded HMAC for v1 entries, nil for other versions.
	MAC []byte
}

// ParseSignatureHeader splits a webhook-signature header into entries.
// Entries are separated by spaces; each is "<version>,<signature>". v1
// entries must carry a base64 HMAC-SHA256 (32 bytes); entries of other
// versions are kept undecoded so Verify can ignore them.
func ParseSignatureHeader(h string) ([]Signature, error) {
	fields := strings.Fields(h)
	if len(fields) == 0 {
		return nil, errors.New("signature header is empty")
	}
	if len(fields) > maxSignatureEntries {
		return nil, fmt.Errorf("signature header has %d entries, at most %d allowed", len(fields), maxSignatureEntries)
	}
	sigs := make([]Signature, 0, len(fields))
	for i, f := range fields {
		version, value, ok := strings.Cut(f, ",")
		if !ok || version == "" || value == "" {
			return nil, fmt.Errorf("signature entry %d is not <version>,<signature>", i+1)
		}
		s := Signature{Version: version, Value: value}
		if version == "v1" {
			mac, err := base64.StdEncoding.DecodeString(value)
			if err != nil {
				return nil, fmt.Errorf("signature entry %d is not valid base64", i+1)
			}
			if len(mac) != sha256.Size {
				return nil, fmt.Errorf("signature entry %d is %d bytes, want %d", i+1, len(mac), sha256.Size)
			}
			s.MAC = mac
		}
		sigs = append(sigs, s)
	}
	return sigs, nil
}

// Verify checks a delivery signed with Standard Webhooks v1 against every
// active key (several during rotation) and returns the index of the key
// that matched. It checks, in order: the three headers are present, the
// timestamp is an integer within tolerance of now (zero tolerance means
// DefaultTolerance), the signature header parses, a key is configured,
// and a v1 entry matches a key (compared in constant time). Entries of
// unknown versions are ignored. Every failure is a *VerifyError.
func Verify(keys [][]byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) (matched int, err error) {
	id, tsRaw, sigRaw := h.Get(HeaderWebhookID), h.Get(HeaderWebhookTimestamp), h.Get(HeaderWebhookSignature)
	for _, hv := range []struct{ name, v string }{
		{HeaderWebhookID, id}, {HeaderWebhookTimestamp, tsRaw}, {HeaderWebhookSignature, sigRaw},
	} {
		if strings.TrimSpace(hv.v) == "" {
			return -1, &VerifyError{Reason: ReasonMissingHeader, Detail: hv.name + " header is missing"}
		}
	}
	ts, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil || ts < 0 || tsRaw[0] == '+' {
		return -1, &VerifyError{Reason: ReasonInvalidTimestamp, Detail: fmt.Sprintf("webhook-timestamp %q is not Unix seconds", truncate(tsRaw, 40))}
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	skew := now.Unix() - ts
	if skew > int64(tolerance/time.Second) || -skew > int64(tolerance/time.Second) {
		dir := "old"
		if skew < 0 {
			dir = "far in the future"
		}
		return -1, &VerifyError{
			Reason:      ReasonTimestampSkew,
			Detail:      fmt.Sprintf("webhook-timestamp is %s (%ds from now, tolerance %s)", dir, skew, tolerance),
			SkewSeconds: skew,
		}
	}
	sigs, err := ParseSignatureHeader(sigRaw)
	if err != nil {
		return -1, &VerifyError{Reason: ReasonMalformedSignature, Detail: err.Error()}
	}
	active := 0
	for _, k := range keys {
		if len(k) > 0 {
			active++
		}
	}
	if active == 0 {
		return -1, &VerifyError{Reason: ReasonNoActiveSecret, Detail: "no webhook secret is configured for this environment"}
	}
	v1 := 0
	for _, s := range sigs {
		if s.Version == "v1" {
			v1++
		}
	}
	if v1 == 0 {
		return -1, &VerifyError{Reason: ReasonNoMatchingSignature, Detail: "no v1 signature in webhook-signature"}
	}
	for i, k := range keys {
		if len(k) == 0 {
			continue
		}
		want := sign(k, id, tsRaw, body)
		for _, s := range sigs {
			if s.Version == "v1" && hmac.Equal(s.MAC, want) {
				return i, nil
			}
		}
	}
	return -1, &VerifyError{Reason: ReasonNoMatchingSignature, Detail: fmt.Sprintf("none of %d v1 signatures matches any of %d active secrets", v1, active)}
}

// truncate shortens s for error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
