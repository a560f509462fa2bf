package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// sendTestEvent has the event pipeline sign a test webhook with the environment's active secret
// and ingest it as it would one from Tensfer, so an operator can check the wiring without
// waiting for Tensfer.
func (s *Server) sendTestEvent(w http.ResponseWriter, r *http.Request) error {
	env, err := envParam(r)
	if err != nil {
		return err
	}
	u, _ := userFrom(r.Context())
	res, err := s.events.SendTestEvent(r.Context(), env, u.Email, s.delivery(r, env, nil, false))
	var problem validation.Problem
	if errors.As(err, &problem) {
		return s.testEventFailed(w, r, string(problem))
	}
	if err != nil {
		return err
	}
	status := http.StatusOK
	if res.Refused != nil {
		status = rejectionError(r, res.Refused).(*httpError).status
	}
	if err := s.events.AuditTestEvent(r.Context(), s.auditFor(r, "event.test_send"), env, status, res.RequestID); err != nil {
		return err
	}
	if res.Refused != nil {
		return s.testEventFailed(w, r, fmt.Sprintf("The test event was refused (%d): %s", status, strings.TrimSpace(res.Refused.Error())))
	}
	setFlashLink(w, r, "ok", fmt.Sprintf("Sent a signed test webhook to %s; it carries request_id %s.", env, res.RequestID), "/lookup?q="+url.QueryEscape(res.RequestID))
	return redirect(w, r, "/events")
}

// testEventFailed redirects to the live feed with why the test event was not sent.
func (s *Server) testEventFailed(w http.ResponseWriter, r *http.Request, msg string) error {
	setFlash(w, r, "err", msg)
	return redirect(w, r, "/events")
}

// reverifyEvent checks a stored webhook's signature again against today's active secrets. It
// changes nothing.
func (s *Server) reverifyEvent(w http.ResponseWriter, r *http.Request) error {
	e, back, err := s.storedEvent(r)
	if err != nil {
		return err
	}
	id, err := s.events.Reverify(r.Context(), e)
	var problem validation.Problem
	if errors.As(err, &problem) {
		setFlash(w, r, "err", string(problem))
		return redirect(w, r, back)
	}
	if err != nil {
		return err
	}
	setFlash(w, r, "ok", "The stored signature verifies with active secret "+id+".")
	return redirect(w, r, back)
}

// storedEvent loads the event named in the path and the URL of its page.
func (s *Server) storedEvent(r *http.Request) (db.Event, string, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return db.Event{}, "", err
	}
	e, err := s.db.EventByID(r.Context(), id)
	if errors.Is(err, db.ErrNotFound) {
		err = errNoEvent(id)
	}
	return e, fmt.Sprintf("/events/%d", id), err
}
