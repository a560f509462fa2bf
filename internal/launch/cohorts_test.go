package launch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/rollout"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// TestACommittedCohortChangeReachesDecisionsWhenItsRequestIsGone (issue 17, defect 2): every
// cohort change is stored before the snapshot is rebuilt; the client going away between the two
// must neither fail the change nor leave decisions on the old list.
func TestACommittedCohortChangeReachesDecisionsWhenItsRequestIsGone(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	list, _, err := f.svc.CreateCohort(ctx, CohortInput{Name: "pilot", Env: "production", UserIDs: []string{"u_old"}}, 0, who)
	if err != nil {
		t.Fatal(err)
	}
	rules, _, err := f.svc.CreateCohort(ctx, CohortInput{Name: "nordics", Env: "production",
		Rules: []rollout.Rule{{Attribute: "country", Op: rollout.OpIn, Values: []string{"SE"}}}}, 0, who)
	if err != nil {
		t.Fatal(err)
	}
	var deletion int64
	user := func(id, country string) rollout.User {
		return rollout.User{ID: id, Attributes: map[string]string{"country": country}}
	}
	tests := []struct {
		action string
		change func(ctx context.Context) error
		user   rollout.User
		cohort string // the cohort deciding user after the change ("" for none)
	}{
		{"cohort.create", func(ctx context.Context) error {
			_, _, err := f.svc.CreateCohort(ctx, CohortInput{Name: "blocked", Env: "off", UserIDs: []string{"u_bad"}}, 0, who)
			return err
		}, user("u_bad", ""), "blocked"},
		{"cohort.import", func(ctx context.Context) error {
			_, _, err := f.svc.ImportMembers(ctx, list.ID, []byte("u_new\n"), 0, who)
			return err
		}, user("u_new", ""), "pilot"},
		{"cohort.update", func(ctx context.Context) error {
			_, _, err := f.svc.UpdateCohort(ctx, rules.ID, CohortInput{Name: "nordics", Env: "production",
				Rules: []rollout.Rule{{Attribute: "country", Op: rollout.OpIn, Values: []string{"SE", "NO"}}}}, 0, who)
			return err
		}, user("u_no", "NO"), "nordics"},
		{"cohort.reorder", func(ctx context.Context) error {
			cs, err := f.svc.Cohorts(ctx)
			if err != nil {
				return err
			}
			ids := []int64{}
			for i := len(cs) - 1; i >= 0; i-- {
				ids = append(ids, cs[i].ID)
			}
			_, err = f.svc.ReorderCohorts(ctx, ids, 0, who)
			return err
		}, user("u_new", "SE"), "nordics"},
		{"cohort.delete", func(ctx context.Context) (err error) {
			_, deletion, err = f.svc.DeleteCohort(ctx, rules.ID, 0, who)
			return err
		}, user("u_se", "SE"), ""},
		{"cohort.restore", func(ctx context.Context) error {
			_, _, err := f.svc.RestoreCohort(ctx, deletion, who)
			return err
		}, user("u_se", "SE"), "nordics"},
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			stored := auditCount(t, f, tt.action)
			rctx, cancel := context.WithCancel(ctx)
			f.svc.mu.Lock() // a slow rebuild in progress elsewhere
			done := make(chan error, 1)
			go func() { done <- tt.change(rctx) }()
			deadline := time.Now().Add(10 * time.Second)
			for auditCount(t, f, tt.action) == stored {
				if time.Now().After(deadline) {
					f.svc.mu.Unlock()
					t.Fatalf("no %s audit row", tt.action)
				}
				time.Sleep(time.Millisecond)
			}
			cancel() // the client goes away once the change is stored
			f.svc.mu.Unlock()
			if err := <-done; err != nil {
				t.Fatalf("a stored change answered an error: %v", err)
			}
			if d := f.svc.Decide(tt.user); d.Cohort != tt.cohort {
				t.Fatalf("the next decision after %s: cohort %q, want %q (%+v)", tt.action, d.Cohort, tt.cohort, d)
			}
		})
	}
}

