package events

import (
	"context"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
)

// Signals counts, per environment, what arrived since a time: events, refused webhooks,
// initialization_error callbacks and API calls reported with 5xx or no answer. It is the reader
// that the overview shows and that the rollout's guardrails evaluate over their window; the
// window should be bounded (an hour, a day), as the counts walk its rows in an index.
func (s *Service) Signals(ctx context.Context, since time.Time) (map[string]db.EnvStats, error) {
	return s.db.EventStats(ctx, since)
}

// RecentErrors lists the newest error events (5xx and timed-out API calls, init errors).
func (s *Service) RecentErrors(ctx context.Context, limit int) ([]db.Event, error) {
	yes := true
	evs, _, err := s.db.ListEvents(ctx, db.EventFilter{IsError: &yes, Limit: limit})
	return evs, err
}

// GoLiveFacts are the facts of the event log that the go-live checklist needs.
type GoLiveFacts struct {
	ProdWebhookVerified   bool // a verified production webhook from Tensfer (not a test event) arrived
	ErrorRequestIDsLogged int  // failed API calls recorded with a request_id (of the latest 200)
	ProdAPICalls          int  // production API calls recorded, ever
}

// GoLiveFacts measures the go-live items that depend on traffic.
func (s *Service) GoLiveFacts(ctx context.Context) (GoLiveFacts, error) {
	var f GoLiveFacts
	// A webhook from Tensfer, not the dashboard's own test event (which never crosses the public
	// URL): look at the latest few.
	hooks, _, err := s.db.ListEvents(ctx, db.EventFilter{Env: "production", Source: db.SourceWebhook, Limit: 50})
	if err != nil {
		return f, err
	}
	for _, e := range hooks {
		f.ProdWebhookVerified = f.ProdWebhookVerified || e.Type != TestEventType
	}
	// Failed calls with request_ids: 5xx and timeouts (error signals) and reported 4xx.
	yes := true
	errs, _, err := s.db.ListEvents(ctx, db.EventFilter{Source: db.SourceAPI, IsError: &yes, Limit: 100})
	if err != nil {
		return f, err
	}
	calls, _, err := s.db.ListEvents(ctx, db.EventFilter{Source: db.SourceAPI, Type: "api.error", Limit: 100})
	if err != nil {
		return f, err
	}
	seen := map[int64]bool{}
	for _, e := range append(errs, calls...) {
		if e.RequestID != "" && !seen[e.ID] {
			seen[e.ID] = true
			f.ErrorRequestIDsLogged++
		}
	}
	n, err := s.db.CountProductionAPICalls(ctx)
	f.ProdAPICalls = int(n)
	return f, err
}

// GuardrailFigures counts production's error signals since a time, for the rollout's guardrails:
// unauthenticated sources (callbacks, refused webhooks) in distinct senders, authenticated ones
// (API-call reports, verifications) per event. docs/rollout.md says why.
// until zero means up to now.
func (s *Service) GuardrailFigures(ctx context.Context, since, until time.Time) (map[string]db.SignalCount, error) {
	return s.db.GuardrailFigures(ctx, since, until)
}
