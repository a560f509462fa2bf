package launch

import (
	"context"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/cluster"
	"github.com/tensfer-golive/dashboard/internal/rollout"
)

// follower is a Leader that another instance holds: this one must not run the schedulers.
type follower struct{}

func (follower) Leading() bool { return false }

// TestOnlyTheLeaderAutoAdvances: a soak that is done advances the rollout on the loop's round of
// the leading instance only.
func TestOnlyTheLeaderAutoAdvances(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	auto := true // and advance without volume: this test has no traffic
	if _, err := f.svc.Configure(ctx, Plan{AutoAdvance: &auto, AdvanceWithoutVolume: &auto, Stages: &[]rollout.StageInput{{Percent: 1, MinSoak: "1h"}, {Percent: 100}}}, 0, who); err != nil {
		t.Fatal(err)
	}
	f.act(t, Advance)
	f.now = f.now.Add(2 * time.Hour)
	for _, tt := range []struct {
		leader cluster.Leader
		stage  int
	}{{follower{}, 1}, {cluster.Solo{}, 2}} {
		f.svc.cfg.Leader = tt.leader
		if err := f.svc.round(ctx); err != nil {
			t.Fatal(err)
		}
		if got := f.svc.Snapshot().Rollout.Stage; got != tt.stage {
			t.Errorf("leading %v: stage %d after a round, want %d", tt.leader.Leading(), got, tt.stage)
		}
	}
}
