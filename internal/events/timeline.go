package events

import (
	"cmp"
	"slices"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
)

// Timeline is the story of one request_id: its steps (API calls, callbacks, webhooks) oldest
// first. An event without a request_id is a timeline of its own, of one step.
type Timeline struct {
	RequestID string     // "" for a lone event without a request_id
	Steps     []db.Event // oldest first (by received_at, then id)
	// Envs are the environments the steps came from, in the order first seen.
	Envs []string
	// BySource counts the steps by source (db.SourceAPI, SourceCallback, SourceWebhook).
	BySource map[string]int
	Errors   int // steps that are errors (see Failed)
}

// First is when the first step was received.
func (t Timeline) First() time.Time { return t.Steps[0].ReceivedAt }

// Last is when the last step was received.
func (t Timeline) Last() time.Time { return t.Steps[len(t.Steps)-1].ReceivedAt }

// Span is the time from the first step to the last.
func (t Timeline) Span() time.Duration { return t.Last().Sub(t.First()) }

// Failed reports whether an event is an error for its timeline: an error signal (an
// initialization_error callback, an API call answered 5xx or timed out) or an API call answered
// 4xx, which the integrator must also log for Tensfer support.
func Failed(e db.Event) bool {
	return e.IsError || (e.Source == db.SourceAPI && (e.Status == 0 || e.Status >= 400))
}

// Timelines groups events (as Lookup finds them) by request_id: one timeline per request_id,
// steps oldest first by received_at (then id), and the timelines ordered by their first step
// (then by request_id). An event without a request_id is a timeline of its own. An event given
// twice (the same id) counts once. It times steps by received_at, the dashboard's own clock,
// rather than the time a sender claims.
func Timelines(evs []db.Event) []Timeline {
	byID := make(map[string]int) // request_id -> index in out
	seen := make(map[int64]bool, len(evs))
	var out []Timeline
	for _, e := range evs {
		if seen[e.ID] {
			continue
		}
		seen[e.ID] = true
		i, ok := byID[e.RequestID]
		if !ok || e.RequestID == "" {
			i = len(out)
			out = append(out, Timeline{RequestID: e.RequestID, BySource: map[string]int{}})
			if e.RequestID != "" {
				byID[e.RequestID] = i
			}
		}
		out[i].Steps = append(out[i].Steps, e)
	}
	for i := range out {
		t := &out[i]
		slices.SortStableFunc(t.Steps, func(a, b db.Event) int {
			return cmp.Or(a.ReceivedAt.Compare(b.ReceivedAt), cmp.Compare(a.ID, b.ID))
		})
		for _, e := range t.Steps {
			t.BySource[e.Source]++
			if !slices.Contains(t.Envs, e.Env) {
				t.Envs = append(t.Envs, e.Env)
			}
			if Failed(e) {
				t.Errors++
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Timeline) int {
		return cmp.Or(a.First().Compare(b.First()), cmp.Compare(a.RequestID, b.RequestID), cmp.Compare(a.Steps[0].ID, b.Steps[0].ID))
	})
	return out
}
