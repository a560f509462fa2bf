package launch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/dbtest"
	"github.com/tensfer-golive/dashboard/internal/environment"
	"github.com/tensfer-golive/dashboard/internal/events"
	"github.com/tensfer-golive/dashboard/internal/metrics"
	"github.com/tensfer-golive/dashboard/internal/rollout"
	"github.com/tensfer-golive/dashboard/internal/secrets"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

type fixture struct {
	dir    string
	store  dbtest.Store
	box    *secrets.Box
	db     *db.DB
	events *events.Service
	svc    *Service
	now    time.Time
	reg    *metrics.Metrics
}

var who = db.Audit{Actor: "test"}

// newFixture runs the rollout over a real SQLite file with the real event pipeline as the
// source of guardrail figures, at a clock the test moves.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	st := dbtest.New(t)
	f := &fixture{dir: st.Dir, store: st, now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	f.open(t)
	return f
}

func (f *fixture) clock() time.Time { return f.now }

// open (re)starts everything on the fixture's directory, as a restart of the server would.
func (f *fixture) open(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	d, err := f.store.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := secrets.LoadKey(f.dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	box, _ := secrets.NewBox(key)
	ev, err := events.New(ctx, events.Config{DB: d, Box: box})
	if err != nil {
		t.Fatal(err)
	}
	reg := metrics.New(metrics.BuildInfo{})
	svc, err := New(ctx, Config{DB: d, Now: f.clock, Figures: ev.GuardrailFigures, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	f.db, f.events, f.svc, f.box, f.reg = d, ev, svc, box, reg
	t.Cleanup(f.close)
}

func (f *fixture) close() {
	if f.events != nil {
		f.events.Close()
		f.db.Close()
		f.events = nil
	}
}

func (f *fixture) restart(t *testing.T) {
	t.Helper()
	if err := f.svc.SaveReach(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.close()
	f.open(t)
}

func (f *fixture) act(t *testing.T, a Action) rollout.Rollout {
	t.Helper()
	r, err := f.svc.Act(context.Background(), a, 0, 0, false, who)
	if err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	return r
}

func TestDecisionsSurviveARestartAndFollowChangesAtOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, _, err := f.svc.CreateCohort(ctx, CohortInput{Name: "pilot", Env: "production", UserIDs: []string{"u_pilot"}}, 0, who); err != nil {
		t.Fatal(err)
	}
	if d := f.svc.Decide(rollout.User{ID: "u_pilot"}); d.Env != rollout.Production || d.Cohort != "pilot" {
		t.Fatalf("a new cohort is not seen by the next decision: %+v", d)
	}
	f.act(t, Advance)
	f.act(t, Advance) // 5 %
	before := map[string]rollout.Decision{}
	for i := range 2000 {
		u := rollout.User{ID: fmt.Sprintf("user-%d", i)}
		before[u.ID] = f.svc.Decide(u)
	}
	reach := f.svc.Reach(2)
	if reach < 70 || reach > 130 {
		t.Errorf("reach at 5 %% of 2000 users: %d", reach)
	}
	f.restart(t)
	for id, d := range before {
		if got := f.svc.Decide(rollout.User{ID: id}); got.Env != d.Env || got.Bucket != d.Bucket {
			t.Fatalf("%s: %s before the restart, %s after", id, d.Env, got.Env)
		}
	}
	if got := f.svc.Reach(2); got != reach {
		t.Errorf("reach after the restart: %d, want %d", got, reach)
	}
	f.act(t, Kill)
	for id := range before {
		if d := f.svc.Decide(rollout.User{ID: id}); d.Env == rollout.Production {
			t.Fatalf("%s still goes to production after the kill", id)
		}
	}
	if d := f.svc.Decide(rollout.User{ID: "u_pilot"}); d.Env != rollout.Off || d.Reason != rollout.ReasonKilled {
		t.Fatalf("kill does not beat the pilot cohort: %+v", d)
	}
}

func TestVersionsKeepTwoOperatorsFromOverwritingEachOther(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	v := f.svc.Snapshot().Rollout.Version
	if _, err := f.svc.Act(ctx, Advance, 0, v, false, who); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Act(ctx, Advance, 0, v, false, who); !errors.Is(err, ErrStale) {
		t.Fatalf("a change against an old version: %v", err)
	}
	// A new cohort touches nothing that changed: it is not refused (TestCohortVersionsCheckWhatTheEditTouches).
	if _, _, err := f.svc.CreateCohort(ctx, CohortInput{Name: "x", Env: "off", UserIDs: []string{"a"}}, v, who); err != nil {
		t.Fatalf("a new cohort against an old version: %v", err)
	}
	if _, err := f.svc.Act(ctx, Rollback, 0, 0, false, who); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Act(ctx, Rollback, 0, 0, false, who)
	var p validation.Problem
	if !errors.As(err, &p) || !strings.Contains(string(p), "not started") {
		t.Fatalf("rollback from not started: %v", err)
	}
}

func TestConfigureKeepsWhatItDoesNotName(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r, err := f.svc.Configure(ctx, Plan{Stages: &[]rollout.StageInput{{Percent: 10, MinSoak: "1h"}, {Percent: 100}}}, 0, who)
	if err != nil || len(r.Stages) != 2 || len(r.Guardrails) != 4 || r.OnBreach != rollout.OnBreachPause {
		t.Fatalf("configure stages: %+v %v", r, err)
	}
	_, err = f.svc.Configure(ctx, Plan{Stages: &[]rollout.StageInput{{Percent: 50}, {Percent: 10}}}, 0, who)
	var fe validation.Errors
	if !errors.As(err, &fe) || !fe.Has("stages[1].percent") {
		t.Fatalf("decreasing plan: %v", err)
	}
	_, err = f.svc.Configure(ctx, Plan{Guardrails: &[]GuardrailInput{{Signal: "latency", MaxRate: 0.1, MinVolume: 1, Window: "5m"}}}, 0, who)
	if !errors.As(err, &fe) || !fe.Has("guardrails[0].signal") {
		t.Fatalf("unknown signal: %v", err)
	}
	if got := f.svc.Snapshot().Rollout; len(got.Stages) != 2 || got.Stages[0].Percent != 10 {
		t.Fatalf("a refused change stored something: %+v", got.Stages)
	}
	entries, _, _ := f.db.ListAudit(ctx, db.AuditFilter{Action: "rollout.configure", Limit: 5})
	if len(entries) != 1 || !strings.Contains(string(entries[0].Before), `"percent":25`) || !strings.Contains(string(entries[0].After), `"min_soak":"1h"`) {
		t.Fatalf("configure audit: %+v", entries)
	}
}

// sendCallbacks stores callbacks as the public endpoint does: from client, for users, each with a
// token minted with beaconKey when one is given (as the integrator's backend does).
func (f *fixture) sendCallbacks(t *testing.T, client, event string, users int, beaconKey ...string) {
	t.Helper()
	for i := range users {
		user := fmt.Sprintf("u-%s-%d", client, i)
		token := ""
		if len(beaconKey) > 0 {
			token = events.MintBeaconToken(beaconKey[0], "production", user, time.Now().Add(time.Hour))
		}
		body := fmt.Sprintf(`{"event":%q,"user_id":%q,"event_id":"%s-%s-%d","token":%q}`, event, user, event, client, i, token)
		if _, err := f.events.ReceiveCallback(context.Background(), "production", []byte(body), http.Header{}, client); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGuardrailsTripOnRealSignalsNotOnOneForgingClient(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.act(t, Advance)
	f.now = time.Now() // the writer stamps events with the real clock; guardrail windows end now

	envs := environment.New(environment.Config{DB: f.db, Box: f.box, SecretsChanged: f.events.InvalidateSecrets})
	_, key, err := envs.BeaconKey(ctx, "production")
	if err != nil {
		t.Fatal(err)
	}
	// One script posting 500 forged init errors with 500 user ids and no valid token counts for nothing.
	f.sendCallbacks(t, "203.0.113.9", "initialization_error", 500)
	if err := f.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if r := f.svc.Snapshot().Rollout; r.State != rollout.Active {
		t.Fatalf("one forging client tripped the guardrail: %+v", r.Held)
	}
	// Nor can it blind the guardrail: 40 real users fail (their tokens verify), and the script's
	// thousand successes count for nothing.
	f.sendCallbacks(t, "198.51.100.77", "screen_loaded", 1000)
	for i := range 40 {
		f.sendCallbacks(t, fmt.Sprintf("192.0.2.%d", i), "initialization_error", 1, key)
	}
	for i := range 20 {
		f.sendCallbacks(t, fmt.Sprintf("192.0.2.%d", 100+i), "screen_loaded", 1, key)
	}
	h, err := f.svc.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Breaches) != 1 || h.Breaches[0].Figures.Bad != 40 || h.Breaches[0].Figures.Total != 60 {
		t.Fatalf("health: %+v", h.Statuses)
	}
	if err := f.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	r := f.svc.Snapshot().Rollout
	if r.State != rollout.Paused || !strings.Contains(r.Held, "Init errors") {
		t.Fatalf("a real breach did not pause the rollout: %s %q", r.State, r.Held)
	}
	entries, _, _ := f.db.ListAudit(ctx, db.AuditFilter{Action: "rollout.guardrail_breach", Limit: 5})
	if len(entries) != 1 || !strings.Contains(string(entries[0].After), `"bad":40`) {
		t.Fatalf("breach audit: %+v", entries)
	}
	// The metrics see what the guardrail saw, and the trip.
	st := f.svc.metricsState()
	if st.State != "paused" || !st.Held || st.Stage != 1 || st.GuardrailsCheckedAt.IsZero() {
		t.Fatalf("metrics state: %+v", st)
	}
	var init metrics.GuardrailState
	for _, g := range st.Guardrails {
		if g.Signal == string(rollout.SignalInitErrors) {
			init = g
		}
	}
	if !init.Breached || init.Bad != 40 || init.Total != 60 || init.MaxRatio != 0.05 || init.Window != 15*time.Minute {
		t.Fatalf("init_errors guardrail in the metrics: %+v", init)
	}
	if got := counterValue(t, f.reg, "dashboard_rollout_guardrail_trips_total", "init_errors"); got != 1 {
		t.Fatalf("trips of init_errors: %v, want 1", got)
	}
}

// counterValue reads one series of a counter from the registry (labels given as values, in the
// metric's label order).
func counterValue(t *testing.T, reg *metrics.Metrics, name string, labels ...string) float64 {
	t.Helper()
	fams, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for i, l := range m.GetLabel() {
				if i >= len(labels) || l.GetValue() != labels[i] {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// TestDecisionsAreCounted: decisions served are counted by environment and reason, a person's
// check is not, and every reason the rollout gives has a label value of its own.
func TestDecisionsAreCounted(t *testing.T) {
	f := newFixture(t)
	for range 3 {
		f.svc.Decide(rollout.User{ID: "u1"}) // not started
	}
	f.svc.Check(rollout.User{ID: "u1"})
	if got := counterValue(t, f.reg, "dashboard_rollout_decisions_total", "off", "not_started"); got != 3 {
		t.Fatalf("not_started decisions: %v, want 3", got)
	}
	for _, r := range []rollout.Reason{rollout.ReasonBlocked, rollout.ReasonCohort, rollout.ReasonKilled, rollout.ReasonPercentage, rollout.ReasonNotStarted, rollout.ReasonDefault} {
		if !slices.Contains(metrics.DecisionReasons, string(r)) {
			t.Errorf("reason %s has no label value", r)
		}
	}
	for _, e := range []rollout.Env{rollout.Production, rollout.Sandbox, rollout.Off} {
		if !slices.Contains(metrics.DecisionEnvs, string(e)) {
			t.Errorf("environment %s has no label value", e)
		}
	}
}

// BenchmarkServiceDecide is Service.Decide (snapshot, reach and the decision counter), with the
// counter and without it in the same run: the difference is what counting costs.
func BenchmarkServiceDecide(b *testing.B) {
	ctx := context.Background()
	for _, withMetrics := range []bool{false, true} {
		name := "no_metrics"
		if withMetrics {
			name = "with_metrics"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			d, err := db.Open(ctx, dir)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			cfg := Config{DB: d}
			if withMetrics {
				cfg.Metrics = metrics.New(metrics.BuildInfo{})
			}
			svc, err := New(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := svc.Act(ctx, Advance, 0, 0, false, who); err != nil {
				b.Fatal(err)
			}
			ids := make([]string, 4096)
			for i := range ids {
				ids[i] = fmt.Sprintf("user-%d", i)
			}
			attrs := map[string]string{"country": "SE"}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				sinkDecision = svc.Decide(rollout.User{ID: ids[i&4095], Attributes: attrs})
			}
		})
	}
}

var sinkDecision rollout.Decision

func TestAutoAdvanceAfterTheSoakAcrossARestartOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	auto := true // and advance without volume: this test has no traffic
	if _, err := f.svc.Configure(ctx, Plan{AutoAdvance: &auto, AdvanceWithoutVolume: &auto, Stages: &[]rollout.StageInput{{Percent: 1, MinSoak: "1h"}, {Percent: 5, MinSoak: "1h"}, {Percent: 100}}}, 0, who); err != nil {
		t.Fatal(err)
	}
	f.act(t, Advance)
	f.now = f.now.Add(59 * time.Minute)
	if err := f.svc.Tick(ctx); err != nil || f.svc.Snapshot().Rollout.Stage != 1 {
		t.Fatalf("advanced mid-soak: %v", err)
	}
	f.restart(t) // timers are not kept in memory: the soak is read from the database
	f.now = f.now.Add(2 * time.Minute)
	h, _ := f.svc.Health(ctx)
	if !h.Advance {
		t.Fatalf("soak done but not due: %q", h.Why)
	}
	// Two servers (or two ticks) race on one soak: it advances once.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := f.svc.Tick(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if r := f.svc.Snapshot().Rollout; r.Stage != 2 || !r.StageStartedAt.Equal(f.now) {
		t.Fatalf("after the soak: stage %d since %v", r.Stage, r.StageStartedAt)
	}
	entries, _, _ := f.db.ListAudit(ctx, db.AuditFilter{Action: "rollout.advance", Limit: 10})
	if len(entries) != 2 || entries[0].Actor != "system (auto-advance)" {
		t.Fatalf("advances audited: %d, newest by %q", len(entries), entries[0].Actor)
	}
}

// TestAPlanSaveRestartsTheSoak is the example: at 50 % (soak 7d) for 40 s, a plan with
// 40 % (soak 30s) in place of 50 % moves the rollout to 40 %, where it must soak its full 30 s
// before auto-advance takes it on, one stage at a time.
func TestAPlanSaveRestartsTheSoak(t *testing.T) {
	f := newSigFixture(t)
	ctx := context.Background()
	auto := true
	plan := func(fourth rollout.StageInput) *[]rollout.StageInput {
		return &[]rollout.StageInput{{Percent: 1, MinSoak: "1h"}, {Percent: 5, MinSoak: "1h"}, {Percent: 25, MinSoak: "1h"}, fourth, {Percent: 100}}
	}
	if _, err := f.svc.Configure(ctx, Plan{Stages: plan(rollout.StageInput{Percent: 50, MinSoak: "7d"}), AutoAdvance: &auto}, 0, who); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, err := f.svc.Act(ctx, Advance, 0, f.svc.Snapshot().Version(), false, who); err != nil {
			t.Fatal(err)
		}
	}
	f.healthy()
	f.now = f.now.Add(40 * time.Second)
	r, err := f.svc.Configure(ctx, Plan{Stages: plan(rollout.StageInput{Percent: 40, MinSoak: "30s"})}, 0, who)
	if err != nil || r.Stage != 4 || r.Percent() != 40 || !r.StageStartedAt.Equal(f.now) {
		t.Fatalf("after the new plan: stage %d at %v since %v (%v); want 40 %% since %v", r.Stage, r.Percent(), r.StageStartedAt, err, f.now)
	}
	f.healthy() // volume during the new soak
	for _, step := range []struct {
		wait  time.Duration
		stage int
	}{{0, 4}, {29 * time.Second, 4}, {time.Second, 5}, {time.Hour, 5}} {
		f.now = f.now.Add(step.wait)
		if err := f.svc.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if got := f.stored(t).Stage; got != step.stage {
			t.Fatalf("%v into the new soak: stage %d, want %d", f.now.Sub(r.StageStartedAt), got, step.stage)
		}
	}
}

// TestAutoAdvanceWaitsForMinimumVolumeDuringTheSoak: volume before the stage began does not
// count, volume anywhere in the soak does, and the plan may say to advance without it.
func TestAutoAdvanceWaitsForMinimumVolumeDuringTheSoak(t *testing.T) {
	f := newSigFixture(t)
	ctx := context.Background()
	auto := true
	guards := []GuardrailInput{{Signal: rollout.SignalInitErrors, MaxRate: 0.05, MinVolume: 20, Window: "15m"}}
	if _, err := f.svc.Configure(ctx, Plan{Stages: &[]rollout.StageInput{{Percent: 1, MinSoak: "1h"}, {Percent: 5, MinSoak: "1h"}, {Percent: 100}}, Guardrails: &guards, AutoAdvance: &auto}, 0, who); err != nil {
		t.Fatal(err)
	}
	f.sig.add(f.now, rollout.SignalInitErrors, 0, 25) // before the stage: not evidence about it
	f.now = f.now.Add(time.Minute)
	f.act(t, Advance)
	start := f.now
	f.sig.add(start.Add(5*time.Minute), rollout.SignalInitErrors, 0, 3)
	f.now = start.Add(time.Hour)
	if err := f.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := f.svc.Health(ctx)
	want := "waiting for data: Init errors (callbacks) has 3 of the 20 observations needed since this stage began"
	if err != nil || f.stored(t).Stage != 1 || h.Why != want || len(h.Waiting) != 1 {
		t.Fatalf("stage %d, why %q (%v); want stage 1, %q", f.stored(t).Stage, h.Why, err, want)
	}
	// Seventeen more, early in the soak and outside the guardrail's window now: they count.
	f.sig.add(start.Add(10*time.Minute), rollout.SignalInitErrors, 0, 17)
	if err := f.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if r := f.stored(t); r.Stage != 2 || r.EnteredBy != rollout.EnteredByAutoAdvance {
		t.Fatalf("with the volume seen: stage %d entered by %q", r.Stage, r.EnteredBy)
	}
	// No volume at all at stage 2: held, until the plan says to advance without it.
	f.now = f.now.Add(time.Hour)
	if err := f.svc.Tick(ctx); err != nil || f.stored(t).Stage != 2 {
		t.Fatalf("advanced on no volume: %v", err)
	}
	if _, err := f.svc.Configure(ctx, Plan{AdvanceWithoutVolume: &auto}, 0, who); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Tick(ctx); err != nil || f.stored(t).Stage != 3 {
		t.Fatalf("advance_without_volume did not advance: %v", err)
	}
	entries, _, _ := f.db.ListAudit(ctx, db.AuditFilter{Action: "rollout.configure", Limit: 1})
	if len(entries) != 1 || !strings.Contains(string(entries[0].After), `"advance_without_volume":true`) {
		t.Fatalf("the setting is not audited: %+v", entries)
	}
}

// TestTheRealPipelineFeedsTheSoakVolume: the soak's volume comes from the stored callbacks.
func TestTheRealPipelineFeedsTheSoakVolume(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.now = time.Now() // the writer stamps events with the real clock
	auto := true
	guards := []GuardrailInput{{Signal: rollout.SignalInitErrors, MaxRate: 0.05, MinVolume: 20, Window: "15m"}}
	if _, err := f.svc.Configure(ctx, Plan{Stages: &[]rollout.StageInput{{Percent: 1, MinSoak: "1m"}, {Percent: 100}}, Guardrails: &guards, AutoAdvance: &auto}, 0, who); err != nil {
		t.Fatal(err)
	}
	f.act(t, Advance)
	// Only signed beacons feed a guardrail: the volume is counted in verified users.
	envs := environment.New(environment.Config{DB: f.db, Box: f.box, SecretsChanged: f.events.InvalidateSecrets})
	_, key, err := envs.BeaconKey(ctx, "production")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		f.sendCallbacks(t, fmt.Sprintf("192.0.2.%d", i), "screen_loaded", 1, key)
	}
	f.now = f.now.Add(2 * time.Minute)
	if err := f.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if h, _ := f.svc.Health(ctx); !strings.Contains(h.Why, "has 3 of the 20 observations needed") || f.svc.Snapshot().Rollout.Stage != 1 {
		t.Fatalf("why %q at stage %d", h.Why, f.svc.Snapshot().Rollout.Stage)
	}
	for i := 3; i < 20; i++ {
		f.sendCallbacks(t, fmt.Sprintf("192.0.2.%d", i), "screen_loaded", 1, key)
	}
	if err := f.svc.Tick(ctx); err != nil || f.svc.Snapshot().Rollout.Stage != 2 {
		t.Fatalf("20 verified users seen, not advanced: %v", err)
	}
}

// TestAVersionlessAdvanceRightAfterAnAutoAdvanceIsRefused: it would widen production twice for
// one soak; the version seen makes it deliberate, and after the soak it is an ordinary advance.
func TestAVersionlessAdvanceRightAfterAnAutoAdvanceIsRefused(t *testing.T) {
	f := newSigFixture(t)
	ctx := context.Background()
	auto := true
	if _, err := f.svc.Configure(ctx, Plan{Stages: &[]rollout.StageInput{{Percent: 1, MinSoak: "1h"}, {Percent: 5, MinSoak: "1h"}, {Percent: 25, MinSoak: "1h"}, {Percent: 50, MinSoak: "1h"}, {Percent: 100}},
		AutoAdvance: &auto, AdvanceWithoutVolume: &auto}, 0, who); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Act(ctx, Advance, 0, 0, false, who); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(time.Hour)
	if err := f.svc.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	auditsBefore, _, _ := f.db.ListAudit(ctx, db.AuditFilter{Limit: 100})
	f.now = f.now.Add(10 * time.Minute)
	_, err := f.svc.Act(ctx, Advance, 0, 0, false, who)
	var ae *AutoAdvancedError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "the rollout auto-advanced to 5 %") || !strings.Contains(err.Error(), "send the version you saw") {
		t.Fatalf("a versionless advance 10m after an auto-advance: %v", err)
	}
	if auditsAfter, _, _ := f.db.ListAudit(ctx, db.AuditFilter{Limit: 100}); f.stored(t).Stage != 2 || len(auditsAfter) != len(auditsBefore) {
		t.Fatalf("the refused advance changed something: stage %d", f.stored(t).Stage)
	}
	if _, err := f.svc.Act(ctx, Advance, 0, f.stored(t).Version, false, who); err != nil || f.stored(t).Stage != 3 {
		t.Fatalf("an advance with the version seen: %v", err)
	}
	// Entered by hand: a versionless advance goes through at once.
	if _, err := f.svc.Act(ctx, Advance, 0, 0, false, who); err != nil || f.stored(t).Stage != 4 {
		t.Fatalf("a versionless advance after one by hand: %v", err)
	}
}

// TestAKillIsNeverRefusedForBeingLate: whatever the version says, a kill works, and a second
// kill answers the state without a new audit row.
func TestAKillIsNeverRefusedForBeingLate(t *testing.T) {
	f := newSigFixture(t)
	ctx := context.Background()
	v := f.stored(t).Version
	f.act(t, Advance)
	f.act(t, Pause) // a guardrail (or a colleague) moved the rollout since the page was loaded
	for i, expect := range []int64{v, v, 0, 9999} {
		r, err := f.svc.Act(ctx, Kill, 0, expect, false, who)
		if err != nil || r.State != rollout.Killed {
			t.Fatalf("kill %d against version %d: %s %v", i, expect, r.State, err)
		}
	}
	if entries, _, _ := f.db.ListAudit(ctx, db.AuditFilter{Action: "rollout.kill", Limit: 10}); len(entries) != 1 {
		t.Fatalf("%d kill audit rows, want 1", len(entries))
	}
}

// TestWideningWhileBreachedNeedsTheOverride: advance and resume name the breached guardrails
// and change nothing, unless overridden, which the audit row records; the safe actions are never
// held by a breach.
func TestWideningWhileBreachedNeedsTheOverride(t *testing.T) {
	f := newSigFixture(t)
	ctx := context.Background()
	f.act(t, Advance)
	if _, err := f.svc.Act(ctx, Advance, 0, 0, true, who); err != nil {
		t.Fatal(err)
	}
	if e, _, _ := f.db.ListAudit(ctx, db.AuditFilter{Action: "rollout.advance", Limit: 1}); strings.Contains(string(e[0].After), "override") {
		t.Fatalf("an override with nothing breached is recorded as one: %s", e[0].After)
	}
	f.sig.add(f.now, rollout.SignalAPIErrors, 10, 50)
	for _, act := range []Action{Advance, Pause, Resume} {
		before := f.stored(t)
		_, err := f.svc.Act(ctx, act, 0, 0, false, who)
		var be *BreachedError
		if act == Pause {
			if err != nil {
				t.Fatalf("pause while breached: %v", err)
			}
			continue
		}
		if !errors.As(err, &be) || !slices.Equal(be.Labels(), []string{"API 5xx and timeouts"}) || !strings.HasPrefix(err.Error(), "guardrails are breached: API 5xx and timeouts: 10 of 50") {
			t.Fatalf("%s while breached: %v", act, err)
		}
		if after := f.stored(t); after.Version != before.Version {
			t.Fatalf("a refused %s changed the rollout", act)
		}
		r, err := f.svc.Act(ctx, act, 0, 0, true, who)
		if err != nil {
			t.Fatalf("%s with the override: %v", act, err)
		}
		e, _, _ := f.db.ListAudit(ctx, db.AuditFilter{Action: "rollout." + string(act), Limit: 1})
		if !strings.Contains(string(e[0].After), `"override_guardrails":true`) || !strings.Contains(string(e[0].After), `"breached":["api_errors"]`) {
			t.Fatalf("%s with the override is not audited as one: %s", act, e[0].After)
		}
		if act == Resume && r.State != rollout.Active {
			t.Fatalf("resume with the override: %s", r.State)
		}
	}
	for _, act := range []Action{Rollback, Kill} {
		if _, err := f.svc.Act(ctx, act, 0, 0, false, who); err != nil {
			t.Fatalf("%s while breached: %v", act, err)
		}
	}
}

// act applies an action without a version or override.
func (f *sigFixture) act(t *testing.T, a Action) rollout.Rollout {
	t.Helper()
	r, err := f.svc.Act(context.Background(), a, 0, 0, false, who)
	if err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	return r
}

func TestDecideIsRaceFreeUnderPlanChanges(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				d := f.svc.Decide(rollout.User{ID: fmt.Sprintf("w%d-%d", w, i), Attributes: map[string]string{"country": "SE"}})
				if d.Env == "" {
					t.Error("empty decision")
					return
				}
			}
		})
	}
	for i := range 10 {
		f.act(t, Advance)
		if _, _, err := f.svc.CreateCohort(ctx, CohortInput{Name: fmt.Sprintf("c%d", i), Env: "sandbox", Rules: []rollout.Rule{{Attribute: "country", Op: rollout.OpEq, Values: []string{"SE"}}}}, 0, who); err != nil {
			t.Fatal(err)
		}
		f.act(t, Rollback)
		f.act(t, Resume)
	}
	close(stop)
	wg.Wait()
}

