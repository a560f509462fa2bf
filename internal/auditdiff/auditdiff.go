// Package auditdiff turns an audit row's before and after (JSON objects) into a list of field
// changes a person can read: one line per changed field, nested objects flattened to dotted
// paths, and anything under a secret-ish name shown as its fingerprint or as "set" / "changed",
// never as its value. It is pure: no I/O, no clock, and it imports nothing of the module.
package auditdiff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Kind says how one field differs between before and after.
type Kind string

// The kinds of change.
const (
	Changed Kind = "changed" // in both, with different values
	Added   Kind = "added"   // only in after (or null before): a creation lists its fields this way
	Removed Kind = "removed" // only in before (or null after): a deletion lists its fields this way
)

// Change is one field that differs, with both sides written for display. Before is "" for an
// added field and After is "" for a removed one; a secret changed in place has only After
// ("changed").
type Change struct {
	Field  string // dotted path, e.g. "attributes.country"
	Kind   Kind
	Before string
	After  string
	Secret bool // the sides are a fingerprint or a marker, never the value
}

// Markers shown instead of a secret's value.
const (
	MarkSet     = "set"
	MarkChanged = "changed"
)

// Diff compares before and after, each a JSON object or empty (null), field by field, and
// returns the fields that differ sorted by path. A side that is not a JSON object counts as one
// field named "value".
func Diff(before, after json.RawMessage) []Change {
	b, a := flatten(decode(before)), flatten(decode(after))
	paths := make([]string, 0, len(b)+len(a))
	for p := range b {
		paths = append(paths, p)
	}
	for p := range a {
		if _, ok := b[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	out := make([]Change, 0, len(paths))
	for _, p := range paths {
		bv, av := b[p], a[p]
		if reflect.DeepEqual(bv, av) {
			continue
		}
		secret := secretPath(p)
		c := Change{Field: p, Secret: hidden(bv, secret) || hidden(av, secret)}
		switch {
		case bv == nil:
			c.Kind, c.After = Added, show(av, secret, MarkSet)
		case av == nil:
			c.Kind, c.Before = Removed, show(bv, secret, MarkSet)
		default:
			c.Kind, c.Before, c.After = Changed, show(bv, secret, ""), show(av, secret, MarkChanged)
		}
		out = append(out, c)
	}
	return out
}

// decode reads one side; a side that does not parse is kept as its text.
func decode(raw json.RawMessage) any {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return string(raw)
	}
	return v
}

// flatten maps every leaf of v to its dotted path. Objects are walked; arrays, scalars, empty
// objects and fingerprint objects are leaves. Null leaves are dropped (null means "not set").
func flatten(v any) map[string]any {
	out := map[string]any{}
	m, ok := v.(map[string]any)
	if !ok {
		if v != nil {
			out["value"] = v
		}
		return out
	}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, x := range m {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			if sub, ok := x.(map[string]any); ok && len(sub) > 0 && !isFingerprint(sub) {
				walk(p, sub)
				continue
			}
			if x != nil {
				out[p] = x
			}
		}
	}
	walk("", m)
	return out
}

// idOfSecret names fields that hold the public id of a secret rather than the secret: the
// webhook signing secret's id (environment.webhook_secret_add, _retire) and the master key's id
// (rotate-master-key), which is also in the row's target.
// NB: a raw secret written under one of these names would show; internal/web's
// TestNothingSecretLeaks reads every audit row for planted secrets.
var idOfSecret = map[string]bool{"webhook_secret": true, "master_key": true}

// secretWords mark a field name as holding secret material.
var secretWords = []string{"password", "passwd", "secret", "token", "totp", "seed", "credential", "private", "recovery_code", "otp"}

// secretPath reports whether any segment of the dotted path names a secret.
func secretPath(p string) bool {
	for _, seg := range strings.Split(p, ".") {
		if secretName(seg) {
			return true
		}
	}
	return false
}

func secretName(name string) bool {
	n := strings.ToLower(name)
	if idOfSecret[n] || strings.Contains(n, "fingerprint") || n == "last4" {
		return false
	}
	if strings.HasSuffix(n, "_key") || strings.HasSuffix(n, "apikey") {
		return true
	}
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// show writes one side. Under a secret name a fingerprint object shows as such, numbers and
// booleans (counts, flags) as themselves, and anything else as mark, never as its value; an
// empty mark leaves that side blank.
func show(v any, secret bool, mark string) string {
	if isFingerprint(v) || !secret {
		return Value(v)
	}
	switch v.(type) {
	case json.Number, bool:
		return Value(v)
	}
	return mark
}

// hidden reports whether show writes v as a fingerprint or a marker rather than as itself.
func hidden(v any, secret bool) bool {
	if v == nil {
		return false
	}
	if isFingerprint(v) {
		return true
	}
	switch v.(type) {
	case json.Number, bool:
		return false
	}
	return secret
}

// isFingerprint reports whether v is how the dashboard records a key: an object with a
// fingerprint and at most its last four characters.
func isFingerprint(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	if _, ok := m["fingerprint"].(string); !ok {
		return false
	}
	for k := range m {
		if k != "fingerprint" && k != "last4" {
			return false
		}
	}
	return true
}

// Value writes one leaf compactly for a person: strings as they are, lists joined with commas,
// the rollout's stages, guardrails and rules in their own short forms, a key as "…last4 · fp X",
// other objects as "k=v" pairs. No JSON punctuation reaches the reader.
func Value(v any) string {
	switch v := v.(type) {
	case nil:
		return "none"
	case string:
		if v == "" {
			return "empty"
		}
		return v
	case json.Number:
		return v.String()
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case []any:
		if len(v) == 0 {
			return "none"
		}
		parts := make([]string, 0, len(v))
		for _, x := range v {
			parts = append(parts, Value(x))
		}
		return strings.Join(parts, ", ")
	case map[string]any:
		return object(v)
	}
	return fmt.Sprint(v)
}

// object writes an object leaf: the shapes the dashboard records get their own short form.
func object(m map[string]any) string {
	if isFingerprint(m) {
		fp := "fp " + m["fingerprint"].(string)
		if l4, ok := m["last4"].(string); ok && l4 != "" {
			return "…" + l4 + " · " + fp
		}
		return fp
	}
	if p, ok := m["percent"]; ok { // a rollout stage
		return fmt.Sprintf("%s%%/%s", Value(p), Value(m["min_soak"]))
	}
	if sig, ok := m["signal"]; ok { // a guardrail
		return fmt.Sprintf("%s≤%s", Value(sig), Value(m["max_rate"]))
	}
	if attr, ok := m["attribute"]; ok { // a cohort rule
		return fmt.Sprintf("%s %s %s", Value(attr), Value(m["op"]), strings.ReplaceAll(Value(m["values"]), ", ", ","))
	}
	if len(m) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+show(m[k], secretName(k), MarkSet))
	}
	return strings.Join(parts, " ")
}
