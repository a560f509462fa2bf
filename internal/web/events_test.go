package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/events"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// withSecret gives env a webhook signing secret and returns it.
func (a *testApp) withSecret(env string) string {
	a.t.Helper()
	res := a.api("POST", "/api/v1/environments/"+env+"/webhook-secrets", a.addToken("secret-"+env+auth.RandomID(3), auth.ScopeAdmin), nil)
	var out struct{ Secret string }
	if err := json.Unmarshal([]byte(res.body), &out); err != nil || out.Secret == "" {
		a.t.Fatalf("webhook secret: %d %s", res.StatusCode, res.body)
	}
	return out.Secret
}

func (a *testApp) eventCount() int {
	a.t.Helper()
	var n int
	a.db.R.QueryRow("SELECT count(*) FROM events").Scan(&n)
	return n
}

func (a *testApp) rejected() []db.RejectedDelivery {
	a.t.Helper()
	rows, _, err := a.db.ListRejected(context.Background(), "", 0, 100)
	if err != nil {
		a.t.Fatal(err)
	}
	return rows
}

func TestWebhookIngestAnswers(t *testing.T) {
	app := newTestApp(t)
	secret := app.withSecret("production")
	key, _ := tensfer.ParseSecret(secret)
	other, _ := tensfer.GenerateSecret()
	otherKey, _ := tensfer.ParseSecret(other)
	body := `{"id":"evt_1","type":"payment.cancelled","created_at":"2026-11-26T10:00:00Z","request_id":"req_abc","data":{"payment_id":"pay_1","user_id":"u_42"},"brand_new_field":{"x":1}}`
	post := func(env string, body string, sign func(*http.Request, []byte)) response {
		req, _ := http.NewRequest(http.MethodPost, app.url+"/hooks/"+env, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if sign != nil {
			sign(req, []byte(body))
		}
		return app.client().do(req)
	}
	signAt := func(id string, at time.Time, k []byte) func(*http.Request, []byte) {
		return func(r *http.Request, b []byte) { tensfer.SignRequest(r, id, at, b, k) }
	}
	tests := []struct {
		name   string
		env    string
		body   string
		sign   func(*http.Request, []byte)
		status int
		reason string // kept rejected delivery, "" for none
	}{
		{"valid", "production", body, signAt("msg_1", time.Now(), key), 200, ""},
		{"repeated webhook-id", "production", body, signAt("msg_1", time.Now(), key), 200, ""},
		{"unknown type and fields kept", "production", `{"id":"evt_2","type":"brand.new_type","surprise":[1,2]}`, signAt("msg_2", time.Now(), key), 200, ""},
		{"no headers", "production", body, nil, 401, "missing_header"},
		{"wrong secret", "production", body, signAt("msg_3", time.Now(), otherKey), 401, "no_matching_signature"},
		{"old timestamp", "production", body, signAt("msg_4", time.Now().Add(-10*time.Minute), key), 401, "timestamp_skew"},
		{"future timestamp", "production", body, signAt("msg_5", time.Now().Add(10*time.Minute), key), 401, "timestamp_skew"},
		{"body altered", "production", body, func(r *http.Request, b []byte) {
			tensfer.SignRequest(r, "msg_6", time.Now(), append([]byte(nil), b[:len(b)-1]...), key)
		}, 401, "no_matching_signature"},
		{"malformed JSON", "production", `{"type": "x",`, signAt("msg_7", time.Now(), key), 400, "malformed_json"},
		{"not an object", "production", `[1,2,3]`, signAt("msg_8", time.Now(), key), 400, "malformed_json"},
		{"sandbox has no secret", "sandbox", body, signAt("msg_9", time.Now(), key), 401, "no_active_secret"},
		{"unknown environment", "staging", body, signAt("msg_10", time.Now(), key), 404, "unknown_environment"},
		{"too large", "production", `{"type":"x","pad":"` + strings.Repeat("a", events.MaxWebhookBytes) + `"}`, nil, 413, "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, rejBefore := app.eventCount(), len(app.rejected())
			res := post(tt.env, tt.body, tt.sign)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.status, res.body)
			}
			if res.Header.Get("X-Request-Id") == "" || !json.Valid([]byte(res.body)) {
				t.Fatalf("answer lacks request id or JSON: %s", res.body)
			}
			stored := app.eventCount() - before
			rej := app.rejected()
			switch {
			case tt.status == 200 && strings.Contains(res.body, `"duplicate"`):
				if stored != 0 {
					t.Fatalf("a repeated webhook-id stored %d events", stored)
				}
			case tt.status == 200:
				if stored != 1 {
					t.Fatalf("stored %d events", stored)
				}
			default:
				if stored != 0 || len(rej) != rejBefore+1 || rej[0].Reason != tt.reason {
					t.Fatalf("stored %d events; rejected %d->%d, reason %q, want %q", stored, rejBefore, len(rej), rej[0].Reason, tt.reason)
				}
				if !strings.Contains(res.body, `"request_id"`) || rej[0].RequestID != res.Header.Get("X-Request-Id") {
					t.Fatalf("rejected row not tied to the request id")
				}
			}
		})
	}
	// The stored event keeps the raw bytes, headers and which secret matched.
	evs, _, _ := app.db.ListEvents(context.Background(), db.EventFilter{Type: "payment.cancelled"})
	if len(evs) != 1 || string(evs[0].Payload) != body || evs[0].RequestID != "req_abc" || evs[0].UserID != "u_42" ||
		evs[0].Headers["webhook-id"] != "msg_1" || !strings.Contains(string(evs[0].Verification), "whs_") {
		t.Fatalf("stored event: %+v", evs)
	}
	rej := app.rejected()
	for _, r := range rej {
		if r.Reason == "timestamp_skew" && !strings.Contains(r.Detail, "skew") {
			t.Errorf("skew detail lacks the seconds: %q", r.Detail)
		}
	}
}

