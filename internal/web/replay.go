package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// maxReplayBatch bounds one "replay all matching" run; a larger selection is narrowed by time.
const maxReplayBatch = 200

// replayOne forwards a stored webhook to its environment's replay target: the raw body, re-signed
// with the environment's active secret under the original webhook-id and a fresh timestamp (so
// the backend's own verification and idempotency work). Every attempt is recorded.
func (s *Server) replayOne(ctx context.Context, e db.Event, target string, key []byte, actor, reqID string) db.ReplayAttempt {
	a := db.ReplayAttempt{EventID: e.ID, Target: target, Actor: actor, RequestID: reqID}
	id := e.Headers["webhook-id"]
	if id == "" {
		id = "msg_replay_" + strconv.FormatInt(e.ID, 10)
	}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, target, bytes.NewReader(e.Payload))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "tensfer-golive-dashboard/"+s.cfg.Version+" (replay)")
		tensfer.SignRequest(req, id, s.now(), e.Payload, key)
		var res *http.Response
		if res, err = s.safeHTTP.Do(req); err == nil {
			io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
			res.Body.Close()
			a.Status = res.StatusCode
			if res.StatusCode >= 300 {
				a.Error = "answered " + res.Status
			}
		}
	}
	a.DurationMS = time.Since(start).Milliseconds()
	if err != nil {
		a.Error = err.Error()
	}
	if err := s.db.InsertReplayAttempt(context.WithoutCancel(ctx), a); err != nil {
		s.log.Error("record replay attempt", "event_id", e.ID, "error", err)
	}
	return a
}

// replayTarget returns env's replay URL and the key to sign with, or a message saying what to set.
func (s *Server) replayTarget(ctx context.Context, env string) (string, []byte, string, error) {
	e, err := s.db.EnvironmentByName(ctx, env)
	if err != nil {
		return "", nil, "", err
	}
	if e.ReplayURL == "" {
		return "", nil, "Set a replay target for " + env + " under Environments first.", nil
	}
	_, keys, err := s.activeWebhookKeys(ctx, env)
	if err != nil {
		return "", nil, "", err
	}
	if len(keys) == 0 {
		return "", nil, "Add a webhook signing secret to " + env + " first; replays are signed with it.", nil
	}
	return e.ReplayURL, keys[0], "", nil
}

// replayEvent is POST /events/{id}/replay.
func (s *Server) replayEvent(w http.ResponseWriter, r *http.Request) error {
	e, back, err := s.storedWebhook(r)
	if err != nil {
		return err
	}
	if e.Source != db.SourceWebhook {
		setFlash(w, "err", "Only webhooks can be replayed.")
		return redirect(w, r, back)
	}
	id := e.ID
	target, key, msg, err := s.replayTarget(r.Context(), e.Env)
	if err != nil {
		return err
	}
	if msg != "" {
		setFlash(w, "err", msg)
		return redirect(w, r, back)
	}
	a := s.auditFor(r, "event.replay")
	at := s.replayOne(r.Context(), e, target, key, a.Actor, a.RequestID)
	a.Target = "event:" + itoa(id)
	a.After = map[string]any{"target": target, "status": at.Status, "error": at.Error}
	if err := s.db.InsertAudit(r.Context(), a); err != nil {
		return err
	}
	if at.Error != "" {
		setFlash(w, "err", fmt.Sprintf("Replay to %s failed after %d ms: %s", target, at.DurationMS, at.Error))
	} else {
		setFlash(w, "ok", fmt.Sprintf("Replayed to %s: %d in %d ms.", target, at.Status, at.DurationMS))
	}
	return redirect(w, r, back)
}

// replaySelection lists the webhooks a bulk replay would send: the filter's newest first, at most
// maxReplayBatch, and whether there are more.
func (s *Server) replaySelection(r *http.Request) ([]db.Event, bool, templates.EventFilters, error) {
	f, vf, err := eventFilter(r.URL.Query())
	if err != nil {
		return nil, false, vf, err
	}
	if f.Env == "" {
		return nil, false, vf, errBadRequest("choose one environment to replay (its replay target and secret are used)")
	}
	f.Source, f.Limit, f.BeforeID = db.SourceWebhook, maxReplayBatch, 0
	// The POST sends what the confirmation page counted: nothing newer than its newest event.
	if v := r.URL.Query().Get("max_id"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return nil, false, vf, errBadRequest("max_id must be an event id")
		}
		f.BeforeID = id + 1
	}
	evs, next, err := s.db.ListEvents(r.Context(), f)
	return evs, next > 0, vf, err
}

// confirmReplay is GET /events/replay?filters: how many webhooks would be sent where, before
// anything is sent.
func (s *Server) confirmReplay(w http.ResponseWriter, r *http.Request) error {
	evs, more, vf, err := s.replaySelection(r)
	if err != nil {
		return err
	}
	target, _, msg, err := s.replayTarget(r.Context(), vf.Env)
	if err != nil {
		return err
	}
	vm := templates.ReplayConfirmVM{Layout: s.page(w, r, "events", "Replay webhooks"), Filters: vf, Count: len(evs), More: more,
		Max: maxReplayBatch, Target: target, Problem: msg, Query: vf.Query}
	if len(evs) > 0 {
		vm.Query += "&max_id=" + itoa(evs[0].ID)
	}
	return render(w, r, http.StatusOK, templates.ReplayConfirmPage(vm))
}

// replayMatching is POST /events/replay?filters: forwards the selection, four at a time.
func (s *Server) replayMatching(w http.ResponseWriter, r *http.Request) error {
	evs, _, vf, err := s.replaySelection(r)
	if err != nil {
		return err
	}
	target, key, msg, err := s.replayTarget(r.Context(), vf.Env)
	if err != nil {
		return err
	}
	if msg != "" {
		setFlash(w, "err", msg)
		return redirect(w, r, "/events?"+vf.Query)
	}
	// Up to 200 sends of up to 10 s, four at a time, may outlast the server's write timeout.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(15 * time.Minute))
	a := s.auditFor(r, "event.replay_bulk")
	var ok, failed int
	var mu sync.Mutex
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, e := range evs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			at := s.replayOne(r.Context(), e, target, key, a.Actor, a.RequestID)
			mu.Lock()
			if at.Error == "" {
				ok++
			} else {
				failed++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	a.Target = "events:" + vf.Env
	a.After = map[string]any{"target": target, "filter": vf.Query, "sent": len(evs), "ok": ok, "failed": failed}
	if err := s.db.InsertAudit(r.Context(), a); err != nil {
		return err
	}
	kind := "ok"
	if failed > 0 {
		kind = "err"
	}
	setFlash(w, kind, fmt.Sprintf("Replayed %d webhooks to %s: %d accepted, %d failed (each attempt is listed on its event).", len(evs), target, ok, failed))
	return redirect(w, r, "/events?"+vf.Query)
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
