package rollout

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// fieldsOf lists the fields an error from a check names, in order.
func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	fes, ok := err.(FieldErrors)
	if !ok {
		t.Fatalf("error %T is not FieldErrors: %v", err, err)
	}
	var out []string
	for _, fe := range fes {
		out = append(out, fe.Field)
	}
	return out
}

func TestCheckCohort(t *testing.T) {
	long := strings.Repeat("x", 257)
	eq := func(v ...string) []Rule { return []Rule{{Attribute: "a", Op: OpEq, Values: v}} }
	tests := []struct {
		name   string
		c      Cohort
		fields []string
	}{
		{"ok", Cohort{Name: "ok", Env: Production, UserIDs: []string{" a ", "a", "", "b"}}, nil},
		{"blank name", Cohort{Name: " ", Env: Production, UserIDs: []string{"a"}}, []string{"name"}},
		{"name not UTF-8", Cohort{Name: "x\xff", Env: Production, UserIDs: []string{"a"}}, []string{"name"}},
		{"unknown environment", Cohort{Name: "x", Env: "staging", UserIDs: []string{"a"}}, []string{"environment"}},
		{"neither list nor rules", Cohort{Name: "x", Env: Off}, []string{"user_ids"}},
		{"id too long", Cohort{Name: "x", Env: Off, UserIDs: []string{long}}, []string{"user_ids", "user_ids[0]"}},
		{"unknown op", Cohort{Name: "x", Env: Off, Rules: []Rule{{Attribute: "a", Op: "like", Values: []string{"1"}}}}, []string{"rules[0].op"}},
		{"not a number", Cohort{Name: "x", Env: Off, Rules: []Rule{{Attribute: "a", Op: OpGt, Values: []string{"ten"}}}}, []string{"rules[0].values"}},
		{"two values for eq", Cohort{Name: "x", Env: Off, Rules: eq("1", "2")}, []string{"rules[0].values"}},
		{"unknown match", Cohort{Name: "x", Env: Off, Match: "most", Rules: eq("1")}, []string{"match"}},
		{"empty value", Cohort{Name: "x", Env: Off, Rules: eq("  ")}, []string{"rules[0].values"}},
		{"value not UTF-8", Cohort{Name: "x", Env: Off, Rules: eq("\xc3")}, []string{"rules[0].values"}},
		{"every problem at once", Cohort{Name: "", Env: "staging", Match: "most", Rules: []Rule{
			{Attribute: "age", Op: OpGte, Values: []string{"18"}},
			{Attribute: " ", Op: "like", Values: []string{"1"}},
			{Attribute: "age", Op: OpLt, Values: []string{"NaN"}},
			{Attribute: "plan", Op: OpIn, Values: []string{"a", ""}},
		}}, []string{"name", "environment", "match", "rules[1].attribute", "rules[1].op", "rules[2].values", "rules[3].values"}},
		{"every bad id at once", Cohort{Name: "x", Env: Production, UserIDs: []string{"ok", long, "\xff", "fine"}}, []string{"user_ids", "user_ids[1]", "user_ids[2]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := CheckCohort(tt.c)
			if got := fieldsOf(t, err); !slices.Equal(got, tt.fields) {
				t.Fatalf("fields %q, want %q (%v)", got, tt.fields, err)
			}
			if tt.fields == nil && !slices.Equal(c.UserIDs, []string{"a", "b"}) {
				t.Errorf("ids not canonical and deduplicated: %q", c.UserIDs)
			}
		})
	}
	if _, err := CheckUserIDs(make([]string, MaxAllowList+1)); err == nil {
		t.Error("an allow-list over the limit was accepted")
	}
	many := make([]string, 100)
	for i := range many {
		many[i] = long
	}
	_, err := CheckUserIDs(many)
	if got := fieldsOf(t, err); len(got) != maxProblems+1 || got[0] != "user_ids" {
		t.Errorf("100 bad ids: fields %q, want %d and a summary", got, maxProblems)
	}
}

// TestNumbersAreWhatJSONWrites: in rule values and in attributes, only finite numbers as JSON
// writes them are numbers; everything strconv.ParseFloat takes beyond that is not.
func TestNumbersAreWhatJSONWrites(t *testing.T) {
	for _, s := range []string{"0", "-0", "18", "-2.5", "1e3", "1E3", "1e+3", "1e-3", "0.25", "123456789012345678901234567890", "1e-400"} {
		if _, ok := ParseNumber(s); !ok {
			t.Errorf("%q is refused", s)
		}
	}
	for _, s := range []string{"", "-", "+1", ".5", "5.", "01", "-01", "1e", "1e+", "0x10", "0x1p4", "1_000", "Inf", "+Inf", "-Inf", "inf", "infinity",
		"NaN", "nan", "1e400", "-1e400", " 1", "1 ", "1,5", "٣", "1.5.2", "--1", "1e3.5"} {
		if f, ok := ParseNumber(s); ok {
			t.Errorf("%q is taken as %v", s, f)
		}
	}
	if f, _ := ParseNumber("-1.5e2"); f != -150 || math.IsNaN(f) {
		t.Errorf("-1.5e2 is %v", f)
	}
}

