package web

import (
	"sync"
	"time"
)

// limiter is a set of token buckets keyed by client (IP). Buckets that have refilled are dropped
// so the map stays as small as the set of recently active clients.
type limiter struct {
	mu      sync.Mutex
	rate    RateLimit
	now     func() time.Time
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate RateLimit, now func() time.Time) *limiter {
	return &limiter{rate: rate, now: now, buckets: map[string]*bucket{}}
}

// allow takes one token for key. When none is left it says how long until one is.
func (l *limiter) allow(key string) (ok bool, retryAfter time.Duration) {
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

func (l *limiter) sweepLocked(now time.Time) {
	full := time.Duration(l.rate.Burst) * l.rate.Every
	for k, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, k)
		}
	}
	l.sweep = now
}
