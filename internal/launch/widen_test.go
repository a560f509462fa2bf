package launch

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/rollout"
)

// TestPauseAndRollbackWorkFromAStalePage: the narrowing actions on-call takes are not refused
// because a guardrail or a colleague moved the version since the page was loaded. A pause of a
// paused rollout answers it as it is, without an audit row; a rollback from the stage seen goes
// one stage down from it, and is refused, naming both stages, only when the stage moved.
func TestPauseAndRollbackWorkFromAStalePage(t *testing.T) {
	f := newSigFixture(t)
	ctx := context.Background()
	f.act(t, Advance)
	f.act(t, Advance)
	seen := f.stored(t).Version
	if _, _, err := f.svc.CreateCohort(ctx, CohortInput{Name: "blocked", Env: "off", UserIDs: []string{"u1"}}, 0, who); err != nil {
		t.Fatal(err)
	}
	r, err := f.svc.Act(ctx, Pause, 0, seen, false, who)
	if err != nil || r.State != rollout.Paused {
		t.Fatalf("pause from a stale page: %s %v", r.State, err)
	}
	pauses := func() int {
		es, _, _ := f.db.ListAudit(ctx, db.AuditFilter{Action: "rollout.pause", Limit: 10})
		return len(es)
	}
	if r, err := f.svc.Act(ctx, Pause, 0, seen, false, who); err != nil || r.State != rollout.Paused || pauses() != 1 {
		t.Fatalf("a second pause: %s %v, %d audit rows", r.State, err, pauses())
	}
	// Rollback from the page that saw stage 2 (version seen is stale now).
	r, err = f.svc.Act(ctx, Rollback, 2, seen, false, who)
	if err != nil || r.Stage != 1 {
		t.Fatalf("rollback from a stale page at the stage seen: stage %d %v", r.Stage, err)
	}
	// The same page again: the rollout is at stage 1 now, not 2.
	before := f.stored(t)
	_, err = f.svc.Act(ctx, Rollback, 2, seen, false, who)
	var moved *StageMovedError
	if !errors.As(err, &moved) || !strings.Contains(err.Error(), "at stage 1 (1 %) now, not at stage 2 as you saw it") {
		t.Fatalf("rollback from a page that saw another stage: %v", err)
	}
	if f.stored(t).Version != before.Version {
		t.Fatal("a refused rollback changed the rollout")
	}
	// Without the stage seen, a stale version is refused as before.
	if _, err := f.svc.Act(ctx, Rollback, 0, seen, false, who); !errors.Is(err, ErrStale) {
		t.Fatalf("a rollback with a stale version and no stage: %v", err)
	}
}

