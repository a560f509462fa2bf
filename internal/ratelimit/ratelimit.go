// Package ratelimit bounds how often something may happen: token buckets per client (login
// attempts, public ingest, storing refused deliveries), byte-and-row budgets per key and in all
// (Quotas: how much unauthenticated input is stored), and "at most once per interval" per key
// (recording that a token, session or secret was used, without a write per request).
package ratelimit

import (
	"sync"
	"time"
)

// Rate is a token bucket: Burst events at once, refilled at one per Every.
type Rate struct {
	Burst int
	Every time.Duration
}

// Limiter is a set of token buckets keyed by client (e.g. an IP). Buckets that have refilled are
// dropped so the map stays as small as the set of recently active clients.
type Limiter struct {
	mu      sync.Mutex
	rate    Rate
	now     func() time.Time
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a Limiter at rate, reading time from now.
func New(rate Rate, now func() time.Time) *Limiter {
	return &Limiter{rate: rate, now: now, buckets: map[string]*bucket{}}
}

// Allow takes one token for key. When none is left it says how long until one is.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.sweep) > time.Minute {
		l.sweepLocked(now)
	}
	b, found := l.buckets[key]
	if !found {
		b = &bucket{tokens: float64(l.rate.Burst), last: now}
		l.buckets[key] = b
	}
	b.tokens = min(float64(l.rate.Burst), b.tokens+float64(now.Sub(b.last))/float64(l.rate.Every))
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) * float64(l.rate.Every))
}

func (l *Limiter) sweepLocked(now time.Time) {
	full := time.Duration(l.rate.Burst) * l.rate.Every
	for k, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, k)
		}
	}
	l.sweep = now
}

// Throttle answers "is it time to do this again for key?": true at most once per interval per
// key. It keeps one timestamp per key seen; use it for bounded key sets (token, session and
// secret ids), not for keys chosen by outsiders.
type Throttle[K comparable] struct {
	mu       sync.Mutex
	interval time.Duration
	last     map[K]time.Time
}

// NewThrottle returns a Throttle that lets each key through once per interval.
func NewThrottle[K comparable](interval time.Duration) *Throttle[K] {
	return &Throttle[K]{interval: interval, last: map[K]time.Time{}}
}

// Due reports whether key was last let through more than the interval before now, and if so
// records now as its last time.
func (t *Throttle[K]) Due(key K, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.last[key]) <= t.interval {
		return false
	}
	t.last[key] = now
	return true
}