func TestWebhookSecretRotation(t *testing.T) {
	app := newTestApp(t)
	admin := app.addToken("admin", auth.ScopeAdmin)
	oldSecret := app.withSecret("production")
	newSecret := app.withSecret("production")
	if res := app.sendWebhook("production", oldSecret, "m1", `{"type":"a"}`); res.StatusCode != 200 {
		t.Fatalf("old secret during rotation: %d", res.StatusCode)
	}
	if res := app.sendWebhook("production", newSecret, "m2", `{"type":"a"}`); res.StatusCode != 200 {
		t.Fatalf("new secret: %d", res.StatusCode)
	}
	secrets, _ := app.db.ListWebhookSecrets(context.Background(), "production")
	for _, s := range secrets {
		fp, _ := tensfer.ParseSecret(oldSecret)
		if s.Fingerprint == app.box.Fingerprint(fp) {
			app.api("DELETE", "/api/v1/environments/production/webhook-secrets/"+s.ID, admin, nil)
		}
	}
	if res := app.sendWebhook("production", oldSecret, "m3", `{"type":"a"}`); res.StatusCode != 401 {
		t.Fatalf("retired secret still accepted: %d", res.StatusCode)
	}
}

func TestConcurrentDuplicateWebhooksStoreOne(t *testing.T) {
	app := newTestApp(t)
	secret := app.withSecret("sandbox")
	var wg sync.WaitGroup
	statuses := make([]int, 24)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = app.sendWebhook("sandbox", secret, "msg_same", `{"type":"identity.profile_ready"}`).StatusCode
		}()
	}
	wg.Wait()
	for _, s := range statuses {
		if s != 200 {
			t.Fatalf("statuses %v", statuses)
		}
	}
	if n := app.eventCount(); n != 1 {
		t.Fatalf("%d events stored for one webhook-id", n)
	}
}