func TestCohortsImportExportAndBadInput(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, _, err := f.svc.CreateCohort(ctx, CohortInput{Name: "beta", Env: "production"}, 0, who)
	if err != nil {
		t.Fatal(err)
	}
	var file strings.Builder
	file.WriteString("user_id,plan\n")
	for i := range 100_000 {
		fmt.Fprintf(&file, "user-%d,pro\n", i)
	}
	file.WriteString("user-7,dup\n")
	start := time.Now()
	n, _, err := f.svc.ImportMembers(ctx, c.ID, []byte(file.String()), 0, who)
	if err != nil || n != 100_000 {
		t.Fatalf("import: %d %v", n, err)
	}
	t.Logf("imported 100k ids in %v", time.Since(start))
	if d := f.svc.Decide(rollout.User{ID: "user-99999"}); d.Cohort != "beta" {
		t.Fatalf("an imported id is not in the cohort: %+v", d)
	}
	ids, _ := f.svc.Members(ctx, c.ID)
	if len(ids) != 100_000 {
		t.Fatalf("export: %d ids", len(ids))
	}
	lines, _ := ParseIDFile([]byte("\ufeffa\n b \n\nc"))
	if strings.Join(lines, "|") != "a|b||c" {
		t.Fatalf("plain file: %q", lines)
	}
	bad := []struct {
		in    CohortInput
		field string
	}{
		{CohortInput{Name: "beta", Env: "off", UserIDs: []string{"x"}}, "name"},
		{CohortInput{Name: "r", Env: "production", Rules: []rollout.Rule{{Attribute: "age", Op: "gt", Values: []string{"old"}}}}, "rules[0].values"},
		{CohortInput{Name: "r", Env: "production", Rules: []rollout.Rule{{Attribute: "age", Op: "like", Values: []string{"1"}}}}, "rules[0].op"},
		{CohortInput{Name: "l", Env: "production", UserIDs: []string{strings.Repeat("x", 257)}}, "user_ids"},
	}
	for _, b := range bad {
		_, _, err := f.svc.CreateCohort(ctx, b.in, 0, who)
		var fe validation.Errors
		if !errors.As(err, &fe) || !fe.Has(b.field) {
			t.Errorf("%+v: %v, want an error on %s", b.in.Name, err, b.field)
		}
	}
	if cs, _ := f.svc.Cohorts(ctx); len(cs) != 1 {
		t.Fatalf("a refused cohort was stored: %d cohorts", len(cs))
	}
}

