// Package launch runs the production rollout: it keeps the rollout and its cohorts in the
// database, serves decisions from an immutable snapshot swapped atomically on every change (no
// query, no lock and no allocation per decision), applies the plan's actions with the version
// checks that keep two operators from overwriting each other, evaluates the guardrails over the
// event pipeline's error signals, advances by itself when a soak is done, and counts the users
// sent to production at each stage.
//
// The rules themselves are in internal/rollout (pure); this package is their I/O.
package launch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tensfer-golive/dashboard/internal/cluster"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/metrics"
	"github.com/tensfer-golive/dashboard/internal/rollout"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// Config is what a Service needs.
type Config struct {
	DB  *db.DB
	Log *slog.Logger
	Now func() time.Time
	Key string // the rollout's key (the OFREP flag key); rollout.DefaultKey when empty
	// Figures reads production's error signals over [since, until), until zero meaning now
	// (events.Service.GuardrailFigures).
	Figures func(ctx context.Context, since, until time.Time) (map[string]db.SignalCount, error)
	// Metrics counts decisions and guardrail trips, and reads the rollout's state at scrape time
	// (nil: none).
	Metrics *metrics.Metrics
	// Bus tells every instance that the rollout or a cohort changed (TopicRollout), so each
	// rebuilds its snapshot (nil: only this service's own changes rebuild it).
	Bus cluster.Bus
	// Leader says whether this instance runs guardrail evaluation and auto-advance (nil:
	// cluster.Solo, always).
	Leader cluster.Leader
}

// Service is the running rollout. Build it with New; Run its loop for guardrails and auto-advance.
type Service struct {
	cfg   Config
	db    *db.DB
	log   *slog.Logger
	snap  atomic.Pointer[rollout.Snapshot]
	reach rollout.Reach
	// checked is the guardrails' last verdict (Tick), for the metrics.
	checked atomic.Pointer[checkedHealth]

	mu      sync.Mutex // serialises rebuilds of the snapshot
	members map[int64]cachedMembers

	unsubscribe func() // from the Bus
}

type cachedMembers struct {
	updated time.Time
	ids     []string
}

// New loads the rollout (creating it with a fresh salt on first start), its cohorts and the
// persisted reach, and builds the first snapshot.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Key == "" {
		cfg.Key = rollout.DefaultKey
	}
	if cfg.Leader == nil {
		cfg.Leader = cluster.Solo{}
	}
	s := &Service{cfg: cfg, db: cfg.DB, log: cfg.Log, members: map[int64]cachedMembers{}}
	if _, err := s.db.Rollout(ctx, cfg.Key); errors.Is(err, db.ErrNotFound) {
		salt := make([]byte, 12)
		if _, err := rand.Read(salt); err != nil {
			return nil, err
		}
		row, err := toRow(rollout.New(cfg.Key, cfg.Key+":"+hex.EncodeToString(salt)))
		if err != nil {
			return nil, err
		}
		if _, err := s.db.CreateRollout(ctx, row); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	reach, err := s.db.LoadReach(ctx)
	if err != nil {
		return nil, err
	}
	for stage, regs := range reach {
		s.reach.Load(stage, regs)
	}
	if err := s.rebuild(ctx); err != nil {
		return nil, err
	}
	cfg.Metrics.ReadRollout(s.metricsState)
	if cfg.Bus != nil {
		s.unsubscribe = cfg.Bus.Subscribe(cluster.TopicRollout, s.onChanged)
	}
	return s, nil
}

// Close stops following the Bus. Call it before the database closes.
func (s *Service) Close() {
	if s.unsubscribe != nil {
		s.unsubscribe()
	}
}

