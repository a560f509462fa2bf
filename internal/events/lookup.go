package events

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// LookupLimit bounds how many events one lookup returns.
const LookupLimit = 1000

// MaxLookupLen bounds the text looked up.
const MaxLookupLen = 256

// Lookup finds everything about one request_id (or external event id, or user id, or our event
// number) on one timeline, oldest first, and says whether it was cut at LookupLimit.
func (s *Service) Lookup(ctx context.Context, q string) ([]db.Event, bool, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return nil, false, nil
	}
	if len(q) > MaxLookupLen {
		return nil, false, validation.Problem("the lookup text must be at most 256 characters")
	}
	evs, err := s.db.LookupEvents(ctx, q, LookupLimit)
	if err != nil {
		return nil, false, err
	}
	if id, err := strconv.ParseInt(q, 10, 64); err == nil && id > 0 {
		if e, err := s.db.EventByID(ctx, id); err == nil {
			evs = append([]db.Event{e}, evs...)
		} else if !errors.Is(err, db.ErrNotFound) {
			return nil, false, err
		}
	}
	return evs, len(evs) >= LookupLimit, nil
}

// ByRequestID lists the events carrying exactly this request_id (webhooks, callbacks and API
// calls), oldest first.
func (s *Service) ByRequestID(ctx context.Context, requestID string) ([]db.Event, error) {
	requestID = strings.TrimSpace(requestID)
	if requestID == "" || len(requestID) > MaxLookupLen {
		return nil, validation.Problem("request_id must be 1 to 256 characters")
	}
	return s.db.LookupEvents(ctx, requestID, LookupLimit)
}
