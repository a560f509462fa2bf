package rollout

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Op is a rule's comparison.
type Op string

// The operators of attribute rules. The numeric ones (gt, gte, lt, lte) compare numbers: their
// value must be a finite number as JSON writes it (ParseNumber), and an attribute that is not one
// does not match.
const (
	OpEq     Op = "eq"
	OpNeq    Op = "neq"
	OpIn     Op = "in"
	OpNotIn  Op = "not_in"
	OpPrefix Op = "prefix"
	OpGt     Op = "gt"
	OpGte    Op = "gte"
	OpLt     Op = "lt"
	OpLte    Op = "lte"
)

// Ops lists every operator.
var Ops = []Op{OpEq, OpNeq, OpIn, OpNotIn, OpPrefix, OpGt, OpGte, OpLt, OpLte}

func (o Op) numeric() bool { return o == OpGt || o == OpGte || o == OpLt || o == OpLte }

// Rule compares one attribute of the user with values. A user whose attribute is unknown
// (missing, null or empty) matches no rule, neq and not_in included: targeting production needs
// the attribute to be known.
type Rule struct {
	Attribute string   `json:"attribute"`
	Op        Op       `json:"op"`
	Values    []string `json:"values"`
	num       float64  // the value of a numeric rule
	never     bool     // a stored rule that no longer checks (StoredCohort): it matches nobody
}

// Match says how a cohort's rules combine.
const (
	MatchAll = "all"
	MatchAny = "any"
)

// Limits on cohorts.
const (
	MaxIDBytes        = 256
	MaxAllowList      = 1_000_000
	MaxRules          = 50
	MaxValues         = 1_000
	MaxCohortNameRune = 80
)

// Cohort is a group of users sent to one environment: an allow-list of user ids or attribute
// rules. Cohorts are evaluated in Position order, block-lists (Env off) first.
type Cohort struct {
	ID       int64
	Name     string
	Env      Env
	Position int
	UserIDs  []string // an allow-list; nil for a rule cohort
	Match    string   // MatchAll | MatchAny, for rules
	Rules    []Rule
	Version  int64
}

// IsList reports whether the cohort is an allow-list (rather than rules).
func (c Cohort) IsList() bool { return c.Rules == nil }

// maxProblems bounds how many problems one check reports: a million bad ids are one mistake
// said twenty times, not a million.
const maxProblems = 20

// CheckCohort validates a cohort as given by a person and returns it in canonical form (ids and
// values as Canonical makes them, duplicates dropped, numeric rule values parsed). Every problem
// is reported at once, as FieldErrors whose fields name where it is (name, rules[2].values).
func CheckCohort(c Cohort) (Cohort, error) {
	var errs FieldErrors
	name, err := Canonical(c.Name)
	c.Name = name
	switch n := utf8.RuneCountInString(c.Name); {
	case err != nil:
		errs = append(errs, FieldError{"name", "name " + err.Error()})
	case n == 0:
		errs = append(errs, FieldError{"name", "name is required, e.g. internal-testers"})
	case n > MaxCohortNameRune:
		errs = append(errs, FieldError{"name", fmt.Sprintf("name must be at most %d characters", MaxCohortNameRune)})
	}
	if _, ok := ParseEnv(string(c.Env)); !ok {
		errs = append(errs, FieldError{"environment", "environment must be production, sandbox or off"})
	}
	switch {
	case c.UserIDs != nil && c.Rules != nil:
		return c, append(errs, FieldError{"user_ids", "a cohort is either an allow-list (user_ids) or rules, not both"})
	case c.UserIDs == nil && c.Rules == nil:
		return c, append(errs, FieldError{"user_ids", "give user_ids (an allow-list) or rules"})
	case c.UserIDs != nil:
		ids, err := CheckUserIDs(c.UserIDs)
		if err != nil {
			errs = append(errs, err.(FieldErrors)...)
		} else {
			c.UserIDs = ids
		}
		c.Match = ""
		return c, errs.Err()
	}
	switch c.Match {
	case "":
		c.Match = MatchAll
	case MatchAll, MatchAny:
	default:
		errs = append(errs, FieldError{"match", "match must be all or any"})
	}
	if len(c.Rules) == 0 || len(c.Rules) > MaxRules {
		return c, append(errs, FieldError{"rules", fmt.Sprintf("a rule cohort needs 1 to %d rules", MaxRules)})
	}
	rules := make([]Rule, len(c.Rules))
	for i := range c.Rules {
		r, problems := checkRule(c.Rules[i])
		for _, fe := range problems {
			fe.Field = fmt.Sprintf("rules[%d].%s", i, fe.Field)
			fe.Message = fmt.Sprintf("rule %d: %s", i+1, fe.Message)
			errs = append(errs, fe)
		}
		rules[i] = r
	}
	c.Rules = rules
	return c, errs.Err()
}

// StoredCohort is CheckCohort for a cohort read back from storage, which an older version may
// have saved with values this one refuses (NaN, an empty value, a value to trim). It never
// fails: what canonicalises is kept, and a rule that no longer checks matches nobody, rather
// than one stored row stopping every decision. problems says what such rules are.
func StoredCohort(c Cohort) (Cohort, FieldErrors) {
	checked, err := CheckCohort(c)
	if err == nil {
		return checked, nil
	}
	problems := err.(FieldErrors)
	checked.Name, checked.Env = c.Name, c.Env
	if c.Rules == nil {
		// An allow-list: CheckUserIDs refuses only ids too long or not UTF-8; keep the rest.
		ids := make([]string, 0, len(c.UserIDs))
		for _, id := range c.UserIDs {
			if v, err := Canonical(id); err == nil && v != "" && len(v) <= MaxIDBytes {
				ids = append(ids, v)
			}
		}
		c.UserIDs = ids
		return c, problems
	}
	rules := make([]Rule, len(c.Rules))
	for i := range c.Rules {
		r, bad := checkRule(c.Rules[i])
		r.never = bad != nil
		rules[i] = r
	}
	checked.Rules = rules
	if checked.Match != MatchAny {
		checked.Match = MatchAll
	}
	return checked, problems
}