func TestCallbackIngest(t *testing.T) {
	app := newTestApp(t, func(c *Config) { c.CallbackRate = RateLimit{Burst: 8, Every: time.Hour} })
	admin := app.addToken("admin", auth.ScopeAdmin)
	app.patchEnv(admin, "sandbox", map[string]any{"allowed_origins": []string{"http://localhost:3000"}, "app_url": "http://localhost:3000/done"})
	beacon := `{"event":"initialization_error","event_id":"cb_1","session_id":"s1","user_id":"u1","request_id":"req_cb","screen":"consent","error":{"code":"sdk_init_failed","message":"bad client token"}}`
	send := func(origin, ctype, body string) response {
		req, _ := http.NewRequest(http.MethodPost, app.url+"/callbacks/sandbox", strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		return app.client().do(req)
	}
	res := send("http://localhost:3000", "text/plain", beacon) // navigator.sendBeacon's content type
	if res.StatusCode != 202 || res.Header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" {
		t.Fatalf("beacon: %d %q %s", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"), res.body)
	}
	if res := send("http://localhost:3000", "application/json", beacon); res.StatusCode != 200 || !strings.Contains(res.body, "duplicate") {
		t.Fatalf("duplicate event_id: %d %s", res.StatusCode, res.body)
	}
	if res := send("https://evil.example", "application/json", beacon); res.StatusCode != 403 || res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign origin: %d", res.StatusCode)
	}
	for body, want := range map[string]string{`{"event":""}`: "event", `nope`: "callback rejected", `{"event":"screen_loaded","user_id":` + strings.Repeat(`"x`, 10) + `}`: "callback rejected"} {
		if res := send("", "application/json", body); res.StatusCode != 400 || !strings.Contains(res.body, want) {
			t.Errorf("body %q: %d %s", body, res.StatusCode, res.body)
		}
	}
	if res := send("", "application/json", `{"event":"screen_loaded","pad":"`+strings.Repeat("a", events.MaxCallbackBytes)+`"}`); res.StatusCode != 413 {
		t.Errorf("oversized beacon: %d", res.StatusCode)
	}
	// Preflight.
	req, _ := http.NewRequest(http.MethodOptions, app.url+"/callbacks/sandbox", nil)
	req.Header.Set("Origin", "http://localhost:3000")
	req.Header.Set("Access-Control-Request-Method", "POST")
	if res := app.client().do(req); res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Methods") != "POST" {
		t.Errorf("preflight: %d", res.StatusCode)
	}
	// The stored beacon is an error signal with its request_id and user.
	evs, _, _ := app.db.ListEvents(context.Background(), db.EventFilter{Source: db.SourceCallback})
	if len(evs) != 1 || !evs[0].IsError || evs[0].RequestID != "req_cb" || evs[0].UserID != "u1" {
		t.Fatalf("stored callbacks: %+v", evs)
	}
	// The return endpoint records and forwards to the configured app URL only.
	c := app.client()
	res = c.get("/callbacks/sandbox/return?event=accounts_connected&session_id=s9&next=https://evil.example")
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != 303 || loc.Host != "localhost:3000" || loc.Path != "/done" || loc.Query().Get("session_id") != "s9" {
		t.Fatalf("return redirect: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	// Rate limit per client.
	var last response
	for range 10 {
		last = send("", "application/json", `{"event":"screen_loaded"}`)
	}
	if last.StatusCode != 429 || last.Header.Get("Retry-After") == "" {
		t.Fatalf("rate limit: %d", last.StatusCode)
	}
}

func TestReturnWithoutAppURLShowsPage(t *testing.T) {
	app := newTestApp(t)
	res := app.client().get("/callbacks/production/return?event=accounts_connected")
	if res.StatusCode != 200 || !strings.Contains(res.body, "Callback recorded") || res.Header.Get("Location") != "" {
		t.Fatalf("%d %s", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestAPICallReports(t *testing.T) {
	app := newTestApp(t)
	writer := app.addToken("svc", auth.ScopeEventsWrite)
	reader := app.addToken("reader", auth.ScopeEventsRead)
	ok := map[string]any{"env": "production", "method": "post", "path": "/v1/payments", "status": 500, "duration_ms": 812,
		"request_id": "req_srv", "error_code": "internal_error", "error_message": "boom"}
	res := app.api("POST", "/api/v1/api-calls", writer, jsonBody(ok))
	if res.StatusCode != 201 {
		t.Fatalf("report: %d %s", res.StatusCode, res.body)
	}
	tests := []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"env": "prod", "method": "GET", "path": "/v1/x", "status": 200}, "env"},
		{map[string]any{"env": "sandbox", "method": "FETCH", "path": "/v1/x", "status": 200}, "method"},
		{map[string]any{"env": "sandbox", "method": "GET", "path": "v1/x", "status": 200}, "path"},
		{map[string]any{"env": "sandbox", "method": "GET", "path": "/v1/x", "status": 700}, "status"},
		{map[string]any{"env": "sandbox", "method": "GET", "path": "/v1/x"}, "status"},
		{map[string]any{"env": "sandbox", "method": "GET", "path": "/v1/x", "status": 200, "duration_ms": -1}, "duration_ms"},
	}
	for _, tt := range tests {
		res := app.api("POST", "/api/v1/api-calls", writer, jsonBody(tt.body))
		var e fieldsError
		json.Unmarshal([]byte(res.body), &e)
		if res.StatusCode != 422 || e.Error.Fields[tt.field] == "" {
			t.Errorf("%v: %d %s", tt.body, res.StatusCode, res.body)
		}
	}
	if res := app.api("POST", "/api/v1/api-calls", reader, jsonBody(ok)); res.StatusCode != 403 {
		t.Errorf("events:read token reported a call: %d", res.StatusCode)
	}
	timeout := map[string]any{"env": "production", "method": "GET", "path": "/v1/payments/p1", "status": nil, "timeout": true, "request_id": "req_to"}
	if res := app.api("POST", "/api/v1/api-calls", writer, jsonBody(timeout)); res.StatusCode != 201 {
		t.Fatalf("timeout report: %d %s", res.StatusCode, res.body)
	}
	res = app.api("GET", "/api/v1/events?source=api&status=error", reader, nil)
	var page struct {
		Events []eventJSON `json:"events"`
	}
	json.Unmarshal([]byte(res.body), &page)
	if len(page.Events) != 2 || page.Events[0].Type != "api.timeout" || page.Events[1].Method != "POST" || *page.Events[1].Status != 500 {
		t.Fatalf("error calls: %s", res.body)
	}
}

func TestEventsAPIFiltersPaginatesAndLooksUp(t *testing.T) {
	app := newTestApp(t)
	secret := app.withSecret("production")
	writer := app.addToken("svc", auth.ScopeEventsWrite)
	reader := app.addToken("reader", auth.ScopeEventsRead)
	// One request_id across all three sources, plus noise.
	app.api("POST", "/api/v1/api-calls", writer, jsonBody(map[string]any{"env": "production", "method": "POST", "path": "/v1/payments", "status": 201, "request_id": "req_shared"}))
	app.sendWebhook("production", secret, "m1", `{"type":"payment.cancelled","request_id":"req_shared","data":{}}`)
	req, _ := http.NewRequest(http.MethodPost, app.url+"/callbacks/production", strings.NewReader(`{"event":"screen_loaded","request_id":"req_shared"}`))
	app.client().do(req)
	for i := range 7 {
		app.sendWebhook("production", secret, fmt.Sprintf("n%d", i), `{"type":"identity.profile_ready"}`)
	}
	res := app.api("GET", "/api/v1/lookup/req_shared", reader, nil)
	var look struct {
		RequestID string      `json:"request_id"`
		Events    []eventJSON `json:"events"`
	}
	json.Unmarshal([]byte(res.body), &look)
	if len(look.Events) != 3 || look.Events[0].Source != "api" || look.Events[1].Source != "webhook" || look.Events[2].Source != "callback" {
		t.Fatalf("lookup: %s", res.body)
	}
	var all []string
	cursor := ""
	for page := 0; page < 10; page++ {
		res := app.api("GET", "/api/v1/events?env=production&source=webhook&limit=3"+cursor, reader, nil)
		var p struct {
			Events     []eventJSON `json:"events"`
			NextCursor *string     `json:"next_cursor"`
		}
		json.Unmarshal([]byte(res.body), &p)
		for _, e := range p.Events {
			all = append(all, e.ID)
		}
		if p.NextCursor == nil {
			break
		}
		cursor = "&cursor=" + *p.NextCursor
	}
	if len(all) != 8 {
		t.Fatalf("paged webhooks: %v", all)
	}
	for q, want := range map[string]string{"env=prod": "env must be", "source=x": "source must be", "limit=0": "limit must be", "cursor=x": "cursor", "since=yesterday": "since must be"} {
		if res := app.api("GET", "/api/v1/events?"+q, reader, nil); res.StatusCode != 400 || !strings.Contains(res.body, want) {
			t.Errorf("%s: %d %s", q, res.StatusCode, res.body)
		}
	}
	if res := app.api("GET", "/api/v1/events/"+all[0], reader, nil); res.StatusCode != 200 || !strings.Contains(res.body, `"payload":{`) {
		t.Fatalf("event by id: %d %s", res.StatusCode, res.body)
	}
	if res := app.api("GET", "/api/v1/events/999999", reader, nil); res.StatusCode != 404 {
		t.Fatalf("missing event: %d", res.StatusCode)
	}
}

// sseClient reads a live stream line by line.
type sseClient struct {
	res *http.Response
	sc  *bufio.Scanner
}

func (c *client) stream(t *testing.T, path, lastID string) *sseClient {
	t.Helper()
	// A deadline so a missing row fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.app.url+path, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream %s: %d", path, res.StatusCode)
	}
	t.Cleanup(func() { res.Body.Close() })
	return &sseClient{res: res, sc: bufio.NewScanner(res.Body)}
}

