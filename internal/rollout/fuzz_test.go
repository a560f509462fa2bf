package rollout

import (
	"encoding/json"
	"testing"
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
			if _, ok := err.(FieldError); !ok {
				t.Fatalf("error is not a FieldError: %v", err)
			}
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
