package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// LookupLimit bounds how many events one lookup returns.
const LookupLimit = 1000

// LookupPreviewBytes is how much of each payload the lookup timeline reads: enough for the
// summary line of any ordinary event, while a thousand events of planted 64 KiB payloads cost
// 2 MB rather than 64.
const LookupPreviewBytes = 2048

// MaxLookupLen bounds the text looked up.
const MaxLookupLen = 256

// Lookup finds everything about one request_id (or external event id, or user id, or our event
// number) on one timeline, oldest first, and says whether it was cut at LookupLimit. It is a list
// of summaries: each payload is at most its first LookupPreviewBytes (db.Event.Clipped tells);
// EachLookupEvent reads the whole events.
func (s *Service) Lookup(ctx context.Context, q string) ([]db.Event, bool, error) {
	q, err := lookupText(q)
	if q == "" || err != nil {
		return nil, false, err
	}
	evs, err := s.db.LookupEventPreviews(ctx, q, LookupLimit+1, LookupPreviewBytes)
	if err != nil {
		return nil, false, err
	}
	if e, ok, err := s.numbered(ctx, q); err != nil {
		return nil, false, err
	} else if ok {
		if len(e.Payload) > LookupPreviewBytes {
			e.Payload = e.Payload[:LookupPreviewBytes]
		}
		evs = append([]db.Event{e}, evs...)
	}
	if len(evs) > LookupLimit {
		return evs[:LookupLimit], true, nil
	}
	return evs, false, nil
}

// EachLookupEvent calls fn with each event Lookup finds, whole, oldest first (the event numbered
// q first), reading them a megabyte or so at a time, so that a large answer (the support bundle)
// is written out as it is read instead of built in memory. It goes on to LookupLimit+1 events,
// so that a caller counting them can tell the answer was cut. An error from fn stops it and is
// returned as is.
func (s *Service) EachLookupEvent(ctx context.Context, q string, fn func(db.Event) error) error {
	q, err := lookupText(q)
	if q == "" || err != nil {
		return err
	}
	limit := LookupLimit + 1
	if e, ok, err := s.numbered(ctx, q); err != nil {
		return err
	} else if ok {
		if err := fn(e); err != nil {
			return err
		}
		limit--
	}
	return s.db.EachLookupEvent(ctx, q, limit, fn)
}

// EachByRequestID is EachLookupEvent for the JSON API's lookup: q must be a request id (1 to
// 256 characters), and is not taken as an event number. It goes on to limit+1 events (limit is
// 1 to LookupLimit), so that a caller counting them can tell the answer was cut.
func (s *Service) EachByRequestID(ctx context.Context, requestID string, limit int, fn func(db.Event) error) error {
	requestID = strings.TrimSpace(requestID)
	if requestID == "" || len(requestID) > MaxLookupLen {
		return validation.Problem("request_id must be 1 to 256 characters")
	}
	if limit < 1 || limit > LookupLimit {
		return validation.Problem(fmt.Sprintf("limit must be a whole number from 1 to %d", LookupLimit))
	}
	return s.db.EachLookupEvent(ctx, requestID, limit+1, fn)
}

func lookupText(q string) (string, error) {
	q = strings.TrimSpace(q)
	if len(q) > MaxLookupLen {
		return "", validation.Problem("the lookup text must be at most 256 characters")
	}
	return q, nil
}

// numbered is the event whose number q is, if q is one.
func (s *Service) numbered(ctx context.Context, q string) (db.Event, bool, error) {
	id, err := strconv.ParseInt(q, 10, 64)
	if err != nil || id <= 0 {
		return db.Event{}, false, nil
	}
	e, err := s.db.EventByID(ctx, id)
	if errors.Is(err, db.ErrNotFound) {
		return db.Event{}, false, nil
	}
	return e, err == nil, err
}
