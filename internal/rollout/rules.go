package rollout

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Op is a rule's comparison.
type Op string

// The operators of attribute rules. The numeric ones (gt, gte, lt, lte) compare numbers: their
// value must be a number, and an attribute that is not a number does not match.
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

// Rule compares one attribute of the user with values. A user without the attribute matches no
// rule (neq and not_in included): targeting production needs the attribute to be known.
type Rule struct {
	Attribute string   `json:"attribute"`
	Op        Op       `json:"op"`
	Values    []string `json:"values"`
	num       float64  // the value of a numeric rule
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

// CheckCohort validates a cohort as given by a person and returns it normalised (ids trimmed and
// deduplicated, rule values parsed). Errors name the field.
func CheckCohort(c Cohort) (Cohort, error) {
	c.Name = strings.TrimSpace(c.Name)
	switch n := utf8.RuneCountInString(c.Name); {
	case n == 0:
		return c, FieldError{"name", "name is required, e.g. internal-testers"}
	case n > MaxCohortNameRune:
		return c, FieldError{"name", fmt.Sprintf("name must be at most %d characters", MaxCohortNameRune)}
	}
	if _, ok := ParseEnv(string(c.Env)); !ok {
		return c, FieldError{"environment", "environment must be production, sandbox or off"}
	}
	if c.UserIDs != nil && c.Rules != nil {
		return c, FieldError{"user_ids", "a cohort is either an allow-list (user_ids) or rules, not both"}
	}
	if c.UserIDs == nil && c.Rules == nil {
		return c, FieldError{"user_ids", "give user_ids (an allow-list) or rules"}
	}
	if c.UserIDs != nil {
		ids, err := CheckUserIDs(c.UserIDs)
		if err != nil {
			return c, err
		}
		c.UserIDs, c.Match = ids, ""
		return c, nil
	}
	switch c.Match {
	case "":
		c.Match = MatchAll
	case MatchAll, MatchAny:
	default:
		return c, FieldError{"match", "match must be all or any"}
	}
	if len(c.Rules) == 0 || len(c.Rules) > MaxRules {
		return c, FieldError{"rules", fmt.Sprintf("a rule cohort needs 1 to %d rules", MaxRules)}
	}
	for i := range c.Rules {
		r, err := checkRule(c.Rules[i])
		if err != nil {
			fe := err.(FieldError)
			fe.Field = fmt.Sprintf("rules[%d].%s", i, fe.Field)
			fe.Message = fmt.Sprintf("rule %d: %s", i+1, fe.Message)
			return c, fe
		}
		c.Rules[i] = r
	}
	return c, nil
}

func checkRule(r Rule) (Rule, error) {
	r.Attribute = strings.TrimSpace(r.Attribute)
	if r.Attribute == "" || len(r.Attribute) > 100 {
		return r, FieldError{"attribute", "attribute must be 1 to 100 characters, e.g. country"}
	}
	known := false
	for _, o := range Ops {
		known = known || o == r.Op
	}
	if !known {
		return r, FieldError{"op", fmt.Sprintf("unknown operator %q; use one of eq, neq, in, not_in, prefix, gt, gte, lt, lte", r.Op)}
	}
	if len(r.Values) == 0 || len(r.Values) > MaxValues {
		return r, FieldError{"values", fmt.Sprintf("give 1 to %d values", MaxValues)}
	}
	for _, v := range r.Values {
		if len(v) > MaxIDBytes {
			return r, FieldError{"values", fmt.Sprintf("values must be at most %d bytes", MaxIDBytes)}
		}
	}
	switch {
	case (r.Op == OpEq || r.Op == OpNeq || r.Op == OpPrefix || r.Op.numeric()) && len(r.Values) != 1:
		return r, FieldError{"values", fmt.Sprintf("%s takes exactly one value; use in or not_in for several", r.Op)}
	case r.Op.numeric():
		n, err := strconv.ParseFloat(strings.TrimSpace(r.Values[0]), 64)
		if err != nil {
			return r, FieldError{"values", fmt.Sprintf("%s compares numbers; %q is not a number", r.Op, r.Values[0])}
		}
		r.num = n
	}
	return r, nil
}

// CheckUserIDs trims, drops empty lines and duplicates, and checks the bounds of an allow-list.
func CheckUserIDs(ids []string) ([]string, error) {
	if len(ids) > MaxAllowList {
		return nil, FieldError{"user_ids", fmt.Sprintf("an allow-list holds at most %d ids (got %d)", MaxAllowList, len(ids))}
	}
	seen := make(map[string]struct{}, len(ids))
	out := make([]string, 0, len(ids))
	for i, id := range ids {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		if len(id) > MaxIDBytes {
			return nil, FieldError{"user_ids", fmt.Sprintf("user id %d is %d bytes; ids are at most %d", i+1, len(id), MaxIDBytes)}
		}
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
	}
	return out, nil
}

// matches evaluates the rule against the user's attribute value.
func (r *Rule) matches(v string, ok bool) bool {
	if !ok {
		return false
	}
	switch r.Op {
	case OpEq:
		return v == r.Values[0]
	case OpNeq:
		return v != r.Values[0]
	case OpIn, OpNotIn:
		in := false
		for _, x := range r.Values {
			if x == v {
				in = true
				break
			}
		}
		return in == (r.Op == OpIn)
	case OpPrefix:
		return strings.HasPrefix(v, r.Values[0])
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return false
	}
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