// Two changes to an allow-list's members within one millisecond (a script creating a list and
// importing into it at once, here a stopped clock) leave the same updated_at: the second must
// still reach decisions.
func TestMembersChangedWithinAMillisecondAreDecidedOn(t *testing.T) {
	f := newFixture(t)
	f.db.SetClock(f.clock)
	ctx := context.Background()
	c, _, err := f.svc.CreateCohort(ctx, CohortInput{Name: "pilot", Env: "production", UserIDs: []string{"u_first"}}, 0, who)
	if err != nil {
		t.Fatal(err)
	}
	if d := f.svc.Decide(rollout.User{ID: "u_first"}); d.Cohort != "pilot" {
		t.Fatalf("created member: %+v", d)
	}
	if _, _, err := f.svc.ImportMembers(ctx, c.ID, []byte("u_imported\n"), 0, who); err != nil {
		t.Fatal(err)
	}
	if d := f.svc.Decide(rollout.User{ID: "u_imported"}); d.Cohort != "pilot" {
		t.Fatalf("an imported member is not decided on: %+v", d)
	}
	if _, _, err := f.svc.UpdateCohort(ctx, c.ID, CohortInput{Name: "pilot", Env: "production", UserIDs: []string{"u_patched"}}, 0, who); err != nil {
		t.Fatal(err)
	}
	if d := f.svc.Decide(rollout.User{ID: "u_patched"}); d.Cohort != "pilot" {
		t.Fatalf("a member set by an update is not decided on: %+v", d)
	}
	if d := f.svc.Decide(rollout.User{ID: "u_imported"}); d.Cohort != "" {
		t.Fatalf("a replaced member is still decided on: %+v", d)
	}
}

