package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/events"
	"github.com/tensfer-golive/dashboard/internal/validation"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// replayEvent is POST /events/{id}/replay.
func (s *Server) replayEvent(w http.ResponseWriter, r *http.Request) error {
	e, back, err := s.storedEvent(r)
	if err != nil {
		return err
	}
	if e.Source != db.SourceWebhook {
		setFlash(w, r, "err", "Only webhooks can be replayed.")
		return redirect(w, r, back)
	}
	target, err := s.events.ReplayTarget(r.Context(), e.Env)
	if done, err := flashProblem(w, r, err, back); done {
		return err
	}
	a := s.auditFor(r, "event.replay")
	at := s.events.Replay(r.Context(), e, target, a.Actor, a.RequestID)
	if err := s.events.AuditReplay(r.Context(), a, e, target, at); err != nil {
		return err
	}
	if at.Error != "" {
		setFlash(w, r, "err", fmt.Sprintf("Replay to %s failed after %d ms: %s", target.URL, at.DurationMS, at.Error))
	} else {
		setFlash(w, r, "ok", fmt.Sprintf("Replayed to %s: %d in %d ms.", target.URL, at.Status, at.DurationMS))
	}
	return redirect(w, r, back)
}

// replaySelection lists the webhooks a bulk replay of the request's filter would send.
func (s *Server) replaySelection(r *http.Request) ([]db.Event, bool, events.Filter, error) {
	f, err := events.ParseFilter(r.URL.Query())
	if err != nil {
		return nil, false, f, err
	}
	// The POST sends what the confirmation page counted: nothing newer than its newest event.
	var maxID int64
	if v := r.URL.Query().Get("max_id"); v != "" {
		if maxID, err = strconv.ParseInt(v, 10, 64); err != nil || maxID <= 0 {
			return nil, false, f, errBadRequest("max_id must be an event id")
		}
	}
	evs, more, err := s.events.ReplaySelection(r.Context(), f.EventFilter, maxID)
	return evs, more, f, err
}

// confirmReplay is GET /events/replay?filters: how many webhooks would be sent where, before
// anything is sent.
func (s *Server) confirmReplay(w http.ResponseWriter, r *http.Request) error {
	evs, more, f, err := s.replaySelection(r)
	if err != nil {
		return err
	}
	target, err := s.events.ReplayTarget(r.Context(), f.Env)
	var problem validation.Problem
	if err != nil && !errors.As(err, &problem) {
		return err
	}
	vm := templates.ReplayConfirmVM{Layout: s.page(w, r, "events", "Replay webhooks"), Filters: filterVM(f), Count: len(evs), More: more,
		Max: events.MaxReplayBatch, Target: target.URL, Problem: string(problem), Query: f.Form.Query}
	if len(evs) > 0 {
		vm.Query += "&max_id=" + itoa(evs[0].ID)
	}
	return render(w, r, http.StatusOK, templates.ReplayConfirmPage(vm))
}

// replayMatching is POST /events/replay?filters: forwards the selection, four at a time.
func (s *Server) replayMatching(w http.ResponseWriter, r *http.Request) error {
	evs, _, f, err := s.replaySelection(r)
	if err != nil {
		return err
	}
	target, err := s.events.ReplayTarget(r.Context(), f.Env)
	if done, err := flashProblem(w, r, err, "/events?"+f.Form.Query); done {
		return err
	}
	// Up to 200 sends of up to 10 s, four at a time, may outlast the server's write timeout.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(15 * time.Minute))
	a := s.auditFor(r, "event.replay_bulk")
	ok, failed := s.events.ReplayAll(r.Context(), evs, target, a.Actor, a.RequestID)
	if err := s.events.AuditBulkReplay(r.Context(), a, f.Env, target, f.Form.Query, len(evs), ok, failed); err != nil {
		return err
	}
	kind := "ok"
	if failed > 0 {
		kind = "err"
	}
	setFlash(w, r, kind, fmt.Sprintf("Replayed %d webhooks to %s: %d accepted, %d failed (each attempt is listed on its event).", len(evs), target.URL, ok, failed))
	return redirect(w, r, "/events?"+f.Form.Query)
}

// replayExtras adds the replay target and past attempts to an event's page.
func (s *Server) replayExtras(r *http.Request, e db.Event, vm *templates.EventDetailVM) error {
	if e.Source != db.SourceWebhook {
		return nil
	}
	env, err := s.db.EnvironmentByName(r.Context(), e.Env)
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		return err
	}
	vm.ReplayURL = env.ReplayURL
	attempts, err := s.db.ListReplayAttempts(r.Context(), e.ID)
	if err != nil {
		return err
	}
	for _, a := range attempts {
		vm.Replays = append(vm.Replays, templates.ReplayRow{At: a.At, Target: a.Target, Status: a.Status, Duration: a.DurationMS, Error: a.Error, By: a.Actor})
	}
	return nil
}
