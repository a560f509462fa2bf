package auth

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
)

// RandomID returns n random bytes, base64url-encoded without padding: an opaque, unguessable id
// for sessions, setup links and nonces.
func RandomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("auth: crypto/rand failed: " + err.Error()) // NB: rand.Read never fails on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// TokenPrefix starts every API token, so a leaked one is recognisable by secret scanners.
const TokenPrefix = "tfd_"

// NewToken returns a new API token and its display prefix (the first 12 characters).
func NewToken() (secret, prefix string) {
	secret = TokenPrefix + RandomID(32)
	return secret, secret[:12]
}

// Scopes an API token can carry.
const (
	ScopeConfigRead    = "config:read"
	ScopeSecretsRead   = "secrets:read"
	ScopeEventsRead    = "events:read"
	ScopeEventsWrite   = "events:write"
	ScopeRolloutDecide = "rollout:decide"
	ScopeRolloutWrite  = "rollout:write"
	ScopeMetricsRead   = "metrics:read"
	ScopeAdmin         = "admin"
)

// AllScopes lists every scope in display order.
var AllScopes = []string{ScopeConfigRead, ScopeSecretsRead, ScopeEventsRead, ScopeEventsWrite, ScopeRolloutDecide, ScopeRolloutWrite, ScopeMetricsRead, ScopeAdmin}

// ScopeHelp says in a few words what each scope allows.
var ScopeHelp = map[string]string{
	ScopeConfigRead:    "read an environment's app config (base URL, public key, client token)",
	ScopeSecretsRead:   "also read the secret API key in the app config (audited)",
	ScopeEventsRead:    "list events and look up request_ids",
	ScopeEventsWrite:   "report API calls",
	ScopeRolloutDecide: "ask which environment a user gets, read the rollout",
	ScopeRolloutWrite:  "advance, pause, resume, roll back or kill the rollout",
	ScopeMetricsRead:   "scrape the Prometheus metrics at /metrics (counts and figures only, no events)",
	ScopeAdmin:         "everything, including changing keys and cohorts",
}

// implied lists, for a scope, the other scopes it grants.
var implied = map[string][]string{
	ScopeAdmin:        AllScopes,
	ScopeRolloutWrite: {ScopeRolloutDecide},
	ScopeSecretsRead:  {ScopeConfigRead},
}

// HasScope reports whether a token with scopes may do what need requires.
func HasScope(scopes []string, need string) bool {
	for _, s := range scopes {
		if s == need || slices.Contains(implied[s], need) {
			return true
		}
	}
	return false
}

// RecheckScopes are the scopes that reach production secrets or change everything: a token with
// any of them (or with a scope that implies one) is as good as a signed-in admin who typed their
// password, so making one asks for the same re-check as revealing a key.
var RecheckScopes = []string{ScopeSecretsRead, ScopeAdmin}

// NeedsRecheck reports whether making a token with scopes asks for the password (and the second
// factor) again: whether any of them is or implies one of RecheckScopes.
func NeedsRecheck(scopes []string) bool {
	for _, need := range RecheckScopes {
		if HasScope(scopes, need) {
			return true
		}
	}
	return false
}

// ParseScopes validates a comma-separated scope list from outside, dropping duplicates.
func ParseScopes(list string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(AllScopes, s) {
			return nil, fmt.Errorf("unknown scope %q; valid scopes are %s", s, strings.Join(AllScopes, ", "))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("a token needs at least one scope; valid scopes are %s", strings.Join(AllScopes, ", "))
	}
	return out, nil
}