// next returns the id and data of the next "row" message.
func (s *sseClient) next(t *testing.T) (string, string) {
	t.Helper()
	var id, data string
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "data: "):
			data += line[6:]
		case line == "" && data != "":
			return id, data
		}
	}
	t.Fatalf("stream ended: %v", s.sc.Err())
	return "", ""
}

func TestStreamFiltersAndResumesWithoutGaps(t *testing.T) {
	app := newTestApp(t)
	secret := app.withSecret("production")
	sb := app.withSecret("sandbox")
	viewer, _ := app.login(db.RoleViewer)
	st := viewer.stream(t, "/events/stream?env=production", "")
	app.sendWebhook("sandbox", sb, "s1", `{"type":"sandbox.only"}`)
	app.sendWebhook("production", secret, "p1", `{"type":"first"}`)
	id1, row := st.next(t)
	if !strings.Contains(row, "first") || strings.Contains(row, "sandbox.only") || !strings.Contains(row, `data-testid="event-row"`) {
		t.Fatalf("first row: %s", row)
	}
	// The browser goes away; three events arrive; it comes back with Last-Event-ID.
	st.res.Body.Close()
	for i := range 3 {
		app.sendWebhook("production", secret, fmt.Sprintf("p%d", i+2), fmt.Sprintf(`{"type":"missed_%d"}`, i))
	}
	st2 := viewer.stream(t, "/events/stream?env=production", id1)
	for i := range 3 {
		_, row := st2.next(t)
		if !strings.Contains(row, fmt.Sprintf("missed_%d", i)) {
			t.Fatalf("resume row %d: %s", i, row)
		}
	}
	app.sendWebhook("production", secret, "p9", `{"type":"live_again"}`)
	if _, row := st2.next(t); !strings.Contains(row, "live_again") {
		t.Fatalf("after resume: %s", row)
	}
}

