package events

import (
	"context"
	"time"
)

// PurgeOld deletes events and rejected deliveries older than the retention window, in small
// batches (each a short transaction, so ingest never waits long behind them).
func (s *Service) PurgeOld(ctx context.Context) (events, rejected int64, err error) {
	before := s.now().Add(-time.Duration(s.cfg.RetentionDays) * 24 * time.Hour)
	if events, err = s.db.PurgeEvents(ctx, before, 500); err != nil {
		return events, 0, err
	}
	rejected, err = s.db.PurgeRejected(ctx, before, 500)
	return events, rejected, err
}

// RetentionDays is how long events are kept.
func (s *Service) RetentionDays() int { return s.cfg.RetentionDays }
