package web

import (
	"context"
	"time"
)

// Maintain runs periodic housekeeping until ctx ends: expired sessions and ended sign-in state
// (lockout counters, second steps of logins, re-check budgets) are deleted, and events,
// rejected deliveries and finished alert deliveries older than the retention window are purged
// in small batches; the counts of repeated failures are written to the audit log once their
// window is over (failureAudit), and all of them when ctx ends. The purges run only while this
// instance leads (cluster.Leader); the counts are this instance's own, so every instance writes
// them.
func (s *Server) Maintain(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	// Every minute or so: the counted failures whose window is over go to the audit log, and the
	// summary of refusals counted rather than logged is written once their minute is over, also
	// when no further refusal comes to write it.
	counts := time.NewTicker(min(failureWindow/5, time.Minute))
	defer counts.Stop()
	for {
		if s.cfg.Leader.Leading() {
			s.purge(ctx)
		}
		if !s.idle(ctx, t, counts) {
			return
		}
	}
}

// purge deletes expired sessions and purges what is older than the retention window.
func (s *Server) purge(ctx context.Context) {
	now := s.now()
	if n, err := s.accounts.PurgeSessions(ctx, now.Add(-s.cfg.SessionIdle), now.Add(-s.cfg.SessionMax)); err != nil && ctx.Err() == nil {
		s.log.Warn("purge sessions", "error", err)
	} else if n > 0 {
		s.log.Info("purged expired sessions", "count", n)
	}
	if n, err := s.accounts.PurgeSignInState(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("purge sign-in state", "error", err)
	} else if n > 0 {
		s.log.Info("purged ended sign-in state", "count", n)
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
}

// idle waits for the next hourly round, writing meanwhile the counted failures whose window is
// over and the summary of refusals not logged; at the end of ctx it writes them all and answers
// false.
func (s *Server) idle(ctx context.Context, hourly, counts *time.Ticker) bool {
	for {
		select {
		case <-ctx.Done():
			s.logRefusalSummary(s.refusals.flush(s.now().Add(time.Minute)))
			flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.failures.flush(flushCtx, true); err != nil {
				s.log.Warn("audit counted failures", "error", err)
			}
			return false
		case <-counts.C:
			s.logRefusalSummary(s.refusals.flush(s.now()))
			if err := s.failures.flush(ctx, false); err != nil && ctx.Err() == nil {
				s.log.Warn("audit counted failures", "error", err)
			}
		case <-hourly.C:
			return true
		}
	}
}
