package rollout

// User is who a decision is for: an id and string attributes (country, plan, ...). Deciding
// reads both in canonical form (Canonical), whatever form they are given in; an attribute that
// is missing or empty is unknown.
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
	UserID  string // the id as decided: canonical
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
	attrNames []string // every attribute a rule reads; a rule reads slot i of them
	threshold int      // buckets below it are in production
	version   int64    // changes with the rollout or any cohort
}

type compiledCohort struct {
	name  string
	env   Env
	ids   map[string]struct{}
	maybe []uint64 // a one-hash Bloom filter of the ids' salted hashes, 8 bits an id
	all   bool
	rules []compiledRule
}

// mayHold reports whether the allow-list may hold the user whose salted hash is h; false is
// certain. Most users are on no list, and the bit costs one read of a small array where the map
// costs a string hash and a probe.
func (c *compiledCohort) mayHold(h uint64) bool {
	i := (h >> 32) & uint64(len(c.maybe)*64-1)
	return c.maybe[i/64]&(1<<(i%64)) != 0
}

type compiledRule struct {
	*Rule
	kind ruleKind
	slot int                 // the attribute's index in Snapshot.attrNames
	set  map[string]struct{} // the values of a long in / not_in
}

// ruleKind is how a compiled rule is evaluated, decided once rather than per decision.
type ruleKind uint8

const (
	kindNever ruleKind = iota
	kindText
	kindSet
	kindNumber
)

// readOnce is how many attributes a decision reads once each, however many rules name them;
// rules over more distinct attributes than that read the rest each time.
const readOnce = 16

// attrValues is one decision's view of the user's attributes: each one the rules name, read and
// put in canonical form at most once, and parsed as a number at most once. It lives on the stack.
type attrValues struct {
	attrs map[string]string
	names []string
	state [readOnce]uint8 // attrRead, then attrNumber or attrNotNumber once parsed
	vals  [readOnce]string
	nums  [readOnce]float64
}

const (
	attrRead uint8 = 1 + iota
	attrNumber
	attrNotNumber
)

// value is the canonical value of attribute slot i ("" when unknown).
func (a *attrValues) value(i int) string {
	if i >= readOnce {
		return canonical(a.attrs[a.names[i]])
	}
	if a.state[i] == 0 {
		a.vals[i], a.state[i] = canonical(a.attrs[a.names[i]]), attrRead
	}
	return a.vals[i]
}

// number is attribute slot i as a number; ok is false when it is unknown or not a number.
func (a *attrValues) number(i int) (float64, bool) {
	if i >= readOnce {
		return ParseNumber(a.value(i))
	}
	if a.state[i] <= attrRead {
		n, ok := ParseNumber(a.value(i))
		a.nums[i], a.state[i] = n, attrNotNumber
		if ok {
			a.state[i] = attrNumber
		}
	}
	return a.nums[i], a.state[i] == attrNumber
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
	slots := map[string]int{}
	for _, c := range ordered {
		cc := compiledCohort{name: c.Name, env: c.Env, all: c.Match != MatchAny}
		if c.IsList() {
			cc.ids = make(map[string]struct{}, len(c.UserIDs))
			words := 1
			for words*64 < 8*len(c.UserIDs) {
				words *= 2
			}
			cc.maybe = make([]uint64, words)
			for _, id := range c.UserIDs {
				id = canonical(id) // members stored before ids were canonical
				cc.ids[id] = struct{}{}
				i := (hashUser(r.Salt, id) >> 32) & uint64(words*64-1)
				cc.maybe[i/64] |= 1 << (i % 64)
			}
		}
		for i := range c.Rules {
			r := &c.Rules[i]
			slot, ok := slots[r.Attribute]
			if !ok {
				slot = len(s.attrNames)
				slots[r.Attribute] = slot
				s.attrNames = append(s.attrNames, r.Attribute)
			}
			cr := compiledRule{Rule: r, slot: slot, kind: kindText}
			switch {
			case r.never:
				cr.kind = kindNever
			case r.Op.numeric():
				cr.kind = kindNumber
			case (r.Op == OpIn || r.Op == OpNotIn) && len(r.Values) > setThreshold:
				cr.kind, cr.set = kindSet, make(map[string]struct{}, len(r.Values))
				for _, v := range r.Values {
					cr.set[v] = struct{}{}
				}
			}
			cc.rules = append(cc.rules, cr)
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
// off. When the rollout is killed, a decision for production becomes off. The id and the
// attribute values are read in canonical form; for ASCII and NFC text it allocates nothing.
func (s *Snapshot) Decide(u User) Decision {
	id := canonical(u.ID)
	h := hashUser(s.Rollout.Salt, id)
	d := Decision{UserID: id, Version: s.version, Bucket: int(h % BucketCount), Stage: s.Rollout.Stage, hash: h}
	attrs := attrValues{attrs: u.Attributes, names: s.attrNames}
	for i := range s.compiled {
		c := &s.compiled[i]
		if !c.matches(id, h, &attrs) {
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

func (c *compiledCohort) matches(id string, h uint64, attrs *attrValues) bool {
	if c.ids != nil {
		if !c.mayHold(h) {
			return false
		}
		_, ok := c.ids[id]
		return ok
	}
	for i := range c.rules {
		r := &c.rules[i]
		var hit bool
		switch r.kind {
		case kindNumber:
			n, ok := attrs.number(r.slot)
			hit = ok && r.compare(n)
		case kindSet:
			if v := attrs.value(r.slot); v != "" {
				_, in := r.set[v]
				hit = in == (r.Op == OpIn)
			}
		case kindText:
			hit = r.matches(attrs.value(r.slot))
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