// A file's header names the id column, whether the file has one column or several; it is never
// taken for an id.
func TestParseIDFileSkipsTheHeader(t *testing.T) {
	for file, want := range map[string]string{
		"user_id\nd1\nd2\n":             "d1|d2",
		"\ufeffUser_ID\r\nd1\r\nd2":     "d1|d2",
		"id\nd1\n":                      "d1",
		"email,user_id\na@x.example,c1": "c1",
		"d1\nd2\n":                      "d1|d2",
		"d1,pro\nd2,free\n":             "d1|d2",
	} {
		ids, err := ParseIDFile([]byte(file))
		if got := strings.Join(ids, "|"); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", file, got, err, want)
		}
	}
}

// A file that is not UTF-8 (an export saved as Latin-1) is refused with the line to fix: its ids
// would never match the ones apps send.
func TestParseIDFileRefusesTextThatIsNotUTF8(t *testing.T) {
	for file, line := range map[string]string{
		"u1\nj\xf6rg\nu3\n":             "line 2 ",
		"\xff":                          "line 1 ",
		"email,user_id\na@x,u1\nb,\xe9": "line 3 ",
	} {
		ids, err := ParseIDFile([]byte(file))
		var errs validation.Errors
		if !errors.As(err, &errs) || !strings.Contains(errs["user_ids"], line) || !strings.Contains(errs["user_ids"], "UTF-8") || ids != nil {
			t.Errorf("%q: %v %v, want an error naming %q", file, ids, err, line)
		}
	}
}

