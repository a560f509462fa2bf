package launch

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/dbtest"
	"github.com/tensfer-golive/dashboard/internal/rollout"
)

// signals is a fake source of guardrail figures: observations the test makes at its own clock,
// counted over [since, until) as events.Service.GuardrailFigures counts stored events.
type signals struct {
	mu  sync.Mutex
	obs []observation
}

type observation struct {
	at         time.Time
	signal     rollout.Signal
	bad, total int64
}

func (s *signals) add(at time.Time, signal rollout.Signal, bad, total int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.obs = append(s.obs, observation{at, signal, bad, total})
}

func (s *signals) figures(_ context.Context, since, until time.Time) (map[string]db.SignalCount, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]db.SignalCount{}
	for _, o := range s.obs {
		if o.at.Before(since) || !until.IsZero() && !o.at.Before(until) {
			continue
		}
		c := out[string(o.signal)]
		c.Bad, c.Total = c.Bad+o.bad, c.Total+o.total
		out[string(o.signal)] = c
	}
	return out, nil
}

// sigFixture is a Service on a real SQLite file whose guardrails read fake signals, at a clock
// the test moves.
type sigFixture struct {
	db  *db.DB
	svc *Service
	sig *signals
	now time.Time
}

func newSigFixture(t testing.TB) *sigFixture {
	t.Helper()
	d, err := dbtest.New(t).Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	f := &sigFixture{db: d, sig: &signals{}, now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	f.restart(t)
	return f
}

// restart starts a new Service on the same database, as a restart of the server does.
func (f *sigFixture) restart(t testing.TB) {
	t.Helper()
	svc, err := New(context.Background(), Config{DB: f.db, Now: func() time.Time { return f.now }, Figures: f.sig.figures})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
}

// stored is the rollout as the database holds it.
func (f *sigFixture) stored(t testing.TB) rollout.Rollout {
	t.Helper()
	row, err := f.db.Rollout(context.Background(), rollout.DefaultKey)
	if err != nil {
		t.Fatal(err)
	}
	r, err := fromRow(row)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// healthy records, at now, enough healthy observations for every default guardrail's minimum.
func (f *sigFixture) healthy() {
	for _, g := range rollout.DefaultGuardrails() {
		f.sig.add(f.now, g.Signal, 0, g.MinVolume)
	}
}

var propertySeed = flag.Uint64("rollout.seed", 0, "run TestRandomInterleavingsNeverSkipASoak with this seed only")

// TestRandomInterleavingsNeverSkipASoak runs random interleavings of plan saves, manual actions
// (with and without versions and overrides), restarts, signals and ticks on a fake clock, and
// checks, from what it observes alone, that auto-advance moves one stage at a time, never before
// the stage's full soak since it was entered (or its soak restarted: a plan change to the
// current stage, a resume), never on guardrails that have not seen their minimum volume during
// the soak (unless the plan allows it), that a versionless advance never follows an auto-advance
// within its soak, that a kill always works, and that widening while breached needs the
// override. A failure prints its seed; -rollout.seed=N replays it.
func TestRandomInterleavingsNeverSkipASoak(t *testing.T) {
	runs, steps := 30, 60
	if testing.Short() {
		runs = 8
	}
	seeds := make([]uint64, 0, runs)
	if *propertySeed != 0 {
		seeds = append(seeds, *propertySeed)
	} else {
		base := uint64(time.Now().UnixNano())
		for i := range runs {
			seeds = append(seeds, base+uint64(i))
		}
	}
	for _, seed := range seeds {
		if !runInterleaving(t, seed, steps) {
			t.Fatalf("replay with: go test ./internal/launch/ -run TestRandomInterleavingsNeverSkipASoak -rollout.seed=%d", seed)
		}
	}
}

// interleaving is one run: the fixture, its random source, and what the test has observed.
type interleaving struct {
	t         *testing.T
	f         *sigFixture
	rnd       *rand.Rand
	log       []string
	soakStart time.Time // when the current stage was entered or its soak restarted, as observed
	autoEntry bool      // the current stage was entered by an auto-advance, as observed
	failed    bool
}

func (in *interleaving) failf(format string, args ...any) {
	in.t.Helper()
	in.failed = true
	in.t.Errorf("%s\n\tlast steps: %s", fmt.Sprintf(format, args...), strings.Join(in.log[max(0, len(in.log)-20):], ", "))
}

func runInterleaving(t *testing.T, seed uint64, steps int) bool {
	t.Helper()
	in := &interleaving{t: t, f: newSigFixture(t), rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	in.soakStart = in.f.now
	for range steps {
		before := in.f.stored(t)
		op := in.step(before)
		in.log = append(in.log, op)
		after := in.f.stored(t)
		in.observe(op, before, after)
		if in.failed {
			t.Logf("seed %d", seed)
			return false
		}
	}
	return true
}

var soaks = []string{"0s", "30s", "10m", "1h"}

// step makes one random move and says what it was.
func (in *interleaving) step(before rollout.Rollout) string {
	f, rnd, ctx := in.f, in.rnd, context.Background()
	switch n := rnd.IntN(100); {
	case n < 30:
		f.now = f.now.Add(time.Duration(rnd.IntN(90)) * time.Minute / 2)
		if err := f.svc.Tick(ctx); err != nil {
			in.failf("tick: %v", err)
		}
		return "tick@" + f.now.Format("15:04:05")
	case n < 38:
		f.now = f.now.Add(time.Duration(rnd.IntN(120)) * time.Second)
		return "wait"
	case n < 48:
		switch rnd.IntN(4) {
		case 0:
			f.sig.add(f.now, rollout.SignalAPIErrors, 40, 50) // a breach
			return "breach"
		case 1:
			f.sig.add(f.now, rollout.SignalInitErrors, 0, 5) // some volume
			return "some-volume"
		}
		f.healthy()
		return "healthy"
	case n < 58:
		var plan []rollout.StageInput
		pct := 0.0
		for range 2 + rnd.IntN(4) {
			pct += float64(1 + rnd.IntN(30))
			if pct > 100 {
				break
			}
			plan = append(plan, rollout.StageInput{Percent: pct, MinSoak: soaks[rnd.IntN(len(soaks))]})
		}
		auto, without := rnd.IntN(5) > 0, rnd.IntN(2) == 0
		p := Plan{Stages: &plan, AutoAdvance: &auto, AdvanceWithoutVolume: &without}
		_, err := f.svc.Configure(ctx, p, in.version(before), who)
		return fmt.Sprintf("plan%v(auto=%v,without=%v,err=%v)", plan, auto, without, err != nil)
	case n < 62:
		f.restart(in.t)
		return "restart"
	}
	acts := []Action{Advance, Advance, Advance, Pause, Resume, Resume, Rollback, Kill, Revive}
	act := acts[rnd.IntN(len(acts))]
	expect, override := in.version(before), rnd.IntN(3) == 0
	stage := rnd.IntN(len(before.Stages) + 1)
	_, err := f.svc.Act(ctx, act, stage, expect, override, who)
	in.checkAct(act, expect, override, before, err)
	return fmt.Sprintf("%s(v=%d,override=%v,err=%v)", act, expect, override, err != nil)
}

// version is 0 (none), the current version, or a stale one.
func (in *interleaving) version(r rollout.Rollout) int64 {
	switch in.rnd.IntN(3) {
	case 0:
		return 0
	case 1:
		return r.Version
	}
	return max(1, r.Version-1)
}

// breached says whether any of r's guardrails is breached at now by the fake signals.
func (in *interleaving) breached(r rollout.Rollout) bool {
	sts := rollout.Evaluate(r.Guardrails, func(g rollout.Guardrail) rollout.Figures {
		figs, _ := in.f.sig.figures(context.Background(), in.f.now.Add(-g.Window), time.Time{})
		c := figs[string(g.Signal)]
		return rollout.Figures{Bad: c.Bad, Total: c.Total}
	})
	return len(rollout.Breaches(sts)) > 0
}

// checkAct checks what an action answered against the rules that do not depend on the order of
// events: a kill always works, a pause is never refused as stale; widening while breached needs
// the override.
func (in *interleaving) checkAct(act Action, expect int64, override bool, before rollout.Rollout, err error) {
	var breached *BreachedError
	switch {
	case act == Kill && err != nil:
		in.failf("a kill (version %d, current %d) was refused: %v", expect, before.Version, err)
	case act == Pause && errors.Is(err, ErrStale):
		in.failf("a pause (version %d, current %d) was refused as stale", expect, before.Version)
	case errors.As(err, &breached) && override:
		in.failf("%s with the override was refused: %v", act, err)
	case err == nil && (act == Advance || act == Resume) && !override && in.breached(before):
		in.failf("%s while a guardrail is breached went through without the override", act)
	}
}

// observe checks the move against what was observed before it, and updates the observations.
func (in *interleaving) observe(op string, before, after rollout.Rollout) {
	now := in.f.now
	stageSoak := func(r rollout.Rollout) (rollout.Stage, bool) {
		if r.Stage < 1 || r.Stage > len(r.Stages) {
			return rollout.Stage{}, false
		}
		return r.Stages[r.Stage-1], true
	}
	bs, bok := stageSoak(before)
	as, aok := stageSoak(after)
	auto := strings.HasPrefix(op, "tick") && after.Stage > before.Stage
	if auto {
		switch {
		case after.Stage != before.Stage+1:
			in.failf("auto-advance moved from stage %d to %d", before.Stage, after.Stage)
		case !bok || before.State != rollout.Active || !before.AutoAdvance:
			in.failf("auto-advance from stage %d, %s, auto-advance %v", before.Stage, before.State, before.AutoAdvance)
		case now.Sub(in.soakStart) < bs.MinSoak:
			in.failf("auto-advance after %v at stage %d, whose soak is %v (since %v, now %v)", now.Sub(in.soakStart), before.Stage, bs.MinSoak, in.soakStart, now)
		case after.EnteredBy != rollout.EnteredByAutoAdvance:
			in.failf("an auto-advance recorded its entry as %q", after.EnteredBy)
		}
		if !before.AdvanceWithoutVolume {
			for _, g := range before.Guardrails {
				figs, _ := in.f.sig.figures(context.Background(), in.soakStart, time.Time{})
				if c := figs[string(g.Signal)]; c.Total < g.MinVolume {
					in.failf("auto-advance with %s at %d of its %d observations since the soak began", g.Signal, c.Total, g.MinVolume)
				}
			}
		}
	}
	if strings.HasPrefix(op, "advance(v=0,") && !strings.HasSuffix(op, "err=true)") && in.autoEntry && now.Before(in.soakStart.Add(bs.MinSoak)) {
		in.failf("a versionless advance went through %v after an auto-advance, within its %v soak", now.Sub(in.soakStart), bs.MinSoak)
	}
	restarted := after.Stage != before.Stage || bok && aok && as != bs ||
		before.State != rollout.Active && after.State == rollout.Active
	if restarted {
		in.soakStart = now
	}
	if after.Stage != before.Stage || strings.HasPrefix(op, "revive(") && !strings.HasSuffix(op, "err=true)") {
		in.autoEntry = auto
	}
}