// TestEveryWideningChangeNeedsTheOverrideWhileBreached: each change that can send more users to
// production is refused while a guardrail is breached, changes nothing, and goes through with the
// override, audited with the breached signals; the changes that cannot widen are never held.
func TestEveryWideningChangeNeedsTheOverrideWhileBreached(t *testing.T) {
	f := newSigFixture(t)
	ctx := context.Background()
	rule := func(v ...string) []rollout.Rule {
		return []rollout.Rule{{Attribute: "country", Op: rollout.OpIn, Values: v}}
	}
	mk := func(name, env string, list bool) db.CohortRow {
		in := CohortInput{Name: name, Env: env, Rules: rule("SE")}
		if list {
			in = CohortInput{Name: name, Env: env, UserIDs: []string{"u1"}}
		}
		c, _, err := f.svc.CreateCohort(ctx, in, 0, who)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	f.act(t, Advance)
	prodRules, prodList, block, sandbox := mk("prod-rules", "production", false), mk("prod-list", "production", true), mk("block", "off", true), mk("sandbox", "sandbox", false)
	block2, gone := mk("block-2", "off", true), mk("gone", "production", true)
	_, delID, err := f.svc.DeleteCohort(ctx, gone.ID, 0, who)
	if err != nil {
		t.Fatal(err)
	}
	f.sig.add(f.now, rollout.SignalAPIErrors, 10, 50)

	widening := []struct {
		action string
		change func(o ...Overriding) error
	}{
		{"cohort.create", func(o ...Overriding) error {
			_, _, err := f.svc.CreateCohort(ctx, CohortInput{Name: "new-prod", Env: "production", UserIDs: []string{"u2"}}, 0, who, o...)
			return err
		}},
		{"cohort.update", func(o ...Overriding) error { // sandbox to production
			_, _, err := f.svc.UpdateCohort(ctx, sandbox.ID, CohortInput{Name: "sandbox", Env: "production", Match: "all", Rules: rule("SE")}, 0, who, o...)
			return err
		}},
		{"cohort.update", func(o ...Overriding) error { // a production cohort's rules
			_, _, err := f.svc.UpdateCohort(ctx, prodRules.ID, CohortInput{Name: "prod-rules", Env: "production", Match: "all", Rules: rule("SE", "NO")}, 0, who, o...)
			return err
		}},
		{"cohort.update", func(o ...Overriding) error { // a block-list no longer blocks
			_, _, err := f.svc.UpdateCohort(ctx, block.ID, CohortInput{Name: "block", Env: "sandbox"}, 0, who, o...)
			return err
		}},
		{"cohort.import", func(o ...Overriding) error {
			_, _, err := f.svc.ImportMembers(ctx, prodList.ID, []byte("u1\nu3\n"), 0, who, o...)
			return err
		}},
		{"cohort.delete", func(o ...Overriding) error { // a block-list
			_, _, err := f.svc.DeleteCohort(ctx, block2.ID, 0, who, o...)
			return err
		}},
		{"cohort.restore", func(o ...Overriding) error {
			_, _, err := f.svc.RestoreCohort(ctx, delID, who, o...)
			return err
		}},
	}
	for i, tt := range widening {
		before := f.stored(t).Version
		err := tt.change()
		var be *BreachedError
		if !errors.As(err, &be) {
			t.Fatalf("case %d (%s) while breached without the override: %v", i, tt.action, err)
		}
		if f.stored(t).Version != before {
			t.Fatalf("case %d (%s): the refused change was stored", i, tt.action)
		}
		if err := tt.change(Overriding(true)); err != nil {
			t.Fatalf("case %d (%s) with the override: %v", i, tt.action, err)
		}
		e, _, _ := f.db.ListAudit(ctx, db.AuditFilter{Action: tt.action, Limit: 1})
		if !strings.Contains(string(e[0].After), `"override_guardrails":true`) || !strings.Contains(string(e[0].After), `"breached":["api_errors"]`) {
			t.Fatalf("case %d (%s) with the override is not audited as one: %s", i, tt.action, e[0].After)
		}
	}

	narrowing := []func() error{
		func() error { // a production cohort renamed: same rules
			_, _, err := f.svc.UpdateCohort(ctx, prodRules.ID, CohortInput{Name: "prod-renamed", Env: "production", Match: "all", Rules: rule("SE", "NO")}, 0, who)
			return err
		},
		func() error {
			_, _, err := f.svc.CreateCohort(ctx, CohortInput{Name: "block-3", Env: "off", UserIDs: []string{"u9"}}, 0, who)
			return err
		},
		func() error {
			_, _, err := f.svc.DeleteCohort(ctx, prodList.ID, 0, who)
			return err
		},
		func() error { // production to sandbox
			_, _, err := f.svc.UpdateCohort(ctx, sandbox.ID, CohortInput{Name: "sandbox", Env: "sandbox", Match: "all", Rules: rule("SE")}, 0, who)
			return err
		},
	}
	for i, change := range narrowing {
		if err := change(); err != nil {
			t.Fatalf("narrowing change %d while breached: %v", i, err)
		}
	}

	// Revive: to a stage it widens; the plan can never widen, whatever it says.
	f.act(t, Kill)
	var be *BreachedError
	if _, err := f.svc.Act(ctx, Revive, 1, 0, false, who); !errors.As(err, &be) {
		t.Fatalf("revive to stage 1 while breached: %v", err)
	}
	if r, err := f.svc.Act(ctx, Revive, 1, 0, true, who); err != nil || r.Stage != 1 {
		t.Fatalf("revive with the override: %v", err)
	}
	raise := []rollout.StageInput{{Percent: 50}, {Percent: 100}}
	if r, err := f.svc.Configure(ctx, Plan{Stages: &raise}, 0, who); err != nil || r.Percent() > 1 {
		t.Fatalf("a plan raising the current stage while breached: %v %v %%", err, r.Percent())
	}
}