// deliver sends a webhook to production from client, signed with key (or badly signed when bad).
func (f *fixture) deliver(t *testing.T, client string, key []byte, bad bool, id string) {
	t.Helper()
	sign := key
	if bad {
		sign = []byte("not the secret at all, 32 bytes!")
	}
	f.deliverAt(t, client, sign, bad, id, time.Now())
}

// deliverAt sends a webhook to production from client, signed with key at a time (refused when
// bad: out of tolerance, or badly signed).
func (f *fixture) deliverAt(t *testing.T, client string, key []byte, bad bool, id string, at time.Time) {
	t.Helper()
	body := []byte(`{"type":"payment.cancelled","request_id":"req_` + id + `"}`)
	h := http.Header{}
	tensfer.SignHeaders(h, "msg_"+id, at, body, key)
	_, err := f.events.ReceiveWebhook(context.Background(), events.Delivery{Env: "production", Header: h, Body: body, Client: client, IP: client})
	if bad != (err != nil) {
		t.Fatalf("delivery %s from %s: %v", id, client, err)
	}
}

func TestRejectedWebhooksCountOnlyValidSignatures(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	key := f.productionSecret(t)
	f.act(t, Advance)
	f.now = time.Now()
	// A forger floods refusals from many addresses: none of them carries a valid signature.
	for i := range 30 {
		f.deliver(t, fmt.Sprintf("203.0.113.%d", i), key, true, fmt.Sprintf("forged-%d", i))
	}
	if h, _ := f.svc.Health(ctx); len(h.Breaches) != 0 {
		t.Fatalf("forged refusals tripped a guardrail: %+v", h.Breaches)
	}
	// Tensfer's five addresses deliver, then its deliveries start failing (its clock is off): they
	// are signed with production's secret, so they count.
	for i := range 5 {
		f.deliver(t, fmt.Sprintf("198.51.100.%d", i), key, false, fmt.Sprintf("ok-%d", i))
	}
	for i := range 5 {
		f.deliverAt(t, fmt.Sprintf("198.51.100.%d", i), key, true, fmt.Sprintf("late-%d", i), time.Now().Add(-time.Hour))
	}
	h, err := f.svc.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got rollout.Status
	for _, st := range h.Statuses {
		if st.Guardrail.Signal == rollout.SignalRejectedWebhooks {
			got = st
		}
	}
	if !got.Breached || got.Figures.Bad != 5 || got.Figures.Total != 10 {
		t.Fatalf("rejected webhooks: %+v", got)
	}
}

