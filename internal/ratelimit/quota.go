package ratelimit

import (
	"math"
	"sync"
	"time"
)

// Budget is a token bucket measured in units that need not be whole requests (bytes, rows): at
// most Burst at once, refilled at PerSecond.
type Budget struct {
	PerSecond float64
	Burst     float64
}

// Limits are the two budgets one write draws on together: one row, and its size in bytes.
type Limits struct {
	Rows  Budget
	Bytes Budget
}

// meter is the state of one Budget.
type meter struct {
	budget Budget
	tokens float64
	last   time.Time
}

func newMeter(b Budget, now time.Time) meter { return meter{budget: b, tokens: b.Burst, last: now} }

func (m *meter) refill(now time.Time) {
	if d := now.Sub(m.last); d > 0 {
		m.tokens = min(m.budget.Burst, m.tokens+d.Seconds()*m.budget.PerSecond)
		m.last = now
	}
}

// wait is how long until n units are available; 0 when they are now. A take larger than the
// burst can never succeed; its wait is the time to refill the whole burst.
func (m *meter) wait(n float64) time.Duration {
	if m.tokens >= n {
		return 0
	}
	if m.budget.PerSecond <= 0 {
		return time.Duration(math.MaxInt64)
	}
	need := min(n, m.budget.Burst) - m.tokens
	return time.Duration(math.Ceil(need / m.budget.PerSecond * float64(time.Second)))
}

// Quotas are row and byte budgets per key, all drawing on one global pair as well: a write is
// allowed only when every budget it draws on has room for it, and then it draws on all of them,
// so no mix of keys gets past the global budget and no key takes all of it.
//
// NB: a key gets its budgets when first used and keeps them; use it for a small, fixed set of keys
// (an environment and a source), never for keys that outsiders choose.
type Quotas struct {
	mu     sync.Mutex
	now    func() time.Time
	perKey Limits
	global [2]meter // rows, bytes
	keys   map[string]*[2]meter
}

// NewQuotas returns Quotas with perKey budgets for each key and global budgets for all of them
// together, reading time from now.
func NewQuotas(perKey, global Limits, now func() time.Time) *Quotas {
	t := now()
	return &Quotas{now: now, perKey: perKey, global: [2]meter{newMeter(global.Rows, t), newMeter(global.Bytes, t)}, keys: map[string]*[2]meter{}}
}

// Take draws one row of size bytes from key's budgets and the global ones. When any of them has
// no room it takes nothing, and says how long until all of them have.
func (q *Quotas) Take(key string, size int) (ok bool, retryAfter time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	k, found := q.keys[key]
	if !found {
		k = &[2]meter{newMeter(q.perKey.Rows, now), newMeter(q.perKey.Bytes, now)}
		q.keys[key] = k
	}
	ms := [4]*meter{&k[0], &k[1], &q.global[0], &q.global[1]}
	need := [4]float64{1, float64(size), 1, float64(size)}
	for i, m := range ms {
		m.refill(now)
		retryAfter = max(retryAfter, m.wait(need[i]))
	}
	if retryAfter > 0 {
		return false, retryAfter
	}
	for i, m := range ms {
		m.tokens -= need[i]
	}
	return true, 0
}