func auditCount(t *testing.T, f *fixture, action string) int {
	t.Helper()
	rows, _, err := f.db.ListAudit(context.Background(), db.AuditFilter{Action: action, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rows {
		if r.Action == action {
			n++
		}
	}
	return n
}

// TestCohortVersionsCheckWhatTheEditTouches (issue 17, item 12): a change carries the version it
// was made against, and is refused only when what it edits changed since: a new cohort never, an
// edit or a deletion when that cohort changed, a reorder when the order did.
func TestCohortVersionsCheckWhatTheEditTouches(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	mk := func(name string) db.CohortRow {
		c, _, err := f.svc.CreateCohort(ctx, CohortInput{Name: name, Env: "production", UserIDs: []string{name + "-1"}}, 0, who)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := mk("a"), mk("b")
	seen := f.svc.Snapshot().Version() // the page was loaded here
	f.act(t, Advance)
	f.act(t, Pause) // a guardrail paused the rollout meanwhile
	if _, _, err := f.svc.UpdateCohort(ctx, b.ID, CohortInput{Name: "b2", Env: "sandbox"}, 0, who); err != nil {
		t.Fatal(err)
	}
	current := f.svc.Snapshot().Version()
	order := func(ids ...int64) func() error {
		return func() error { _, err := f.svc.ReorderCohorts(ctx, ids, seen, who); return err }
	}
	tests := []struct {
		name  string
		do    func() error
		stale bool
	}{
		{"create after the rollout changed", func() error {
			_, _, err := f.svc.CreateCohort(ctx, CohortInput{Name: "c", Env: "off", UserIDs: []string{"x"}}, seen, who)
			return err
		}, false},
		{"edit a cohort nobody touched", func() error {
			_, _, err := f.svc.UpdateCohort(ctx, a.ID, CohortInput{Name: "a", Env: "sandbox"}, seen, who)
			return err
		}, false},
		{"edit a cohort edited since", func() error {
			_, _, err := f.svc.UpdateCohort(ctx, b.ID, CohortInput{Name: "b3", Env: "production"}, seen, who)
			return err
		}, true},
		{"import into a cohort edited since", func() error {
			_, _, err := f.svc.ImportMembers(ctx, b.ID, []byte("z\n"), seen, who)
			return err
		}, true},
		{"delete a cohort edited since", func() error {
			_, _, err := f.svc.DeleteCohort(ctx, b.ID, seen, who)
			return err
		}, true},
		{"a version from the future", func() error {
			_, _, err := f.svc.UpdateCohort(ctx, a.ID, CohortInput{Name: "a", Env: "sandbox"}, current+100, who)
			return err
		}, true},
		{"reorder after a cohort was added", order(b.ID, a.ID), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.svc.Snapshot().Version()
			err := tt.do()
			if tt.stale != errors.Is(err, ErrStale) || (!tt.stale && err != nil) {
				t.Fatalf("err %v, stale wanted: %v", err, tt.stale)
			}
			after := f.svc.Snapshot().Version()
			if tt.stale && after != before {
				t.Fatal("a refused change moved the version")
			}
			if !tt.stale && after <= before {
				t.Fatalf("decisions did not move to a new version: %d then %d", before, after)
			}
		})
	}
	// A reorder made against the order as it is now passes, whatever the rollout did since.
	cs, _ := f.svc.Cohorts(ctx)
	now := f.svc.Snapshot().Version()
	f.act(t, Resume)
	ids := []int64{}
	for i := len(cs) - 1; i >= 0; i-- {
		ids = append(ids, cs[i].ID)
	}
	if _, err := f.svc.ReorderCohorts(ctx, ids, now, who); err != nil {
		t.Fatalf("reorder against the current order: %v", err)
	}
}

// TestADeletedCohortCanBeRestored (issue 17, item 11): a deletion keeps the cohort with its
// members for a week; undoing it brings back name, environment, rules, members and place, and is
// audited; a name taken meanwhile is a clear error that changes nothing.
func TestADeletedCohortCanBeRestored(t *testing.T) {
	f := newFixture(t)
	f.db.SetClock(f.clock)
	ctx := context.Background()
	ids := make([]string, 10_000)
	for i := range ids {
		ids[i] = fmt.Sprintf("pilot-%d", i)
	}
	first, _, err := f.svc.CreateCohort(ctx, CohortInput{Name: "first", Env: "off", UserIDs: []string{"x"}}, 0, who)
	if err != nil {
		t.Fatal(err)
	}
	pilot, _, err := f.svc.CreateCohort(ctx, CohortInput{Name: "pilot", Env: "production", UserIDs: ids}, 0, who)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.CreateCohort(ctx, CohortInput{Name: "last", Env: "sandbox", Rules: []rollout.Rule{{Attribute: "plan", Op: rollout.OpEq, Values: []string{"pro"}}}}, 0, who); err != nil {
		t.Fatal(err)
	}
	_, deletion, err := f.svc.DeleteCohort(ctx, pilot.ID, 0, who)
	if err != nil {
		t.Fatal(err)
	}
	if d := f.svc.Decide(rollout.User{ID: "pilot-9999"}); d.Cohort == "pilot" {
		t.Fatal("a deleted cohort still decides")
	}
	dels, err := f.svc.DeletedCohorts(ctx)
	if err != nil || len(dels) != 1 || dels[0].Name != "pilot" || dels[0].Size != 10_000 {
		t.Fatalf("deleted cohorts: %+v %v", dels, err)
	}
	// The name is taken meanwhile: the undo says so and changes nothing.
	clash, _, err := f.svc.CreateCohort(ctx, CohortInput{Name: "pilot", Env: "sandbox", UserIDs: []string{"y"}}, 0, who)
	if err != nil {
		t.Fatal(err)
	}
	v := f.svc.Snapshot().Version()
	_, _, err = f.svc.RestoreCohort(ctx, deletion, who)
	var fe validation.Errors
	if !errors.As(err, &fe) || !strings.Contains(fe["name"], `"pilot" exists`) {
		t.Fatalf("undo over a taken name: %v", err)
	}
	if f.svc.Snapshot().Version() != v {
		t.Fatal("a refused undo changed the rollout")
	}
	if _, _, err := f.svc.DeleteCohort(ctx, clash.ID, 0, who); err != nil {
		t.Fatal(err)
	}
	back, _, err := f.svc.RestoreCohort(ctx, deletion, who)
	if err != nil {
		t.Fatal(err)
	}
	if back.Name != "pilot" || back.Env != "production" || back.Size != 10_000 {
		t.Fatalf("restored: %+v", back)
	}
	cs, _ := f.svc.Cohorts(ctx)
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, ","); got != "first,pilot,last" {
		t.Fatalf("order after the undo: %s (first is %d)", got, first.ID)
	}
	if d := f.svc.Decide(rollout.User{ID: "pilot-9999"}); d.Cohort != "pilot" || d.Env != rollout.Production {
		t.Fatalf("a restored member is not decided by the cohort: %+v", d)
	}
	if n := auditCount(t, f, "cohort.restore"); n != 1 {
		t.Fatalf("%d cohort.restore audit rows", n)
	}
	if _, _, err := f.svc.RestoreCohort(ctx, deletion, who); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a second undo: %v", err)
	}
	// A week later, a deletion can no longer be undone.
	_, old, err := f.svc.DeleteCohort(ctx, back.ID, 0, who)
	if err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(db.KeepDeletedCohorts + time.Minute)
	if _, _, err := f.svc.RestoreCohort(ctx, old, who); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("undo after a week: %v", err)
	}
}