func TestANewPlanNeverWidensProduction(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for range 4 {
		f.act(t, Advance) // 50 %
	}
	r, err := f.svc.Configure(ctx, Plan{Stages: &[]rollout.StageInput{{Percent: 1, MinSoak: "24h"}, {Percent: 5, MinSoak: "24h"}, {Percent: 100}}}, 0, who)
	if err != nil || r.Stage != 2 || r.Percent() != 5 {
		t.Fatalf("after a shorter plan: stage %d at %v %% (%v), want stage 2 at 5 %%", r.Stage, r.Percent(), err)
	}
	f.act(t, Kill)
	r, err = f.svc.Configure(ctx, Plan{Stages: &[]rollout.StageInput{{Percent: 2}, {Percent: 5}, {Percent: 10}, {Percent: 100}}}, 0, who)
	if err != nil || r.Stage != 2 || r.State != rollout.Killed {
		t.Fatalf("a killed rollout's plan changed its stage: %+v %v", r, err)
	}
}

// TestAKillThatLosesItsRequestStillReachesDecisions: the change is stored before the rebuild;
// the client going away must not leave decisions on the old state.
func TestAKillThatLosesItsRequestStillReachesDecisions(t *testing.T) {
	f := newFixture(t)
	f.act(t, Advance)
	ctx, cancel := context.WithCancel(context.Background())
	f.svc.mu.Lock() // a slow rebuild in progress elsewhere
	done := make(chan error, 1)
	go func() {
		_, err := f.svc.Act(ctx, Kill, 0, 0, false, who)
		done <- err
	}()
	waitForAudit(t, f, "rollout.kill")
	cancel() // the client goes away while the kill waits for the rebuild
	f.svc.mu.Unlock()
	if err := <-done; err != nil {
		t.Fatalf("kill: %v", err)
	}
	if r := f.svc.Snapshot().Rollout; r.State != rollout.Killed {
		t.Fatalf("decisions still follow %s after a stored kill", r.State)
	}
}