func TestStreamBackfillsFromDatabaseBeyondTheRing(t *testing.T) {
	app := newTestApp(t, func(c *Config) { c.FeedBuffer = 2 })
	secret := app.withSecret("production")
	viewer, _ := app.login(db.RoleViewer)
	app.sendWebhook("production", secret, "a", `{"type":"seen"}`)
	evs, _, _ := app.db.ListEvents(context.Background(), db.EventFilter{})
	for i := range 5 {
		app.sendWebhook("production", secret, fmt.Sprintf("b%d", i), fmt.Sprintf(`{"type":"missed_%d"}`, i))
	}
	// The ring holds only the last 2; the 3 before come from the database, in order, once each.
	st := viewer.stream(t, "/events/stream", itoa(evs[0].ID))
	for i := range 5 {
		id, row := st.next(t)
		if !strings.Contains(row, fmt.Sprintf("missed_%d", i)) || id != itoa(evs[0].ID+int64(i)+1) {
			t.Fatalf("row %d: id %s %s", i, id, row)
		}
	}
	// A page rendered on an empty database resumes from 0: everything, oldest first.
	st = viewer.stream(t, "/events/stream", "0")
	for i := range 6 {
		if id, _ := st.next(t); id != itoa(evs[0].ID+int64(i)) {
			t.Fatalf("from 0, row %d has id %s", i, id)
		}
	}
}

