package web

import (
	"context"
	"time"
)

// Maintain runs periodic housekeeping until ctx ends: expired sessions are deleted, and events,
// rejected deliveries and finished alert deliveries older than the retention window are purged
// in small batches.
func (s *Server) Maintain(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	// The summary of refusals counted rather than logged is written once their minute is over,
	// also when no further refusal comes to write it.
	minute := time.NewTicker(time.Minute)
	defer minute.Stop()
	for {
		now := s.now()
		if n, err := s.db.PurgeSessions(ctx, now.Add(-s.cfg.SessionIdle), now.Add(-s.cfg.SessionMax)); err != nil && ctx.Err() == nil {
			s.log.Warn("purge sessions", "error", err)
		} else if n > 0 {
			s.log.Info("purged expired sessions", "count", n)
		}
		if events, rejected, err := s.events.PurgeOld(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("retention purge", "error", err)
		} else if events+rejected > 0 {
			s.log.Info("retention purge", "events", events, "rejected", rejected, "retention_days", s.events.RetentionDays())
		}
		if n, err := s.alerts.PurgeOld(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("retention purge of alert deliveries", "error", err)
		} else if n > 0 {
			s.log.Info("retention purge", "alert_deliveries", n)
		}
		for hour := false; !hour; {
			select {
			case <-ctx.Done():
				return
			case <-minute.C:
				s.logRefusalSummary(s.refusals.flush(s.now()))
			case <-t.C:
				hour = true
			}
		}
	}
}
