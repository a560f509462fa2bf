package web

import (
	"context"
	"net/http"
	"time"

	"github.com/tensfer-golive/dashboard/internal/secrets"
)

// showHealth answers 200 while the process serves requests (liveness).
func (s *Server) showHealth(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.cfg.Version})
}

// showReady answers 200 only when the database answers and the master key opens the check value
// stored with the database (readiness): a wrong master key or a broken disk makes it 503.
func (s *Server) showReady(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "master_key": "ok"}
	status := http.StatusOK
	// The answer says which check failed, not why: /readyz is public. The log has the cause.
	if err := s.db.Ping(ctx); err != nil {
		checks["database"] = "failed"
		status = http.StatusServiceUnavailable
		s.log.Error("readyz: database", "error", err)
	}
	if err := secrets.CheckMasterKey(ctx, s.db, s.box); err != nil {
		checks["master_key"] = "failed"
		status = http.StatusServiceUnavailable
		s.log.Error("readyz: master key", "error", err)
	}
	state := "ready"
	if status != http.StatusOK {
		state = "not_ready"
	}
	return writeJSON(w, status, map[string]any{"status": state, "checks": checks})
}