func TestStreamAppliesTimeAndRequestFilters(t *testing.T) {
	app := newTestApp(t)
	secret := app.withSecret("production")
	viewer, _ := app.login(db.RoleViewer)
	st := viewer.stream(t, "/events/stream?request_id=req_wanted&since="+time.Now().Add(-time.Minute).UTC().Format(time.RFC3339), "")
	app.sendWebhook("production", secret, "a", `{"type":"other","request_id":"req_other"}`)
	app.sendWebhook("production", secret, "b", `{"type":"wanted","request_id":"req_wanted"}`)
	if _, row := st.next(t); !strings.Contains(row, "req_wanted") {
		t.Fatalf("request_id filter not applied to the stream: %s", row)
	}
	// A window that starts in the future matches only once it has started.
	since := time.Now().Add(time.Hour)
	st2 := viewer.stream(t, "/events/stream?since="+since.UTC().Format(time.RFC3339), "")
	app.sendWebhook("production", secret, "c", `{"type":"before_window"}`)
	later := time.Now().Add(2 * time.Hour)
	app.db.SetClock(func() time.Time { return later }) // the time the event is received at
	if res := app.sendWebhook("production", secret, "d", `{"type":"inside_window"}`); res.StatusCode != 200 {
		t.Fatalf("webhook: %d", res.StatusCode)
	}
	if _, row := st2.next(t); !strings.Contains(row, "inside_window") {
		t.Fatalf("since not applied to the stream: %s", row)
	}
}

func TestLookupPageAndSupportBundle(t *testing.T) {
	app := newTestApp(t)
	secret := app.withSecret("production")
	viewer, _ := app.login(db.RoleViewer)
	app.sendWebhook("production", secret, "m1", `{"type":"payment.cancelled","request_id":"req_find_me","data":{"user_id":"u_7"}}`)
	doc := viewer.get("/lookup?q=req_find_me").doc(t)
	if n := doc.Find(`[data-testid="timeline"] [data-testid="timeline-step"]`).Length(); n != 1 {
		t.Fatalf("lookup steps: %d", n)
	}
	if doc.Find(`[data-testid="lookup-empty"]`).Length() != 0 {
		t.Fatal("empty state shown with results")
	}
	if d := viewer.get("/lookup?q=u_7").doc(t); d.Find(`[data-testid="timeline-step"]`).Length() != 1 {
		t.Fatal("lookup by user id")
	}
	if d := viewer.get("/lookup?q=req_nothing").doc(t); d.Find(`[data-testid="lookup-empty"]`).Length() != 1 {
		t.Fatal("no empty state")
	}
	res := viewer.get("/lookup/bundle?q=req_find_me")
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Disposition"), "tensfer-support-req_find_me.json") || strings.Contains(res.body, strings.TrimPrefix(secret, "whsec_")) {
		t.Fatalf("bundle: %d %s", res.StatusCode, res.Header.Get("Content-Disposition"))
	}
	var b struct {
		Events []eventJSON `json:"events"`
	}
	if json.Unmarshal([]byte(res.body), &b); len(b.Events) != 1 || b.Events[0].RequestID != "req_find_me" {
		t.Fatalf("bundle events: %s", res.body)
	}
}

