package rollout

import (
	"strconv"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// Benchmarks for a decision, each reported with the same run's baseline: the least any percentage
// decision must do, one XXH64 of the id and a modulo (BenchmarkDecide/bare_hash).

var sink Decision
var sinkInt int

func BenchmarkDecide(b *testing.B) {
	ids := sequentialIDs(4096)
	user := func(i int) User { return User{ID: ids[i&4095], Attributes: attrs} }

	b.Run("bare_hash", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sinkInt = int(xxhash.Sum64String(ids[i&4095]) % BucketCount)
		}
	})
	b.Run("percentage", func(b *testing.B) {
		snap := Compile(started(2, 1, 5, 25), nil, 1)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sink = snap.Decide(user(i))
		}
	})
	b.Run("10_rules_and_100k_allow_list", func(b *testing.B) {
		snap := Compile(started(2, 1, 5, 25), benchCohorts(b), 1)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sink = snap.Decide(user(i)) // misses every cohort: the worst case, all evaluated
		}
	})
	b.Run("with_reach", func(b *testing.B) {
		snap := Compile(started(2, 1, 5, 25), nil, 1)
		var reach Reach
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			d := snap.Decide(user(i))
			reach.Observe(d)
			sink = d
		}
	})
}

var attrs = map[string]string{"country": "DE", "plan": "pro", "age_days": "40", "app_version": "5.2.1", "team": "ext"}

// benchCohorts are ten attribute rules over five cohorts and a 100,000-id allow-list.
func benchCohorts(b *testing.B) []Cohort {
	ids := make([]string, 100_000)
	for i := range ids {
		ids[i] = "allow-" + strconv.Itoa(i)
	}
	raw := []Cohort{
		{Name: "blocked", Env: Off, UserIDs: []string{"bad-1", "bad-2"}},
		{Name: "pilot", Env: Production, UserIDs: ids},
		{Name: "nordics", Env: Production, Rules: []Rule{{Attribute: "country", Op: OpIn, Values: []string{"SE", "NO", "DK", "FI", "IS", "AX", "FO", "GL", "SJ"}}, {Attribute: "plan", Op: OpEq, Values: []string{"pro"}}}},
		{Name: "veterans", Env: Production, Rules: []Rule{{Attribute: "age_days", Op: OpGte, Values: []string{"365"}}, {Attribute: "plan", Op: OpNeq, Values: []string{"free"}}}},
		{Name: "internal", Env: Sandbox, Match: MatchAny, Rules: []Rule{{Attribute: "team", Op: OpEq, Values: []string{"internal"}}, {Attribute: "email", Op: OpPrefix, Values: []string{"qa+"}}}},
		{Name: "new-app", Env: Production, Rules: []Rule{{Attribute: "app_version", Op: OpPrefix, Values: []string{"6."}}, {Attribute: "country", Op: OpNotIn, Values: []string{"US", "CA"}}}},
		{Name: "small", Env: Production, Rules: []Rule{{Attribute: "age_days", Op: OpLt, Values: []string{"2"}}, {Attribute: "plan", Op: OpIn, Values: []string{"team", "pro"}}}},
	}
	out := make([]Cohort, 0, len(raw))
	for _, c := range raw {
		c, err := CheckCohort(c)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}