// waitForAudit polls, with a deadline, until an audit row of action exists.
func waitForAudit(t *testing.T, f *fixture, action string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if rows, _, _ := f.db.ListAudit(context.Background(), db.AuditFilter{Action: action, Limit: 1}); len(rows) == 1 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no %s audit row", action)
}

// TestForgersCannotCrowdOutTensfersRefusals: forged deliveries from many addresses use up the
// budget for keeping refusals, yet Tensfer's own refusals (validly signed, refused for their
// timestamp) are still kept and counted.
func TestForgersCannotCrowdOutTensfersRefusals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	key := f.productionSecret(t)
	f.act(t, Advance)
	f.now = time.Now() // the writer stamps events with the real clock; guardrail windows end now
	for i := range 5 {
		f.deliver(t, fmt.Sprintf("198.51.100.%d", i), key, false, fmt.Sprintf("ok-%d", i))
	}
	for a := range 7 { // 700 forgeries: past every client's burst and the global one
		for i := range 100 {
			f.deliver(t, fmt.Sprintf("203.0.113.%d", a), key, true, fmt.Sprintf("forged-%d-%d", a, i))
		}
	}
	for i := range 20 {
		f.deliverAt(t, fmt.Sprintf("198.51.100.%d", i%5), key, true, fmt.Sprintf("late-%d", i), time.Now().Add(-time.Hour))
	}
	h, err := f.svc.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range h.Statuses {
		if st.Guardrail.Signal == rollout.SignalRejectedWebhooks && (st.Figures.Bad != 20 || !st.Breached) {
			t.Fatalf("Tensfer's refusals were crowded out: %+v", st)
		}
	}
}

