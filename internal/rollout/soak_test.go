package rollout

import (
	"strings"
	"testing"
	"time"
)

// TestWithPlanRestartsTheSoak: a plan that changes the current stage's percentage or soak, or
// lands on another stage, restarts the soak; one that leaves the current stage as it was keeps it.
func TestWithPlanRestartsTheSoak(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	now := t0.Add(40 * time.Second)
	week := 7 * 24 * time.Hour
	plan := []Stage{{1, time.Hour}, {5, time.Hour}, {25, time.Hour}, {50, week}, {100, 0}}
	tests := []struct {
		name      string
		stage     int
		stages    []Stage
		wantStage int
		restarted bool
	}{
		{"the issue's example: 40 % with a 30s soak in place of 50 %", 4, []Stage{{1, time.Hour}, {5, time.Hour}, {25, time.Hour}, {40, 30 * time.Second}, {100, 0}}, 4, true},
		{"the same plan", 4, plan, 4, false},
		{"a later stage changes", 4, []Stage{{1, time.Hour}, {5, time.Hour}, {25, time.Hour}, {50, week}, {75, time.Hour}, {100, 0}}, 4, false},
		{"an earlier stage changes", 4, []Stage{{2, time.Hour}, {5, time.Hour}, {25, time.Hour}, {50, week}, {100, 0}}, 4, false},
		{"the current stage's soak shortens", 4, []Stage{{1, time.Hour}, {5, time.Hour}, {25, time.Hour}, {50, time.Minute}, {100, 0}}, 4, true},
		{"the current stage's soak lengthens", 4, []Stage{{1, time.Hour}, {5, time.Hour}, {25, time.Hour}, {50, 2 * week}, {100, 0}}, 4, true},
		{"a stage inserted before: same percentage and soak, another stage", 4, []Stage{{1, time.Hour}, {2, time.Hour}, {5, time.Hour}, {25, time.Hour}, {50, week}, {100, 0}}, 5, true},
		{"a shorter plan lands lower", 4, []Stage{{1, time.Hour}, {5, time.Hour}, {100, 0}}, 2, true},
		{"every new stage is wider: not started", 2, []Stage{{10, time.Hour}, {100, 0}}, 0, true},
		{"not started stays not started", 0, []Stage{{10, time.Minute}, {100, 0}}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(DefaultKey, "s")
			r.Stages, r.Stage, r.StageStartedAt, r.AutoAdvance, r.EnteredBy = plan, tt.stage, t0, true, EnteredByAutoAdvance
			got := r.WithPlan(tt.stages, now)
			if got.Stage != tt.wantStage {
				t.Fatalf("stage %d, want %d", got.Stage, tt.wantStage)
			}
			if restarted := got.StageStartedAt.Equal(now); restarted != tt.restarted {
				t.Fatalf("soak started at %v; restarted %v, want %v", got.StageStartedAt, restarted, tt.restarted)
			}
			if got.Stage != tt.stage && got.EnteredBy != EnteredByPlan {
				t.Errorf("entered by %q after the plan moved it", got.EnteredBy)
			}
			if got.Stage > 0 && got.Stage < len(got.Stages) {
				soak := got.Stages[got.Stage-1].MinSoak
				if ok, why := got.ShouldAdvance(got.StageStartedAt.Add(soak-time.Nanosecond), nil); ok {
					t.Errorf("advances before the stage's own soak is over: %q", why)
				}
			}
		})
	}
}

// TestAutoAdvanceWaitsForVolumeDuringTheSoak: a guardrail that has not seen its minimum volume
// since the stage began holds auto-advance, and says so, unless the plan allows it explicitly.
func TestAutoAdvanceWaitsForVolumeDuringTheSoak(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	r := New(DefaultKey, "s")
	r.AutoAdvance, r.Stages = true, []Stage{{1, time.Hour}, {100, 0}}
	r, _ = r.Advance(t0)
	// The default key-verification guardrail (at least 1) is there too, with no verification made
	// during the soak: verifications are not traffic, so it never holds auto-advance for want of one.
	gs := []Guardrail{{Signal: SignalInitErrors, MaxRate: 0.05, MinVolume: 20, Window: 15 * time.Minute}, {Signal: SignalAPIErrors, MaxRate: 0.02, MinVolume: 50, Window: 15 * time.Minute},
		{Signal: SignalVerifyFailures, MaxRate: 0, MinVolume: 1, Window: 15 * time.Minute}}
	status := func(soak ...int64) []Status {
		sts := Evaluate(gs, func(Guardrail) Figures { return Figures{} })
		for i := range soak {
			sts[i].Soak = Figures{Total: soak[i]}
		}
		return sts
	}
	done := t0.Add(time.Hour)
	tests := []struct {
		name    string
		at      time.Time
		sts     []Status
		without bool
		ok      bool
		why     string
	}{
		{"one waits", done, status(3, 50), false, false, "waiting for data: Init errors (callbacks) has 3 of the 20 observations needed since this stage began"},
		{"two wait", done, status(3, 49), false, false, "waiting for data since this stage began: Init errors (callbacks) has 3 of the 20 observations needed; API 5xx and timeouts has 49 of the 50 observations needed"},
		{"mid-soak, it says so too", t0, status(3, 50), false, false, "soaking until 2026-11-30T13:00:00Z; waiting for data: Init errors"},
		{"enough of each", done, status(20, 50), false, true, "soak done and guardrails healthy"},
		{"the plan says to advance without volume", done, status(0, 0), true, true, "soak done and guardrails healthy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := r
			r.AdvanceWithoutVolume = tt.without
			ok, why := r.ShouldAdvance(tt.at, tt.sts)
			if ok != tt.ok || !strings.HasPrefix(why, tt.why) {
				t.Fatalf("%v %q; want %v %q", ok, why, tt.ok, tt.why)
			}
		})
	}
}

// TestRecentAutoAdvance: a stage entered by auto-advance is "recent" for its soak; one entered
// by hand never is.
func TestRecentAutoAdvance(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	r := New(DefaultKey, "s")
	r.Stages = []Stage{{1, time.Hour}, {5, time.Hour}, {100, 0}}
	r, _ = r.Advance(t0)
	if r.EnteredBy != EnteredByHand || r.RecentAutoAdvance(t0) {
		t.Fatalf("by hand: %q", r.EnteredBy)
	}
	r, _ = r.AdvanceAuto(t0.Add(time.Hour))
	if r.EnteredBy != EnteredByAutoAdvance || !r.RecentAutoAdvance(t0.Add(2*time.Hour-time.Nanosecond)) || r.RecentAutoAdvance(t0.Add(2*time.Hour)) {
		t.Fatalf("auto-advanced: %q", r.EnteredBy)
	}
	r, _ = r.Rollback(t0.Add(time.Hour))
	if r.EnteredBy != EnteredByHand || r.RecentAutoAdvance(t0.Add(time.Hour)) {
		t.Fatalf("rolled back: %q", r.EnteredBy)
	}
	r, _ = r.Resume(t0)
	r.OnBreach = OnBreachRollback
	r, _ = r.AdvanceAuto(t0)
	r, _ = r.OnBreachOf([]Status{{Breached: true}}, t0)
	if r.EnteredBy != EnteredByGuardrail {
		t.Fatalf("rolled back by a breach: %q", r.EnteredBy)
	}
}