// checkRule returns the rule in canonical form and every problem with it, fields named within
// the rule (attribute, op, values).
func checkRule(r Rule) (Rule, []FieldError) {
	var errs []FieldError
	attr, err := Canonical(r.Attribute)
	switch {
	case err != nil:
		errs = append(errs, FieldError{"attribute", "attribute " + err.Error()})
	case attr == "" || len(attr) > 100:
		errs = append(errs, FieldError{"attribute", "attribute must be 1 to 100 characters, e.g. country"})
	}
	r.Attribute = attr
	if !slices.Contains(Ops, r.Op) {
		errs = append(errs, FieldError{"op", fmt.Sprintf("unknown operator %q; use one of eq, neq, in, not_in, prefix, gt, gte, lt, lte", r.Op)})
	}
	if len(r.Values) == 0 || len(r.Values) > MaxValues {
		return r, append(errs, FieldError{"values", fmt.Sprintf("give 1 to %d values", MaxValues)})
	}
	if (r.Op == OpEq || r.Op == OpNeq || r.Op == OpPrefix || r.Op.numeric()) && len(r.Values) != 1 {
		return r, append(errs, FieldError{"values", fmt.Sprintf("%s takes exactly one value; use in or not_in for several", r.Op)})
	}
	values := make([]string, 0, len(r.Values))
	var bad *FieldError
	for i, raw := range r.Values {
		v, err := Canonical(raw)
		switch {
		case err != nil:
			bad = &FieldError{"values", fmt.Sprintf("value %d %s", i+1, err)}
		case v == "":
			bad = &FieldError{"values", fmt.Sprintf("value %d is empty; an empty attribute means unknown and matches no rule", i+1)}
		case len(v) > MaxIDBytes:
			bad = &FieldError{"values", fmt.Sprintf("values must be at most %d bytes (value %d is %d)", MaxIDBytes, i+1, len(v))}
		case r.Op.numeric():
			n, ok := ParseNumber(v)
			if !ok && isJSONNumber(v) {
				bad = &FieldError{"values", fmt.Sprintf("%s compares numbers; %q is too large for a number (at most about 1.8e308)", r.Op, raw)}
			} else if !ok {
				bad = &FieldError{"values", fmt.Sprintf("%s compares numbers; %q is not a number (a finite number as JSON writes it, e.g. 18, -2.5, 1e3)", r.Op, raw)}
			}
			r.num = n
		}
		if bad != nil {
			return r, append(errs, *bad)
		}
		values = append(values, v)
	}
	r.Values = values
	return r, errs
}

// CheckUserIDs puts the ids of an allow-list in canonical form, drops empty ones and
// duplicates (ids equal once canonical are one user), and checks the bounds. Every problem is
// reported at once (up to twenty), as FieldErrors named user_ids[i] (from 0), after one for the
// list as a whole (user_ids).
func CheckUserIDs(ids []string) ([]string, error) {
	if len(ids) > MaxAllowList {
		return nil, FieldErrors{{"user_ids", fmt.Sprintf("an allow-list holds at most %d ids (got %d)", MaxAllowList, len(ids))}}
	}
	var errs FieldErrors
	bad := 0
	seen := make(map[string]struct{}, len(ids))
	out := make([]string, 0, len(ids))
	for i, raw := range ids {
		id, err := Canonical(raw)
		var msg string
		switch {
		case err != nil:
			msg = fmt.Sprintf("user id %d %s", i+1, err)
		case len(id) > MaxIDBytes:
			msg = fmt.Sprintf("user id %d is %d bytes; ids are at most %d", i+1, len(id), MaxIDBytes)
		}
		if msg != "" {
			if bad++; bad <= maxProblems {
				errs = append(errs, FieldError{fmt.Sprintf("user_ids[%d]", i), msg})
			}
			continue
		}
		if id == "" {
			continue
		}
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
	}
	if bad > 0 {
		// The list as a whole, for a form that shows one message by its input.
		summary := FieldError{"user_ids", "1 user id is refused: " + errs[0].Message}
		switch {
		case bad > maxProblems:
			summary.Message = fmt.Sprintf("%d user ids are refused; the first %d are listed", bad, maxProblems)
		case bad > 1:
			summary.Message = fmt.Sprintf("%d user ids are refused, the first: %s", bad, errs[0].Message)
		}
		return nil, append(FieldErrors{summary}, errs...)
	}
	return out, nil
}

// matches evaluates the rule against the user's attribute value, already canonical. A value
// that is unknown (missing, null or empty) matches no rule, neq and not_in included.
func (r *Rule) matches(v string) bool {
	if v == "" || r.never {
		return false
	}
	switch r.Op {
	case OpEq:
		return v == r.Values[0]
	case OpNeq:
		return v != r.Values[0]
	case OpIn, OpNotIn:
		return slices.Contains(r.Values, v) == (r.Op == OpIn)
	case OpPrefix:
		return strings.HasPrefix(v, r.Values[0])
	}
	n, ok := ParseNumber(v)
	return ok && r.compare(n)
}

// compare applies a numeric rule to the number n.
func (r *Rule) compare(n float64) bool {
	switch r.Op {
	case OpGt:
		return n > r.num
	case OpGte:
		return n >= r.num
	case OpLt:
		return n < r.num
	}
	return n <= r.num
}