// TestCanonical: surrounding white space goes, NFC is applied, case stays, and text that is not
// UTF-8 is refused.
func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"user-1":              "user-1",
		"  user-1\t\r\n":      "user-1",
		"in side":             "in side",
		"Alice":               "Alice",
		"e\u0301":             "\u00e9", // NFD to NFC
		"\u00a0\u00e9\u3000":  "\u00e9", // Unicode spaces around
		"\u2000x":             "x",
		"\u212b":              "\u00c5", // the Ångström sign is a singleton: NFC makes it Å
		"ﬁ":                   "ﬁ",      // a compatibility ligature stays (NFC, not NFKC)
		"":                    "",
		"   ":                 "",
		"qa+1@example.com":    "qa+1@example.com",
		"ctl\x00inside":       "ctl\x00inside",
		"\u0041\u030a\u0301 ": "\u01fa",
	} {
		got, err := Canonical(in)
		if err != nil || got != want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", in, got, err, want)
		}
		if again, _ := Canonical(got); again != got {
			t.Errorf("Canonical is not idempotent on %q: %q", got, again)
		}
	}
	for _, in := range []string{"\xff", "a\xc3", "\xed\xa0\x80"} {
		if _, err := Canonical(in); err != ErrNotUTF8 {
			t.Errorf("Canonical(%q): %v, want ErrNotUTF8", in, err)
		}
	}
}

// TestUnknownAttributesMatchNoRule: missing, empty and blank attributes are unknown, for every
// operator, neq and not_in included (long not_in lists go through a set: the same).
func TestUnknownAttributesMatchNoRule(t *testing.T) {
	long := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	for _, r := range []Rule{
		{Attribute: "x", Op: OpEq, Values: []string{"US"}}, {Attribute: "x", Op: OpNeq, Values: []string{"US"}},
		{Attribute: "x", Op: OpIn, Values: []string{"US"}}, {Attribute: "x", Op: OpNotIn, Values: []string{"US"}},
		{Attribute: "x", Op: OpNotIn, Values: long}, {Attribute: "x", Op: OpPrefix, Values: []string{"U"}},
		{Attribute: "x", Op: OpGt, Values: []string{"-1e300"}}, {Attribute: "x", Op: OpLt, Values: []string{"1e300"}},
		{Attribute: "x", Op: OpGte, Values: []string{"0"}}, {Attribute: "x", Op: OpLte, Values: []string{"0"}},
	} {
		c, err := CheckCohort(Cohort{Name: "c", Env: Production, Rules: []Rule{r}})
		if err != nil {
			t.Fatal(err)
		}
		snap := Compile(started(0, 100), []Cohort{c}, 1)
		for _, attrs := range []map[string]string{nil, {}, {"x": ""}, {"x": "  \t"}, {"y": "US"}} {
			if d := snap.Decide(User{ID: "u", Attributes: attrs}); d.Reason == ReasonCohort {
				t.Errorf("%s %v matched %v", r.Op, r.Values, attrs)
			}
		}
	}
}

// TestStoredCohortNeverStopsDecisions: a rule an older version saved with a value this one
// refuses loads as a rule that matches nobody, and the rest of the cohort still works.
func TestStoredCohortNeverStopsDecisions(t *testing.T) {
	c, problems := StoredCohort(Cohort{Name: "old", Env: Production, Match: MatchAny, Rules: []Rule{
		{Attribute: "age", Op: OpLt, Values: []string{"Inf"}},
		{Attribute: " country ", Op: OpEq, Values: []string{" SE "}},
	}})
	if got := fieldsOf(t, problems); !slices.Equal(got, []string{"rules[0].values"}) {
		t.Fatalf("problems %q", got)
	}
	snap := Compile(started(0, 100), []Cohort{c}, 1)
	if d := snap.Decide(User{ID: "u", Attributes: map[string]string{"age": "3"}}); d.Reason == ReasonCohort {
		t.Error("a rule that no longer checks matched")
	}
	if d := snap.Decide(User{ID: "u", Attributes: map[string]string{"country": "SE"}}); d.Reason != ReasonCohort {
		t.Errorf("the canonical rule did not match: %+v", d)
	}
}

// TestDocumentedWhiteSpace: the white space docs/rollout.md lists for other languages to trim is
// exactly what Canonical trims.
func TestDocumentedWhiteSpace(t *testing.T) {
	listed := func(r rune) bool {
		return r >= 0x09 && r <= 0x0d || r == 0x20 || r == 0x85 || r == 0xa0 || r == 0x1680 || r >= 0x2000 && r <= 0x200a ||
			r == 0x2028 || r == 0x2029 || r == 0x202f || r == 0x205f || r == 0x3000
	}
	for r := rune(0); r <= 0x10ffff; r++ {
		if r >= 0xd800 && r <= 0xdfff {
			continue
		}
		got, _ := Canonical(string(r) + "x")
		if trimmed := got == "x"; trimmed != listed(r) {
			t.Errorf("U+%04X: trimmed %v, listed %v", r, trimmed, listed(r))
		}
	}
}

// TestAllowListFilterNeverMissesAMember: the filter in front of an allow-list only ever skips
// users who are not on it, at every size, stored ids in any form included.
func TestAllowListFilterNeverMissesAMember(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 1000, 20_000} {
		ids := randomIDs(n, uint64(n))
		stored := append([]string(nil), ids...)
		if n > 0 {
			stored[0] = " " + stored[0] + "\t" // stored before ids were canonical
		}
		snap := Compile(started(0, 100), []Cohort{{Name: "list", Env: Production, UserIDs: stored}}, 1)
		for _, id := range ids {
			if d := snap.Decide(User{ID: id}); d.Reason != ReasonCohort {
				t.Fatalf("%d ids: member %q decided %s", n, id, d.Reason)
			}
		}
		for _, id := range randomIDs(5000, uint64(n)+1) {
			if d := snap.Decide(User{ID: "x" + id}); d.Reason == ReasonCohort {
				t.Fatalf("%d ids: %q is not a member", n, id)
			}
		}
	}
}