// productionSecret adds a production webhook signing secret, as an admin would, and returns its key.
func (f *fixture) productionSecret(t *testing.T) []byte {
	t.Helper()
	secret, _ := tensfer.GenerateSecret()
	key, _ := tensfer.ParseSecret(secret)
	envs := environment.New(environment.Config{DB: f.db, Box: f.box, SecretsChanged: f.events.InvalidateSecrets})
	if _, _, err := envs.AddWebhookSecret(context.Background(), "production", secret, 0, db.Audit{Actor: "test", Action: "environment.webhook_secret_add"}); err != nil {
		t.Fatal(err)
	}
	return key
}

// TestReachOfSeveralInstancesIsMerged: two instances on one database count different users; each
// saves its own sketch, and the stored reach (and each instance's after saving) counts both, never
// the last writer's alone.
func TestReachOfSeveralInstancesIsMerged(t *testing.T) {
	ctx := context.Background()
	a := newFixture(t)
	a.act(t, Advance)
	a.act(t, Advance)
	a.act(t, Advance) // 25 %
	b, err := New(ctx, Config{DB: a.db, Now: a.clock, Figures: a.events.GuardrailFigures, Metrics: metrics.New(metrics.BuildInfo{})})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	stage := a.svc.Snapshot().Rollout.Stage
	for i := range 4000 {
		u := rollout.User{ID: fmt.Sprintf("user-%d", i)}
		if i%2 == 0 {
			a.svc.Decide(u)
		} else {
			b.Decide(u)
		}
	}
	alone := a.svc.Reach(stage)
	if err := a.svc.SaveReach(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.SaveReach(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.svc.SaveReach(ctx); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Service{"a": a.svc, "b": b} {
		if got := s.Reach(stage); got < alone*17/10 || got > alone*23/10 {
			t.Errorf("instance %s counts %d after the merge; alone it counted %d (want about twice)", name, got, alone)
		}
	}
}
