package rollout

// User is who a decision is for: an id and string attributes (country, plan, ...).
type User struct {
	ID         string
	Attributes map[string]string
}

// Reason says which step of the evaluation order made a decision.
type Reason string

// The reasons of a decision, in evaluation order.
const (
	ReasonBlocked    Reason = "blocked"     // a cohort whose environment is off
	ReasonCohort     Reason = "cohort"      // a production or sandbox cohort
	ReasonKilled     Reason = "killed"      // the kill switch turned a production decision off
	ReasonPercentage Reason = "percentage"  // the current stage's percentage took the user in
	ReasonNotStarted Reason = "not_started" // stage 0: nobody is in by percentage yet
	ReasonDefault    Reason = "default"     // outside the percentage
)

// Decision is where one user goes and why.
type Decision struct {
	UserID  string
	Env     Env
	Reason  Reason
	Cohort  string // the cohort that decided, for blocked and cohort
	Bucket  int    // the user's bucket (0 to 9,999)
	Version int64  // the snapshot's version: rollout and cohorts as they were
	Stage   int    // the rollout's stage when decided
	hash    uint64 // the salted hash behind Bucket, for counting distinct users
}

// Snapshot is the rollout and its cohorts compiled for deciding: immutable once built, so any
// number of goroutines may decide at once without a lock, and a change builds a new one.
type Snapshot struct {
	Rollout   Rollout
	Cohorts   []Cohort // in evaluation order: block-lists first, then by position
	compiled  []compiledCohort
	threshold int   // buckets below it are in production
	version   int64 // changes with the rollout or any cohort
}

type compiledCohort struct {
	name  string
	env   Env
	ids   map[string]struct{}
	all   bool
	rules []Rule
	sets  []map[string]struct{} // per rule, the values of a long in / not_in
}

// setThreshold is how many values an in / not_in rule has before it is matched through a set.
const setThreshold = 8

// Compile builds the snapshot that decisions read. cohorts must already be checked (CheckCohort);
// version identifies the combined state (the caller bumps it on any change).
func Compile(r Rollout, cohorts []Cohort, version int64) *Snapshot {
	s := &Snapshot{Rollout: r, version: version, threshold: int(r.Percent()*100 + 0.5)}
	ordered := make([]Cohort, 0, len(cohorts))
	for _, c := range cohorts {
		if c.Env == Off {
			ordered = append(ordered, c)
		}
	}
	for _, c := range cohorts {
		if c.Env != Off {
			ordered = append(ordered, c)
		}
	}
	s.Cohorts = ordered
	for _, c := range ordered {
		cc := compiledCohort{name: c.Name, env: c.Env, all: c.Match != MatchAny, rules: c.Rules}
		if c.IsList() {
			cc.ids = make(map[string]struct{}, len(c.UserIDs))
			for _, id := range c.UserIDs {
				cc.ids[id] = struct{}{}
			}
		} else {
			cc.sets = make([]map[string]struct{}, len(c.Rules))
			for i, r := range c.Rules {
				if (r.Op == OpIn || r.Op == OpNotIn) && len(r.Values) > setThreshold {
					set := make(map[string]struct{}, len(r.Values))
					for _, v := range r.Values {
						set[v] = struct{}{}
					}
					cc.sets[i] = set
				}
			}
		}
		s.compiled = append(s.compiled, cc)
	}
	return s
}

// AtStage is the snapshot as it would be at another stage of the same plan (for a preview): the
// compiled cohorts are shared, not rebuilt.
func (s *Snapshot) AtStage(stage int) *Snapshot {
	c := *s
	c.Rollout.Stage = stage
	c.threshold = int(c.Rollout.Percent()*100 + 0.5)
	return &c
}

// Version identifies the rollout and cohorts the snapshot was built from.
func (s *Snapshot) Version() int64 { return s.version }

// Decide maps a user to an environment, in this order: cohorts whose environment is off
// (block-lists), then the other cohorts in their order, then the current stage's percentage, then
// off. When the rollout is killed, a decision for production becomes off. It allocates nothing.
func (s *Snapshot) Decide(u User) Decision {
	h := hashUser(s.Rollout.Salt, u.ID)
	d := Decision{UserID: u.ID, Version: s.version, Bucket: int(h % BucketCount), Stage: s.Rollout.Stage, hash: h}
	for i := range s.compiled {
		c := &s.compiled[i]
		if !c.matches(u) {
			continue
		}
		d.Cohort = c.name
		switch c.env {
		case Off:
			d.Env, d.Reason = Off, ReasonBlocked
		case Production:
			d.Env, d.Reason = Production, ReasonCohort
			if s.Rollout.State == Killed {
				d.Env, d.Reason = Off, ReasonKilled
			}
		default:
			d.Env, d.Reason = c.env, ReasonCohort
		}
		return d
	}
	switch {
	case s.Rollout.State == Killed:
		d.Env, d.Reason = Off, ReasonKilled
	case s.Rollout.Stage == 0:
		d.Env, d.Reason = Off, ReasonNotStarted
	case d.Bucket < s.threshold:
		d.Env, d.Reason = Production, ReasonPercentage
	default:
		d.Env, d.Reason = Off, ReasonDefault
	}
	return d
}

func (c *compiledCohort) matches(u User) bool {
	if c.ids != nil {
		_, ok := c.ids[u.ID]
		return ok
	}
	for i := range c.rules {
		r := &c.rules[i]
		v, ok := u.Attributes[r.Attribute]
		var hit bool
		if set := c.sets[i]; set != nil && ok {
			_, in := set[v]
			hit = in == (r.Op == OpIn)
		} else {
			hit = r.matches(v, ok)
		}
		if hit && !c.all {
			return true
		}
		if !hit && c.all {
			return false
		}
	}
	return c.all
}
