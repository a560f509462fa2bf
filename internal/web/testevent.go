package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// testEventType is the type of the dashboard's own test webhooks.
const testEventType = "dashboard.test"

// sendTestEvent signs a test webhook with the environment's active secret and sends it through
// the real ingest path (the router's /hooks/{env} handler, in process), so an operator can check
// the wiring without waiting for Tensfer.
func (s *Server) sendTestEvent(w http.ResponseWriter, r *http.Request) error {
	env, err := envParam(r)
	if err != nil {
		return err
	}
	_, keys, err := s.activeWebhookKeys(r.Context(), env)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return s.testEventDone(w, r, false, "Add a webhook signing secret to "+env+" first (Environments).")
	}
	u, _ := userFrom(r.Context())
	now := s.now()
	reqID := "req_test_" + auth.RandomID(9)
	body, err := json.Marshal(map[string]any{
		"id": "evt_test_" + auth.RandomID(9), "type": testEventType, "created_at": now.UTC().Format(time.RFC3339),
		"request_id": reqID, "data": map[string]any{"message": "test event sent from the dashboard", "sent_by": u.Email},
	})
	if err != nil {
		return err
	}
	req := httptest.NewRequestWithContext(r.Context(), http.MethodPost, "/hooks/"+env, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	tensfer.SignRequest(req, "msg_test_"+auth.RandomID(9), now, body, keys[0])
	req.RemoteAddr = r.RemoteAddr
	rec := httptest.NewRecorder()
	s.router.ServeHTTP(rec, req)
	a := s.auditFor(r, "event.test_send")
	a.Target = "environment:" + env
	a.After = map[string]any{"status": rec.Code, "request_id": reqID}
	if err := s.db.InsertAudit(r.Context(), a); err != nil {
		return err
	}
	if rec.Code != http.StatusOK {
		return s.testEventDone(w, r, false, fmt.Sprintf("The test event was refused (%d): %s", rec.Code, strings.TrimSpace(rec.Body.String())))
	}
	return s.testEventDone(w, r, true, fmt.Sprintf("Sent a signed test webhook to %s; it carries request_id %s.", env, reqID))
}

// testEventDone answers an htmx request with the fragment to swap, a plain form with a redirect.
func (s *Server) testEventDone(w http.ResponseWriter, r *http.Request, ok bool, msg string) error {
	if r.Header.Get("HX-Request") == "true" {
		return render(w, r, http.StatusOK, templates.TestEventResult(ok, msg))
	}
	kind := "ok"
	if !ok {
		kind = "err"
	}
	setFlash(w, kind, msg)
	return redirect(w, r, "/events")
}

// reverifyEvent checks a stored webhook's signature again against today's active secrets (the
// timestamp tolerance does not apply to a stored delivery). It changes nothing.
func (s *Server) reverifyEvent(w http.ResponseWriter, r *http.Request) error {
	e, back, err := s.storedWebhook(r)
	if err != nil {
		return err
	}
	if e.Source != db.SourceWebhook {
		setFlash(w, "err", "Only webhooks carry a signature to verify.")
		return redirect(w, r, back)
	}
	ids, keys, err := s.activeWebhookKeys(r.Context(), e.Env)
	if err != nil {
		return err
	}
	h := http.Header{}
	for k, v := range e.Headers {
		h.Set(k, v)
	}
	ts, _ := time.Parse(time.RFC3339, "1970-01-01T00:00:00Z")
	if sec := e.Headers["webhook-timestamp"]; sec != "" {
		var unix int64
		fmt.Sscan(sec, &unix)
		ts = time.Unix(unix, 0)
	}
	matched, err := tensfer.Verify(keys, h, e.Payload, ts, tensfer.DefaultTolerance)
	if err != nil {
		setFlash(w, "err", "The stored signature does not verify with any active secret of "+e.Env+": "+err.Error())
		return redirect(w, r, back)
	}
	setFlash(w, "ok", "The stored signature verifies with active secret "+ids[matched]+".")
	return redirect(w, r, back)
}

// storedWebhook loads the event named in the path and the URL of its page.
func (s *Server) storedWebhook(r *http.Request) (db.Event, string, error) {
	id, err := eventIDParam(r)
	if err != nil {
		return db.Event{}, "", err
	}
	e, err := s.db.EventByID(r.Context(), id)
	return e, fmt.Sprintf("/events/%d", id), err
}
