package events

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// TestEventType is the type of the dashboard's own test webhooks.
const TestEventType = "dashboard.test"

// TestEvent is the outcome of SendTestEvent.
type TestEvent struct {
	RequestID string // the request_id the test webhook carries, to find it under Lookup
	Refused   error  // non-nil when the pipeline refused it (a *Rejection)
	Result    db.IngestResult
}

// SendTestEvent signs a test webhook with env's active secret and passes it through the same
// verification and storage as a delivery from Tensfer, in process, so an operator can check the
// wiring without waiting for Tensfer. With no signing secret it is a validation.Problem.
func (s *Service) SendTestEvent(ctx context.Context, env, sentBy string, d Delivery) (TestEvent, error) {
	if !tensfer.Environment(env).Valid() {
		return TestEvent{}, db.ErrNotFound
	}
	_, keys, err := s.ActiveWebhookKeys(ctx, env)
	if err != nil {
		return TestEvent{}, err
	}
	if len(keys) == 0 {
		return TestEvent{}, validation.Problem("Add a webhook signing secret to " + env + " first (Environments).")
	}
	now := s.now()
	out := TestEvent{RequestID: "req_test_" + auth.RandomID(9)}
	body, err := json.Marshal(map[string]any{
		"id": "evt_test_" + auth.RandomID(9), "type": TestEventType, "created_at": now.UTC().Format(time.RFC3339),
		"request_id": out.RequestID, "data": map[string]any{"message": "test event sent from the dashboard", "sent_by": sentBy},
	})
	if err != nil {
		return TestEvent{}, err
	}
	// The dashboard's own delivery is no sender of Tensfer's: it must not count as one.
	d.Env, d.Body, d.Client = env, body, ""
	d.Header = http.Header{"Content-Type": {"application/json"}}
	tensfer.SignHeaders(d.Header, "msg_test_"+auth.RandomID(9), now, body, keys[0])
	out.Result, err = s.ReceiveWebhook(ctx, d)
	var rej *Rejection
	if errors.As(err, &rej) {
		out.Refused, err = rej, nil
	}
	return out, err
}

// Reverify checks a stored webhook's signature again against today's active secrets (the
// timestamp tolerance does not apply to a stored delivery) and returns the id of the secret that
// matches. It changes nothing.
func (s *Service) Reverify(ctx context.Context, e db.Event) (string, error) {
	if e.Source != db.SourceWebhook {
		return "", validation.Problem("Only webhooks carry a signature to verify.")
	}
	ids, keys, err := s.ActiveWebhookKeys(ctx, e.Env)
	if err != nil {
		return "", err
	}
	h := http.Header{}
	for k, v := range e.Headers {
		h.Set(k, v)
	}
	ts := time.Unix(0, 0)
	if sec := e.Headers["webhook-timestamp"]; sec != "" {
		if unix, err := strconv.ParseInt(sec, 10, 64); err == nil {
			ts = time.Unix(unix, 0)
		}
	}
	matched, err := tensfer.Verify(keys, h, e.Payload, ts, tensfer.DefaultTolerance)
	if err != nil {
		return "", validation.Problem("The stored signature does not verify with any active secret of " + e.Env + ": " + err.Error())
	}
	return ids[matched], nil
}
