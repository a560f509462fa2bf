package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/events"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// TestDemoTagsOnlyTheSimulator: in demo mode only what the built-in simulator produces is tagged
// demo (its webhooks and callbacks carry the process's demo mark, its API calls run under
// events.WithDemo); an API call reported with a real token, a webhook without the mark or with a
// wrong one, and a callback without it are not.
func TestDemoTagsOnlyTheSimulator(t *testing.T) {
	app := newTestApp(t, func(c *Config) { c.Demo = true })
	whsec := app.withSecret("sandbox")
	app.patchEnv(app.addToken("admin", auth.ScopeAdmin), "sandbox", map[string]any{"allowed_origins": []string{"http://localhost:3000"}})
	mark := app.srv.Events().DemoMark()
	if len(mark) < 16 {
		t.Fatalf("demo mark %q is too short to be a secret", mark)
	}
	webhook := func(id, header string) {
		t.Helper()
		body := `{"type":"payment.completed","request_id":"req_` + id + `","data":{"payment_id":"pay_1"}}`
		key, _ := tensfer.ParseSecret(whsec)
		req, _ := http.NewRequest(http.MethodPost, app.url+"/hooks/sandbox", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if header != "" {
			req.Header.Set(events.DemoHeader, header)
		}
		tensfer.SignRequest(req, id, time.Now(), []byte(body), key)
		if res := app.client().do(req); res.StatusCode != 200 {
			t.Fatalf("webhook %s: %d %s", id, res.StatusCode, res.body)
		}
	}
	callback := func(id, header string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, app.url+"/callbacks/sandbox", strings.NewReader(`{"event":"initialization_error","event_id":"`+id+`","request_id":"req_`+id+`"}`))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Origin", "http://localhost:3000")
		if header != "" {
			req.Header.Set(events.DemoHeader, header)
		}
		if res := app.client().do(req); res.StatusCode != 202 {
			t.Fatalf("callback %s: %d %s", id, res.StatusCode, res.body)
		}
	}
	webhook("sim_hook", mark)
	webhook("plain_hook", "")
	webhook("forged_hook", strings.Repeat("x", len(mark)))
	callback("sim_cb", mark)
	callback("plain_cb", "")
	if res := app.api("POST", "/api/v1/api-calls", app.addToken("svc", auth.ScopeEventsWrite), jsonBody(map[string]any{
		"env": "production", "method": "post", "path": "/v1/payments", "status": 201, "duration_ms": 80, "request_id": "req_reported"})); res.StatusCode != 201 {
		t.Fatalf("api call report: %d %s", res.StatusCode, res.body)
	}
	// The simulator's API calls go through the dashboard's Tensfer client, whose observer stores them.
	app.srv.Events().ObserveTensferCall(events.WithDemo(context.Background()), tensfer.Call{Env: tensfer.Sandbox, Method: "POST", Path: "/v1/payments", Status: 201, RequestID: "req_sim_call"})
	app.srv.Events().ObserveTensferCall(context.Background(), tensfer.Call{Env: tensfer.Sandbox, Method: "GET", Path: "/v1/me", Status: 200, RequestID: "req_own_call"})

	want := map[string]bool{"req_sim_hook": true, "req_plain_hook": false, "req_forged_hook": false, "req_sim_cb": true, "req_plain_cb": false,
		"req_reported": false, "req_sim_call": true, "req_own_call": false}
	evs, _, err := app.db.ListEvents(context.Background(), db.EventFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range evs {
		if demo, ok := want[e.RequestID]; ok {
			seen[e.RequestID] = true
			if e.Demo != demo {
				t.Errorf("%s (%s): demo %v, want %v", e.RequestID, e.Source, e.Demo, demo)
			}
		}
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("%s was not stored", id)
		}
	}
	// The mark is not stored with the event.
	for _, e := range evs {
		if _, ok := e.Headers[strings.ToLower(events.DemoHeader)]; ok {
			t.Errorf("%s stored the demo header", e.RequestID)
		}
	}
}
