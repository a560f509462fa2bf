package rollout

import (
	"strconv"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// Benchmarks for a decision, read as ratios to the same run's baselines: the least any
// percentage decision must do, hashing the same bytes (salt, ":", id) two ways: xxhash.Sum64String
// of the bytes already joined (bare_sum64string) and xxhash's streaming Digest fed the three
// parts (bare_digest). BENCHMARKS.md has the figures.

var sink Decision
var sinkInt int

func BenchmarkDecide(b *testing.B) {
	ids := sequentialIDs(4096)
	r := started(2, 1, 5, 25)
	joined := make([]string, len(ids))
	for i, id := range ids {
		joined[i] = r.Salt + ":" + id
	}
	decide := func(b *testing.B, snap *Snapshot, user func(i int) User) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sink = snap.Decide(user(i))
		}
	}

	b.Run("bare_sum64string", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sinkInt = int(xxhash.Sum64String(joined[i&4095]) % BucketCount)
		}
	})
	b.Run("bare_digest", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			var d xxhash.Digest
			d.Reset()
			d.WriteString(r.Salt)
			d.WriteString(":")
			d.WriteString(ids[i&4095])
			sinkInt = int(d.Sum64() % BucketCount)
		}
	})
	b.Run("percentage", func(b *testing.B) {
		decide(b, Compile(r, nil, 1), func(i int) User { return User{ID: ids[i&4095], Attributes: attrs} })
	})
	b.Run("10_rules_and_100k_allow_list", func(b *testing.B) {
		// The user misses every cohort after evaluating every one of the ten rules (see
		// TestBenchUserEvaluatesEveryRule): the worst case, canonical forms included.
		decide(b, Compile(r, benchCohorts(b), 1), func(i int) User { return User{ID: ids[i&4095], Attributes: attrs} })
	})
	b.Run("with_reach", func(b *testing.B) {
		snap := Compile(r, nil, 1)
		var reach Reach
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			d := snap.Decide(User{ID: ids[i&4095], Attributes: attrs})
			reach.Observe(d)
			sink = d
		}
	})
}

// attrs is the benchmark's user: in the nordics on the free plan, a veteran, not internal, on
// app 6: every all-cohort's first rule holds and its second fails, and the any-cohort's two fail.
var attrs = map[string]string{"country": "SE", "plan": "free", "age_days": "400", "app_version": "6.1.0", "team": "ext", "email": "a@example.com"}

// benchRules are ten attribute rules over five cohorts.
var benchRules = []Cohort{
	{Name: "nordics", Env: Production, Rules: []Rule{{Attribute: "country", Op: OpIn, Values: []string{"SE", "NO", "DK", "FI", "IS", "AX", "FO", "GL", "SJ"}}, {Attribute: "plan", Op: OpEq, Values: []string{"pro"}}}},
	{Name: "veterans", Env: Production, Rules: []Rule{{Attribute: "age_days", Op: OpGte, Values: []string{"365"}}, {Attribute: "plan", Op: OpNeq, Values: []string{"free"}}}},
	{Name: "internal", Env: Sandbox, Match: MatchAny, Rules: []Rule{{Attribute: "team", Op: OpEq, Values: []string{"internal"}}, {Attribute: "email", Op: OpPrefix, Values: []string{"qa+"}}}},
	{Name: "new-app", Env: Production, Rules: []Rule{{Attribute: "app_version", Op: OpPrefix, Values: []string{"6."}}, {Attribute: "country", Op: OpNotIn, Values: []string{"SE", "NO", "DK", "FI"}}}},
	{Name: "small", Env: Production, Rules: []Rule{{Attribute: "plan", Op: OpIn, Values: []string{"team", "free"}}, {Attribute: "age_days", Op: OpLt, Values: []string{"2"}}}},
}

// benchCohorts are a block-list, a 100,000-id allow-list and benchRules.
func benchCohorts(b testing.TB) []Cohort {
	ids := make([]string, 100_000)
	for i := range ids {
		ids[i] = "allow-" + strconv.Itoa(i)
	}
	raw := append([]Cohort{
		{Name: "blocked", Env: Off, UserIDs: []string{"bad-1", "bad-2"}},
		{Name: "pilot", Env: Production, UserIDs: ids},
	}, benchRules...)
	out := make([]Cohort, 0, len(raw))
	for _, c := range raw {
		c.Rules = append([]Rule(nil), c.Rules...)
		c, err := CheckCohort(c)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// TestBenchUserEvaluatesEveryRule keeps the worst-case benchmark honest: its user misses every
// cohort only at the last rule of each (all-cohorts), or at every rule (any-cohorts), so a
// decision evaluates all ten rules.
func TestBenchUserEvaluatesEveryRule(t *testing.T) {
	evaluated := 0
	for _, c := range benchCohorts(t)[2:] {
		for i := range c.Rules {
			r := &c.Rules[i]
			hit := r.matches(attrs[r.Attribute])
			evaluated++
			last := i == len(c.Rules)-1
			if c.Match == MatchAny && hit || c.Match == MatchAll && hit == last {
				t.Fatalf("cohort %s stops at rule %d (hit %v)", c.Name, i+1, hit)
			}
		}
	}
	if evaluated != 10 {
		t.Fatalf("%d rules evaluated, want 10", evaluated)
	}
	d := Compile(started(2, 1, 5, 25), benchCohorts(t), 1).Decide(User{ID: "user-1", Attributes: attrs})
	if d.Reason != ReasonPercentage && d.Reason != ReasonDefault {
		t.Fatalf("the bench user is decided by %s (%s)", d.Reason, d.Cohort)
	}
}
