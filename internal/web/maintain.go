package web

import (
	"context"
	"time"
)

// Maintain runs periodic housekeeping until ctx ends: expired sessions are deleted hourly.
func (s *Server) Maintain(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		now := s.now()
		if n, err := s.db.PurgeSessions(ctx, now.Add(-s.cfg.SessionIdle), now.Add(-s.cfg.SessionMax)); err != nil && ctx.Err() == nil {
			s.log.Warn("purge sessions", "error", err)
		} else if n > 0 {
			s.log.Info("purged expired sessions", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
