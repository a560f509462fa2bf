package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// backend is the integrator's webhook handler: it verifies the signature like a real one would
// and can be told to fail.
type backend struct {
	mu       sync.Mutex
	key      []byte
	received []string // webhook-ids
	fail     bool
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := tensfer.Verify([][]byte{b.key}, r.Header, body, time.Now(), tensfer.DefaultTolerance); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if b.fail {
		http.Error(w, "backend down", http.StatusServiceUnavailable)
		return
	}
	b.received = append(b.received, r.Header.Get("webhook-id"))
}

func TestReplayForwardsResignedWebhooks(t *testing.T) {
	app := newTestApp(t, loopbackOK)
	secret := app.withSecret("sandbox")
	key, _ := tensfer.ParseSecret(secret)
	be := &backend{key: key}
	srv := httptest.NewServer(be)
	defer srv.Close()
	op, _ := app.login(db.RoleOperator)
	for i := range 3 {
		app.sendWebhook("sandbox", secret, fmt.Sprintf("msg_%d", i), `{"type":"payment.cancelled"}`)
	}
	evs, _, _ := app.db.ListEvents(context.Background(), db.EventFilter{})
	// No target yet: a clear message, nothing sent.
	op.postForm(fmt.Sprintf("/events/%d/replay", evs[0].ID), nil)
	if !strings.Contains(op.get(fmt.Sprintf("/events/%d", evs[0].ID)).body, "Set a replay target") {
		t.Fatal("no message about the missing replay target")
	}
	if res := app.patchEnv(app.addToken("a", auth.ScopeAdmin), "sandbox", map[string]any{"replay_url": srv.URL + "/webhooks/tensfer"}); res.StatusCode != 200 {
		t.Fatalf("set replay url: %d %s", res.StatusCode, res.body)
	}
	// One event: re-signed now, so the backend's timestamp check passes however old it is.
	op.postForm(fmt.Sprintf("/events/%d/replay", evs[0].ID), nil)
	if len(be.received) != 1 || be.received[0] != evs[0].Headers["webhook-id"] {
		// The original webhook-id is kept, so the backend can deduplicate.

		t.Fatalf("backend got %v", be.received)
	}
	// Everything matching a filter, after seeing how many.
	doc := op.get("/events/replay?env=sandbox").doc(t)
	if got := strings.TrimSpace(doc.Find(`[data-testid="replay-count"] strong`).Text()); got != "3 webhooks" {
		t.Fatalf("confirm count %q", got)
	}
	action, _ := doc.Find(`form[action^="/events/replay"]`).Attr("action")
	// A webhook arriving after the confirmation is not part of what was confirmed.
	app.sendWebhook("sandbox", secret, "msg_late", `{"type":"payment.cancelled"}`)
	be.mu.Lock()
	be.received = nil
	be.mu.Unlock()
	op.postForm(action, nil)
	if len(be.received) != 3 {
		t.Fatalf("bulk replay delivered %d, want the 3 confirmed", len(be.received))
	}
	// A failing backend is recorded as such.
	be.fail = true
	op.postForm(fmt.Sprintf("/events/%d/replay", evs[1].ID), nil)
	attempts, _ := app.db.ListReplayAttempts(context.Background(), evs[1].ID)
	if len(attempts) != 2 || attempts[0].Status != 503 || attempts[0].Error == "" || attempts[0].DurationMS < 0 {
		t.Fatalf("attempts: %+v", attempts)
	}
	if res := op.get("/events/replay"); res.StatusCode != 400 || !strings.Contains(res.body, "choose one environment") {
		t.Fatalf("replay without env: %d", res.StatusCode)
	}
}

func TestReplayRefusesPrivateTargetsOutsideDemo(t *testing.T) {
	app := newTestApp(t) // loopback not allowed
	secret := app.withSecret("sandbox")
	op, _ := app.login(db.RoleOperator)
	app.sendWebhook("sandbox", secret, "m", `{"type":"x"}`)
	app.patchEnv(app.addToken("a", auth.ScopeAdmin), "sandbox", map[string]any{"replay_url": "http://127.0.0.1:9/hook"})
	evs, _, _ := app.db.ListEvents(context.Background(), db.EventFilter{})
	op.postForm(fmt.Sprintf("/events/%d/replay", evs[0].ID), nil)
	attempts, _ := app.db.ListReplayAttempts(context.Background(), evs[0].ID)
	if len(attempts) != 1 || !strings.Contains(attempts[0].Error, "loopback") {
		t.Fatalf("SSRF guard: %+v", attempts)
	}
}