// onChanged rebuilds the snapshot when a change made anywhere is newer than it (a change made
// here was rebuilt before its message went out, so its message finds nothing to do).
func (s *Service) onChanged(m cluster.Message) {
	if v, err := strconv.ParseInt(m.ID, 10, 64); err == nil && !m.Reload && s.Snapshot().Version() >= v {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.rebuild(ctx); err != nil {
		s.log.Error("rollout: rebuild after a change announced on the bus", "error", err)
	}
}

// Snapshot is the rollout and cohorts decisions are made from now.
func (s *Service) Snapshot() *rollout.Snapshot { return s.snap.Load() }

// Decide maps one user to an environment and counts the user in the stage's reach.
func (s *Service) Decide(u rollout.User) rollout.Decision {
	d := s.snap.Load().Decide(u)
	s.reach.Observe(d)
	s.cfg.Metrics.Decided(string(d.Env), string(d.Reason))
	return d
}

// Reach estimates how many distinct users were decided into production at stage.
func (s *Service) Reach(stage int) int64 { return s.reach.Count(stage) }

// SaveReach merges the reach counters into the stored ones and takes back what other instances
// counted (the loop does it every minute and at the end).
func (s *Service) SaveReach(ctx context.Context) error {
	for stage := 0; stage <= len(s.Snapshot().Rollout.Stages) && stage <= rollout.MaxStages; stage++ {
		if s.reach.Count(stage) == 0 {
			continue
		}
		if err := s.db.SaveReach(ctx, stage, s.reach.State(stage)); err != nil {
			return err
		}
	}
	stored, err := s.db.LoadReach(ctx) // what the other instances counted
	if err != nil {
		return err
	}
	for stage, regs := range stored {
		s.reach.Load(stage, regs)
	}
	return nil
}

// rebuildAfterCommit rebuilds the snapshot after a change has committed. It does not stop when the
// request does (the change is stored: decisions must follow it), and a failure is logged rather
// than reported as the change failing; the loop's next tick rebuilds when the snapshot is behind.
func (s *Service) rebuildAfterCommit(ctx context.Context) {
	version := ""
	if err := s.rebuild(context.WithoutCancel(ctx)); err != nil {
		s.log.Error("rollout: rebuild after a change", "error", err)
	} else {
		version = strconv.FormatInt(s.Snapshot().Version(), 10)
	}
	if s.cfg.Bus != nil { // without a version (the rebuild failed) every instance rebuilds
		s.cfg.Bus.Publish(cluster.Message{Topic: cluster.TopicRollout, ID: version})
	}
}

// rebuild reads the rollout and cohorts and swaps in a new snapshot, unless a newer one is in
// place already (two rebuilds racing: the later state wins). changed names allow-lists whose
// members were just replaced: their cached members are read again (NB: the cache is keyed by
// updated_at, in milliseconds, which two changes in one millisecond share).
func (s *Service) rebuild(ctx context.Context, changed ...int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range changed {
		delete(s.members, id)
	}
	row, err := s.db.Rollout(ctx, s.cfg.Key)
	if err != nil {
		return err
	}
	r, err := fromRow(row)
	if err != nil {
		return err
	}
	rows, err := s.db.ListCohorts(ctx)
	if err != nil {
		return err
	}
	cohorts := make([]rollout.Cohort, 0, len(rows))
	seen := map[int64]bool{}
	for _, cr := range rows {
		c, err := s.cohort(ctx, cr)
		if err != nil {
			return err
		}
		seen[cr.ID] = true
		cohorts = append(cohorts, c)
	}
	for id := range s.members {
		if !seen[id] {
			delete(s.members, id)
		}
	}
	if cur := s.snap.Load(); cur != nil && cur.Version() > row.Version {
		return nil
	}
	s.snap.Store(rollout.Compile(r, cohorts, row.Version))
	return nil
}

// cohort turns a stored cohort into the rollout's, reading an allow-list's members unless the
// cached ones are current.
func (s *Service) cohort(ctx context.Context, cr db.CohortRow) (rollout.Cohort, error) {
	c := rollout.Cohort{ID: cr.ID, Name: cr.Name, Env: rollout.Env(cr.Env), Position: cr.Position, Match: cr.Match}
	if cr.Kind == "rules" {
		if err := json.Unmarshal(cr.Rules, &c.Rules); err != nil {
			return c, fmt.Errorf("cohort %d rules: %w", cr.ID, err)
		}
		// Stored rules were checked when saved, perhaps by an older version: a rule that no
		// longer checks matches nobody rather than stopping every decision.
		checked, problems := rollout.StoredCohort(c)
		if problems != nil {
			s.log.Warn("rollout: a stored cohort has rules that match nobody until edited", "cohort_id", cr.ID, "problems", problems.Error())
		}
		return checked, nil
	}
	if m, ok := s.members[cr.ID]; ok && m.updated.Equal(cr.UpdatedAt) {
		c.UserIDs = m.ids
		return c, nil
	}
	ids, err := s.db.CohortMembers(ctx, cr.ID)
	if err != nil {
		return c, err
	}
	s.members[cr.ID] = cachedMembers{updated: cr.UpdatedAt, ids: ids}
	c.UserIDs = ids
	return c, nil
}

// conflict maps the database's version conflict to Stale (a duplicate cohort name is reported
// by its own error).
func conflict(err error) error {
	var dup db.ErrDuplicateName
	if errors.As(err, &dup) {
		return validation.Errors{"name": fmt.Sprintf("a cohort named %q exists; choose another name", string(dup))}
	}
	if errors.Is(err, db.ErrConflict) {
		return ErrStale
	}
	return err
}

// ErrStale is returned for a change made against an old version; the API answers 409.
var ErrStale = errors.New("launch: the rollout changed since this version; reload and try again")
