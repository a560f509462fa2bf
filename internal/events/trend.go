package events

import (
	"context"
	"maps"
	"sync"
	"time"
)

// TrendHours is how many hours a Trend covers.
const TrendHours = 24

// Hour is what arrived for one environment in one hour.
type Hour struct {
	Events   int64 // events stored
	Errors   int64 // error events among them: initialization errors, API 5xx and timeouts
	Rejected int64 // deliveries refused (bad signature, skew, malformed, ...)
}

// ErrorRate is the share of what arrived that failed: errors and refused deliveries out of events
// and refused deliveries. ok is false when nothing arrived, when there is no rate to show.
func (h Hour) ErrorRate() (rate float64, ok bool) {
	all := h.Events + h.Rejected
	if all == 0 {
		return 0, false
	}
	return float64(h.Errors+h.Rejected) / float64(all), true
}

// Trend is one environment's traffic by hour over the TrendHours before a time, oldest first:
// Hours[TrendHours-1] is the last hour, [end-1h, end].
type Trend struct {
	Hours [TrendHours]Hour
}

// Last is the last hour of the trend.
func (t Trend) Last() Hour { return t.Hours[TrendHours-1] }

// Previous is the hour before the last.
func (t Trend) Previous() Hour { return t.Hours[TrendHours-2] }

// Total adds up the whole trend.
func (t Trend) Total() Hour {
	var sum Hour
	for _, h := range t.Hours {
		sum.Events += h.Events
		sum.Errors += h.Errors
		sum.Rejected += h.Rejected
	}
	return sum
}

// Change is the relative change from prev to cur (0.5 is 50 % more); ok is false when prev is
// zero, when no percentage means anything.
func Change(cur, prev int64) (change float64, ok bool) {
	if prev == 0 {
		return 0, false
	}
	return float64(cur-prev) / float64(prev), true
}

// TrendTTL is how long a Trends answer is reused. Counting reads a day of index entries (about
// 160 ms at 10 events a second), so the Overview's viewers within it, and reloads, share one
// count.
const TrendTTL = 15 * time.Second

// trendCache is the last Trends answer; its lock also makes callers that arrive while a count
// runs wait for that count instead of starting their own.
type trendCache struct {
	mu  sync.Mutex
	at  time.Time
	val map[string]Trend
}

// Trends returns each environment's traffic by hour over the TrendHours up to now, from two
// grouped queries (events, refused deliveries) whatever the number of hours, reused for
// TrendTTL. An environment with no traffic is absent (its zero Trend is all zeros). Something
// stamped at or after now (the writer's clock may run a moment ahead) counts in the last hour.
func (s *Service) Trends(ctx context.Context) (map[string]Trend, error) {
	c := &s.trends
	c.mu.Lock()
	defer c.mu.Unlock()
	now := s.now()
	if c.val != nil && now.Sub(c.at) >= 0 && now.Sub(c.at) < TrendTTL {
		return maps.Clone(c.val), nil
	}
	out, err := s.countTrends(ctx, now)
	if err != nil {
		return nil, err
	}
	c.at, c.val = now, out
	return maps.Clone(out), nil
}

// countTrends counts the TrendHours up to now.
func (s *Service) countTrends(ctx context.Context, now time.Time) (map[string]Trend, error) {
	since := now.Add(-TrendHours * time.Hour)
	counts, err := s.db.CountByHour(ctx, since, TrendHours)
	if err != nil {
		return nil, err
	}
	out := map[string]Trend{}
	for _, c := range counts {
		t := out[c.Env]
		h := &t.Hours[min(c.Hour, TrendHours-1)]
		h.Events += c.Events
		h.Errors += c.Errors
		h.Rejected += c.Rejected
		out[c.Env] = t
	}
	return out, nil
}
