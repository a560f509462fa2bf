package rollout

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// FuzzCheckCohort feeds arbitrary cohorts (as the API's JSON) to the cohort checker: it never
// panics, and a cohort it accepts compiles and decides without panicking, within its bounds.
func FuzzCheckCohort(f *testing.F) {
	f.Add(`{"Name":"a","Env":"production","UserIDs":["u1"," u2 "]}`)
	f.Add(`{"Name":"n","Env":"off","Match":"any","Rules":[{"attribute":"age","op":"gte","values":["1e3"]}]}`)
	f.Add(`{"Name":"n","Env":"sandbox","Rules":[{"attribute":"c","op":"in","values":["a","b","c","d","e","f","g","h","i","j"]}]}`)
	f.Fuzz(func(t *testing.T, raw string) {
		var c Cohort
		if json.Unmarshal([]byte(raw), &c) != nil {
			return
		}
		got, err := CheckCohort(c)
		if err != nil {
			if fes, ok := err.(FieldErrors); !ok || len(fes) == 0 {
				t.Fatalf("error is not FieldErrors: %v", err)
			}
			stored, _ := StoredCohort(c) // what a stored copy of it would load as: never a panic
			Compile(New(DefaultKey, "s"), []Cohort{stored}, 1).Decide(User{ID: "u1", Attributes: map[string]string{"age": "1"}})
			return
		}
		if (got.UserIDs == nil) == (got.Rules == nil) || len(got.UserIDs) > MaxAllowList {
			t.Fatalf("accepted %+v", got)
		}
		snap := Compile(New(DefaultKey, "s"), []Cohort{got}, 1)
		for _, u := range []User{{ID: "u1"}, {ID: "x", Attributes: map[string]string{"age": "2000", "c": "j"}}} {
			if d := snap.Decide(u); d.Env == "" || d.Bucket < 0 || d.Bucket >= BucketCount {
				t.Fatalf("decision %+v", d)
			}
		}
	})
}

// FuzzParseStages: no panic; an accepted plan is within bounds and increasing.
func FuzzParseStages(f *testing.F) {
	f.Add(`[{"percent":1,"min_soak":"24h"},{"percent":100,"min_soak":""}]`)
	f.Add(`[{"percent":0.5,"min_soak":"7d"}]`)
	f.Fuzz(func(t *testing.T, raw string) {
		var in []StageInput
		if json.Unmarshal([]byte(raw), &in) != nil {
			return
		}
		stages, err := ParseStages(in)
		if err != nil {
			return
		}
		prev := 0.0
		for _, s := range stages {
			if s.Percent <= prev || s.Percent > 100 || s.MinSoak < 0 || s.MinSoak > MaxSoak {
				t.Fatalf("accepted %+v", stages)
			}
			prev = s.Percent
		}
	})
}

// FuzzCanonical: the canonical form is idempotent, valid UTF-8, NFC, with no white space around
// it, and the ASCII fast path agrees with the general one; only text that is not UTF-8 is refused.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"user-1", "  spaced\t", "e\u0301", "\u00a0\u3000x\u2028", "\xff", "a\xc3", "\u212b", "ﬁ", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Canonical(s)
		if !utf8.ValidString(s) {
			if err == nil {
				t.Fatalf("%q accepted", s)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if again, _ := Canonical(got); again != got || !norm.NFC.IsNormalString(got) || got != strings.TrimFunc(got, unicode.IsSpace) {
			t.Fatalf("%q -> %q is not canonical", s, got)
		}
		if want := strings.TrimSpace(norm.NFC.String(s)); got != want || canonical(s) != want {
			t.Fatalf("%q -> %q, want %q", s, got, want)
		}
	})
}

// jsonNumber is RFC 8259's number grammar, the reference ParseNumber must agree with.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// FuzzParseNumber: a number is accepted exactly when it is a JSON number that is finite, and it
// is the value encoding/json reads.
func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"18", "-2.5", "1e3", "1e400", "NaN", "Inf", "0x1p4", "1_000", "01", "-0", ".5", "5.", "+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseNumber(s)
		f, err := strconv.ParseFloat(s, 64)
		want := jsonNumber.MatchString(s) && err == nil && !math.IsInf(f, 0)
		if ok != want {
			t.Fatalf("%q: accepted %v, want %v", s, ok, want)
		}
		if !ok {
			return
		}
		var viaJSON float64
		if json.Unmarshal([]byte(s), &viaJSON) != nil || viaJSON != got || math.IsNaN(got) || math.IsInf(got, 0) {
			t.Fatalf("%q: %v, encoding/json reads %v", s, got, viaJSON)
		}
	})
}
