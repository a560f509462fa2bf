package web

import (
	"context"
	"net/http"
	"time"

	"github.com/tensfer-golive/dashboard/internal/diskguard"
	"github.com/tensfer-golive/dashboard/internal/secrets"
)

// showHealth answers 200 while the process serves requests (liveness).
func (s *Server) showHealth(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.cfg.Version})
}

// readiness is the answer of /readyz.
type readiness struct {
	// Status is ready (200), degraded (200: serving, but below the soft disk watermark, so
	// unauthenticated input is refused), or not_ready (503).
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
	// RefusedLastHour counts, by reason, the input refused and not stored in the last hour.
	RefusedLastHour map[string]int64 `json:"refused_last_hour"`
}

// showReady answers 200 only when the database answers, the master key opens the check value
// stored with the database, the disk is above its hard watermark and no recent write failed for
// want of storage (readiness); below the soft watermark it is still 200, with status "degraded".
func (s *Server) showReady(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	ans, status := s.readiness(ctx)
	return writeJSON(w, status, ans)
}

// readiness runs the checks of /readyz (dashboard_ready reads them too) and returns the answer
// with its status.
func (s *Server) readiness(ctx context.Context) (readiness, int) {
	ans := readiness{Checks: map[string]string{"database": "ok", "master_key": "ok", "disk": "ok", "writes": "ok"}, RefusedLastHour: map[string]int64{}}
	ready := true
	// The answer says which check failed, not why: /readyz is public. The log and the Overview
	// have the cause.
	// A database that does not answer within a second is not ready: /readyz must say so within
	// 2 s of PostgreSQL going away, whatever else is slow.
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	err := s.db.Ping(pctx)
	cancel()
	if err != nil {
		ans.Checks["database"] = "failed"
		ready = false
		s.log.Error("readyz: database", "error", err)
	}
	if err := secrets.CheckMasterKey(ctx, s.db, s.box); err != nil {
		ans.Checks["master_key"] = "failed"
		ready = false
		s.log.Error("readyz: master key", "error", err)
	}
	// With several instances, an instance that hears no notifications would keep serving what
	// the others changed (a revoked token, a kill) from its caches: not ready until it hears again.
	if c, ok := s.cfg.Bus.(interface{ Connected() bool }); ok {
		ans.Checks["notifications"] = "ok"
		if !c.Connected() {
			ans.Checks["notifications"] = "reconnecting"
			ready = false
		}
	}
	health := s.events.Health()
	ans.Checks["disk"] = health.Disk.Level.String()
	if health.Disk.Failing() {
		ans.Checks["writes"] = "failing"
		ready = false
	}
	for _, c := range health.Refusals {
		ans.RefusedLastHour[c.Reason] += c.LastHour
	}
	status := http.StatusOK
	switch {
	case !ready || health.Disk.Level == diskguard.Critical:
		ans.Status, status = "not_ready", http.StatusServiceUnavailable
	case health.Disk.Level == diskguard.Low:
		ans.Status = "degraded"
	default:
		ans.Status = "ready"
	}
	return ans, status
}
