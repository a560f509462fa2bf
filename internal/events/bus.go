package events

import (
	"context"
	"strconv"
	"time"

	"github.com/tensfer-golive/dashboard/internal/cluster"
	"github.com/tensfer-golive/dashboard/internal/db"
)

// follow subscribes the live feed and the key cache to the Bus: events committed by any
// instance reach this instance's streams, and a secret changed on any instance stops verifying
// here. This instance's own commits are on its feed before their message goes out, so their
// message finds nothing to do.
func (s *Service) follow() {
	if s.cfg.Bus == nil {
		return
	}
	s.unsubscribe = append(s.unsubscribe,
		s.cfg.Bus.Subscribe(cluster.TopicEvents, s.onCommitted),
		s.cfg.Bus.Subscribe(cluster.TopicSecrets, func(cluster.Message) { s.InvalidateSecrets() }),
	)
}

// busReadTimeout bounds the database reads that one Bus message causes.
const busReadTimeout = 10 * time.Second

// onCommitted publishes to the live feed, in id order, the events committed up to the message's
// id that it does not hold yet, read from the database (up to the newest event on a Reload).
func (s *Service) onCommitted(m cluster.Message) {
	ctx, cancel := context.WithTimeout(context.Background(), busReadTimeout)
	defer cancel()
	through, err := strconv.ParseInt(m.ID, 10, 64)
	if m.Reload || err != nil {
		if through, err = s.db.LatestEventID(ctx); err != nil {
			s.log.Warn("live feed: read the newest event after a bus reload", "error", err)
			return
		}
	}
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.catchUp(ctx, through)
}

// catchUp publishes the stored events after the feed's newest and up to through, oldest first.
// Events commit in id order on every store (on PostgreSQL under the writers' advisory lock), so
// once an event is committed every event with a lower id that will ever exist is readable. The
// caller holds pubMu.
func (s *Service) catchUp(ctx context.Context, through int64) {
	for after := s.hub.Last(); after < through; {
		evs, _, err := s.db.ListEvents(ctx, db.EventFilter{AfterID: after, BeforeID: through + 1, Limit: 500,
			Ascending: true, PreviewBytes: LookupPreviewBytes})
		if err != nil {
			s.log.Warn("live feed: read events committed elsewhere", "after_id", after, "error", err)
			return
		}
		if len(evs) == 0 {
			return
		}
		s.hub.Publish(s.feedItems(evs)...)
		after = evs[len(evs)-1].ID
	}
}