func TestTestEventAndReverify(t *testing.T) {
	app := newTestApp(t)
	op, _ := app.login(db.RoleOperator)
	if res := op.postForm("/environments/production/test-event", nil); res.StatusCode != 303 || !strings.Contains(op.get("/events").body, "Add a webhook signing secret") {
		t.Fatalf("test event without secret: %d", res.StatusCode)
	}
	app.withSecret("production")
	op.postForm("/environments/production/test-event", nil)
	evs, _, _ := app.db.ListEvents(context.Background(), db.EventFilter{Type: "dashboard.test"})
	if len(evs) != 1 || evs[0].Env != "production" || !strings.HasPrefix(evs[0].RequestID, "req_test_") {
		t.Fatalf("test event: %+v", evs)
	}
	// The flash links the test event's request_id to its lookup.
	if href := op.get("/events").doc(t).Find(`[data-testid="flash-link"]`).AttrOr("href", ""); href != "/lookup?q="+evs[0].RequestID {
		t.Fatalf("test event flash links to %q", href)
	}
	op.postForm(fmt.Sprintf("/events/%d/reverify", evs[0].ID), nil)
	if page := op.get(fmt.Sprintf("/events/%d", evs[0].ID)).body; !strings.Contains(page, "verifies with active secret") {
		t.Fatal("re-verify did not confirm the signature")
	}
}

func TestEventsPageAndExport(t *testing.T) {
	app := newTestApp(t)
	secret := app.withSecret("production")
	viewer, _ := app.login(db.RoleViewer)
	if doc := viewer.get("/events").doc(t); doc.Find(`[data-testid="events-empty"]`).Length() != 1 {
		t.Fatal("no empty state on a fresh install")
	}
	for i := range 55 {
		app.sendWebhook("production", secret, fmt.Sprintf("m%d", i), fmt.Sprintf(`{"type":"t%d","request_id":"req_%d"}`, i%2, i))
	}
	doc := viewer.get("/events").doc(t)
	if n := doc.Find(`[data-testid="event-row"]`).Length(); n != 50 {
		t.Fatalf("first page rows %d", n)
	}
	if _, ok := doc.Find("#feed").Attr("data-stream"); !ok {
		t.Fatal("first page is not live")
	}
	next, _ := doc.Find(`[data-testid="events-next"]`).Attr("href")
	doc = viewer.get(next).doc(t)
	if n := doc.Find(`[data-testid="event-row"]`).Length(); n != 5 {
		t.Fatalf("second page rows %d", n)
	}
	if _, ok := doc.Find("#feed").Attr("data-stream"); ok {
		t.Fatal("an older page streams live")
	}
	if n := viewer.get("/events?type=t1").doc(t).Find(`[data-testid="event-row"]`).Length(); n != 27 {
		t.Fatalf("type filter rows %d", n)
	}
	res := viewer.get("/events/export?format=csv&type=t0")
	lines := strings.Split(strings.TrimSpace(res.body), "\n")
	if res.StatusCode != 200 || len(lines) != 29 || !strings.HasPrefix(lines[0], "id,received_at") {
		t.Fatalf("csv: %d, %d lines", res.StatusCode, len(lines))
	}
	res = viewer.get("/events/export?format=ndjson")
	if n := len(strings.Split(strings.TrimSpace(res.body), "\n")); n != 55 {
		t.Fatalf("ndjson lines %d", n)
	}
	if res := viewer.get("/events?env=mars"); res.StatusCode != 400 {
		t.Fatalf("bad filter: %d", res.StatusCode)
	}
}

func TestRetentionPurgesOldEventsOnly(t *testing.T) {
	app := newTestApp(t, func(c *Config) { c.RetentionDays = 30 })
	secret := app.withSecret("production")
	for i := range 3 {
		app.sendWebhook("production", secret, fmt.Sprintf("old%d", i), `{"type":"old"}`)
	}
	// 31 days pass; two new events arrive.
	later := time.Now().Add(31 * 24 * time.Hour)
	app.db.SetClock(func() time.Time { return later })
	app.srv.SetClock(func() time.Time { return later })
	for i := range 2 {
		req, _ := http.NewRequest(http.MethodPost, app.url+"/callbacks/production", strings.NewReader(fmt.Sprintf(`{"event":"screen_loaded","event_id":"new%d"}`, i)))
		app.client().do(req)
	}
	events, _, err := app.srv.events.PurgeOld(context.Background())
	if err != nil || events != 3 {
		t.Fatalf("purged %d, %v", events, err)
	}
	left, _, _ := app.db.ListEvents(context.Background(), db.EventFilter{})
	if len(left) != 2 || left[0].Source != "callback" {
		t.Fatalf("left: %+v", left)
	}
}
