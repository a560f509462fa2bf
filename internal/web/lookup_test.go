package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/events"
)

// plantEvents stores n callbacks carrying requestID with payload, straight into the table (as
// a flood of 64 KiB beacons would have), and returns the first id.
func (a *testApp) plantEvents(n int, requestID, payload string) int64 {
	a.t.Helper()
	_, err := a.db.W.Exec(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?1)
		INSERT INTO events (source, env, type, request_id, received_at, payload) SELECT 'callback', 'production', 'screen_loaded', ?2, ?3, ?4 FROM s`,
		n, requestID, time.Now().UnixMilli(), []byte(payload))
	if err != nil {
		a.t.Fatal(err)
	}
	var last int64
	if err := a.db.R.QueryRow("SELECT max(id) FROM events").Scan(&last); err != nil {
		a.t.Fatal(err)
	}
	return last - int64(n) + 1
}

// streamedAnswer is the shape of a support bundle and of the API lookup, with the end markers.
type streamedAnswer struct {
	Query           string      `json:"query"`
	RequestID       string      `json:"request_id"`
	Events          []eventJSON `json:"events"`
	EventCount      int         `json:"event_count"`
	Truncated       *bool       `json:"truncated"`
	TruncatedReason string      `json:"truncated_reason"`
}

func decodeAnswer(t *testing.T, res response) streamedAnswer {
	t.Helper()
	var out streamedAnswer
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %.300s", res.StatusCode, res.body)
	}
	if err := json.Unmarshal([]byte(res.body), &out); err != nil {
		t.Fatalf("answer is not valid JSON (%v): ...%s", err, res.body[max(0, len(res.body)-300):])
	}
	if out.Truncated == nil || out.EventCount != len(out.Events) {
		t.Fatalf("answer ends without its markers: truncated %v, event_count %d for %d events", out.Truncated, out.EventCount, len(out.Events))
	}
	return out
}

func TestSupportBundleAndAPILookupStreamWithinTheirCap(t *testing.T) {
	const limit = 1 << 20
	app := newTestApp(t, func(c *Config) { c.LookupMaxBytes = limit })
	viewer, _ := app.login(db.RoleViewer)
	reader := app.addToken("reader", auth.ScopeEventsRead)
	junk := strings.Repeat("x", 64<<10)
	payload := `{"event":"screen_loaded","screen":"pay","junk":"` + junk + `"}`
	first := app.plantEvents(40, "req_big", payload) // 2.5 MiB of payloads under one id
	app.plantEvents(2, "req_small", `{"event":"screen_loaded","screen":"home"}`)

	for _, tc := range []struct {
		name, path, token, remedy string
	}{
		{"support bundle", "/lookup/bundle?q=req_big", "", "/events/export"},
		{"API lookup", "/api/v1/lookup/req_big", reader, "/api/v1/events?request_id="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res response
			if tc.token == "" {
				res = viewer.get(tc.path)
			} else {
				res = app.api("GET", tc.path, tc.token, nil)
			}
			out := decodeAnswer(t, res)
			if len(res.body) > limit+4096 {
				t.Fatalf("answer of %d bytes passed its %d byte cap", len(res.body), limit)
			}
			// 64 KiB events: 15 fit in 1 MiB; the 16th is where the cut is.
			if !*out.Truncated || len(out.Events) != 15 {
				t.Fatalf("truncated %v with %d events, want true with 15", *out.Truncated, len(out.Events))
			}
			for _, want := range []string{"1 MiB", "first 15", itoa(first + 15), tc.remedy} {
				if !strings.Contains(out.TruncatedReason, want) {
					t.Errorf("truncated_reason %q does not say %q", out.TruncatedReason, want)
				}
			}
			for i, e := range out.Events {
				if e.ID != itoa(first+int64(i)) || string(e.Payload) != payload {
					t.Fatalf("event %d: id %s, %d payload bytes: not the stored event, whole and in order", i, e.ID, len(e.Payload))
				}
			}
			if !strings.HasSuffix(res.body, `"truncated":true,"truncated_reason":`+string(mustJSON(out.TruncatedReason))+"}\n") {
				t.Fatalf("the marker is not the last thing in the answer: ...%s", res.body[len(res.body)-200:])
			}
		})
	}
	small := decodeAnswer(t, viewer.get("/lookup/bundle?q=req_small"))
	if *small.Truncated || small.TruncatedReason != "" || len(small.Events) != 2 || small.Query != "req_small" {
		t.Fatalf("a small bundle: %+v", small)
	}

	// The lookup page lists summaries read from the first bytes of each payload.
	doc := viewer.get("/lookup?q=req_big").doc(t)
	if rows := doc.Find(`[data-testid="timeline"] [data-testid="timeline-step"]`); rows.Length() != 40 || !strings.Contains(rows.First().Text(), "screen pay") {
		t.Fatalf("lookup page: %d rows, first %q", rows.Length(), rows.First().Text())
	}
	if doc.Find(`[data-testid="lookup-truncated"]`).Length() != 0 {
		t.Fatal("40 events shown as truncated")
	}
	// The export reads pages ended by size, and loses nothing between them.
	res := viewer.get("/events/export?format=ndjson&request_id=req_big")
	if n := strings.Count(res.body, "\n"); res.StatusCode != 200 || n != 40 {
		t.Fatalf("export: %d with %d lines, want 40", res.StatusCode, n)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestLookupsSayWhenMoreThanTheirLimitMatch(t *testing.T) {
	app := newTestApp(t)
	viewer, _ := app.login(db.RoleViewer)
	reader := app.addToken("reader", auth.ScopeEventsRead)
	first := app.plantEvents(events.LookupLimit, "req_many", `{"screen":"s"}`)
	check := func(wantCut bool) {
		t.Helper()
		for _, path := range []string{"/lookup/bundle?q=req_many", "/api/v1/lookup/req_many"} {
			var res response
			if strings.HasPrefix(path, "/api/") {
				res = app.api("GET", path, reader, nil)
			} else {
				res = viewer.get(path)
			}
			out := decodeAnswer(t, res)
			if len(out.Events) != events.LookupLimit || *out.Truncated != wantCut {
				t.Fatalf("%s: %d events, truncated %v; want %d, %v", path, len(out.Events), *out.Truncated, events.LookupLimit, wantCut)
			}
			if wantCut && (!strings.Contains(out.TruncatedReason, "More than 1000 events") || !strings.Contains(out.TruncatedReason, itoa(first+999))) {
				t.Fatalf("%s: truncated_reason %q", path, out.TruncatedReason)
			}
		}
		doc := viewer.get("/lookup?q=req_many").doc(t)
		if n := doc.Find(`[data-testid="timeline"] [data-testid="timeline-step"]`).Length(); n != events.LookupLimit {
			t.Fatalf("lookup page: %d rows", n)
		}
		if got := doc.Find(`[data-testid="lookup-truncated"]`).Length() == 1; got != wantCut {
			t.Fatalf("lookup page truncated notice shown %v, want %v", got, wantCut)
		}
	}
	check(false) // exactly the limit: nothing was left out
	app.plantEvents(1, "req_many", `{"screen":"s"}`)
	check(true)
}

// TestAPILookupTakesALimit: GET /api/v1/lookup/{request_id}?limit=N answers at most N events,
// oldest first, marked truncated with how to get more when more carry the id; a limit outside
// 1 to 1000 is 400 saying so.
func TestAPILookupTakesALimit(t *testing.T) {
	app := newTestApp(t)
	reader := app.addToken("reader", auth.ScopeEventsRead)
	first := app.plantEvents(3, "req_lim", `{"screen":"s"}`)
	for _, c := range []struct {
		limit string
		n     int
		cut   bool
	}{{"1", 1, true}, {"2", 2, true}, {"3", 3, false}, {"1000", 3, false}, {"", 3, false}} {
		out := decodeAnswer(t, app.api("GET", "/api/v1/lookup/req_lim?limit="+c.limit, reader, nil))
		if len(out.Events) != c.n || *out.Truncated != c.cut || out.Events[0].ID != itoa(first) {
			t.Fatalf("limit %q: %d events from %s, truncated %v; want %d from %d, %v", c.limit, len(out.Events), out.Events[0].ID, *out.Truncated, c.n, first, c.cut)
		}
		if c.cut && !strings.Contains(out.TruncatedReason, "Raise limit (at most 1000)") {
			t.Errorf("limit %q: truncated_reason %q does not say how to get more", c.limit, out.TruncatedReason)
		}
	}
	for _, bad := range []string{"0", "-1", "1001", "ten", "2.5"} {
		res := app.api("GET", "/api/v1/lookup/req_lim?limit="+bad, reader, nil)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(res.body, "limit must be a whole number from 1 to 1000") {
			t.Errorf("limit %q: %d %s", bad, res.StatusCode, res.body)
		}
	}
}

// TestLargeAnswersShareBoundedSlots: support bundles, API lookups and exports are written at most
// maxAnswers at a time, all together, so slow readers cannot hold unbounded memory; past that each
// is refused with 503 and Retry-After (never offered as a download), and a finished answer gives
// its slot back.
func TestLargeAnswersShareBoundedSlots(t *testing.T) {
	app := newTestApp(t)
	viewer, _ := app.login(db.RoleViewer)
	reader := app.addToken("reader", auth.ScopeEventsRead)
	app.plantEvents(1, "req_x", `{}`)
	get := map[string]func() response{
		"support bundle": func() response { return viewer.get("/lookup/bundle?q=req_x") },
		"lookup":         func() response { return app.api("GET", "/api/v1/lookup/req_x", reader, nil) },
		"export":         func() response { return viewer.get("/events/export?format=ndjson&request_id=req_x") },
	}
	for range maxAnswers {
		app.srv.answerSlots <- struct{}{} // answers being written
	}
	for what, fn := range get {
		res := fn()
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" ||
			!strings.Contains(res.body, "this "+what+" was not started; try again in a few seconds") {
			t.Fatalf("%s with every slot taken: %d %q %.300s", what, res.StatusCode, res.Header.Get("Retry-After"), res.body)
		}
		if res.Header.Get("Content-Disposition") != "" {
			t.Fatalf("%s: the refusal is offered as a download", what)
		}
	}
	<-app.srv.answerSlots
	for what, fn := range get {
		if res := fn(); res.StatusCode != http.StatusOK || !strings.Contains(res.body, "req_x") {
			t.Fatalf("%s once a slot is free: %d %.300s", what, res.StatusCode, res.body)
		}
		if len(app.srv.answerSlots) != maxAnswers-1 {
			t.Fatalf("a finished %s kept its slot: %d taken", what, len(app.srv.answerSlots))
		}
	}
}

// TestAPIEventPagesAreBoundedInBytes: a page of GET /api/v1/events ends early, with a cursor that
// reaches the rest, once its payloads pass listPageBytes, whatever limit was asked for.
func TestAPIEventPagesAreBoundedInBytes(t *testing.T) {
	app := newTestApp(t)
	reader := app.addToken("reader", auth.ScopeEventsRead)
	big := `{"pad":"` + strings.Repeat("x", 512<<10) + `"}`
	app.plantEvents(10, "req_big_page", big)
	var seen int
	cursor := ""
	for pages := 0; ; pages++ {
		res := app.api("GET", "/api/v1/events?request_id=req_big_page&limit=500"+cursor, reader, nil)
		var out struct {
			Events     []json.RawMessage `json:"events"`
			NextCursor *string           `json:"next_cursor"`
		}
		if err := json.Unmarshal([]byte(res.body), &out); err != nil || res.StatusCode != 200 {
			t.Fatalf("page %d: %d %v", pages, res.StatusCode, err)
		}
		if len(out.Events)*len(big) > listPageBytes+len(big) {
			t.Fatalf("page %d holds %d events of %d bytes: over the %d byte bound", pages, len(out.Events), len(big), listPageBytes)
		}
		seen += len(out.Events)
		if out.NextCursor == nil {
			break
		}
		cursor = "&cursor=" + *out.NextCursor
	}
	if seen != 10 {
		t.Fatalf("the pages held %d events in all, want 10", seen)
	}
}

// TestStreamedAnswerReadFailures: a read that fails before anything was sent is an ordinary
// error answer; one that fails part-way ends the JSON, marked truncated with the reason.
func TestStreamedAnswerReadFailures(t *testing.T) {
	app := newTestApp(t)
	boom := errors.New("disk I/O error")
	req := httptest.NewRequest("GET", "/lookup/bundle?q=x", nil).WithContext(context.WithValue(context.Background(), ctxRequest, &requestInfo{id: "req_test"}))
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Disposition", "attachment")
	err := app.srv.writeEventsAnswer(rec, req, jsonObjectHead("query", "x"), events.LookupLimit, "", func(func(db.Event) error) error { return boom })
	if !errors.Is(err, boom) || rec.Body.Len() != 0 || rec.Header().Get("Content-Disposition") != "" {
		t.Fatalf("failure before the first event: %v, %d bytes sent", err, rec.Body.Len())
	}
	rec = httptest.NewRecorder()
	err = app.srv.writeEventsAnswer(rec, req, jsonObjectHead("query", "x"), events.LookupLimit, "", func(fn func(db.Event) error) error {
		for i := range 2 {
			if err := fn(db.Event{ID: int64(i + 1), EventInput: db.EventInput{Payload: []byte(`{}`)}}); err != nil {
				return err
			}
		}
		return boom
	})
	var out streamedAnswer
	if err != nil || json.Unmarshal(rec.Body.Bytes(), &out) != nil || len(out.Events) != 2 || !*out.Truncated ||
		!strings.Contains(out.TruncatedReason, "failed part-way") || !strings.Contains(out.TruncatedReason, "req_test") {
		t.Fatalf("failure part-way: %v %s", err, rec.Body.String())
	}
}

func TestPayloadFieldsReadsAPreviewCutShort(t *testing.T) {
	full := `{"type":"payment.cancelled","data":{"amount":12,"user_id":"u_1","note":"` + strings.Repeat("n", 5000) + `"},"error":{"code":"E1"}}`
	for _, tc := range []struct {
		name    string
		payload string
		want    map[string]string
	}{
		{"whole", full, map[string]string{"type": `"payment.cancelled"`, "data.amount": "12", "data.user_id": `"u_1"`, "error.code": `"E1"`}},
		{"cut inside data", full[:100], map[string]string{"type": `"payment.cancelled"`, "data.amount": "12", "data.user_id": `"u_1"`}},
		{"data not an object", `{"data":[1,{"a":2}],"error":"x","screen":"s"}`, map[string]string{"error": `"x"`, "screen": `"s"`}},
		{"not JSON", `<xml/>`, map[string]string{}},
		{"empty", ``, map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := payloadFields([]byte(tc.payload))
			for k, v := range tc.want {
				if string(got[k]) != v {
					t.Errorf("%s = %s, want %s", k, got[k], v)
				}
			}
			if _, ok := got["data.note"]; ok && tc.name != "whole" {
				t.Error("a member cut short was kept")
			}
		})
	}
	// The webhook summary of a payload cut in the middle still shows what came before the cut.
	e := db.Event{EventInput: db.EventInput{Source: db.SourceWebhook, Payload: []byte(full[:100])}}
	if got := eventSummary(e); got != "amount=12 user_id=u_1" {
		t.Fatalf("summary of a preview: %q", got)
	}
}

// plantStep stores one event received at the given time, straight into the table, and returns
// its id.
func (a *testApp) plantStep(at time.Time, in db.EventInput) int64 {
	a.t.Helper()
	if len(in.Payload) == 0 {
		in.Payload = []byte(`{}`)
	}
	var status any
	if in.Source == db.SourceAPI {
		status = in.Status
	}
	var id int64
	err := a.db.W.QueryRow(`INSERT INTO events (source, env, type, request_id, user_id, received_at, is_error, method, path, status, duration_ms, error_code, payload)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, in.Source, in.Env, in.Type, in.RequestID, in.UserID, at.UnixMilli(), in.IsError,
		in.Method, in.Path, status, in.DurationMS, in.ErrorCode, in.Payload).Scan(&id)
	if err != nil {
		a.t.Fatal(err)
	}
	return id
}

// texts is the trimmed text of each match of sel under s.
func texts(s *goquery.Selection, sel string) []string {
	var out []string
	s.Find(sel).Each(func(_ int, e *goquery.Selection) { out = append(out, strings.Join(strings.Fields(e.Text()), " ")) })
	return out
}

// TestLookupShowsOneTimelinePerRequestID: the lookup page groups what it finds by request_id,
// one timeline each, ordered by their first step; each timeline lists its steps oldest first with
// their source, what they were, the time since the first step and since the one before (the
// absolute time on hover), and links to each event; its head counts the steps by source, gives
// the span and says how many failed. The page has one search box, the top bar's.
func TestLookupShowsOneTimelinePerRequestID(t *testing.T) {
	app := newTestApp(t)
	viewer, _ := app.login(db.RoleViewer)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// Planted out of order: the timeline orders by time, not by id.
	hook := app.plantStep(t0.Add(3*time.Minute+20*time.Second), db.EventInput{Source: db.SourceWebhook, Env: "production", Type: "payment.cancelled", RequestID: "req_story", UserID: "u_story"})
	call := app.plantStep(t0, db.EventInput{Source: db.SourceAPI, Env: "production", Type: "api.call", RequestID: "req_story", UserID: "u_story", Method: "POST", Path: "/v1/payments", Status: 201, DurationMS: 230})
	back := app.plantStep(t0.Add(1200*time.Millisecond), db.EventInput{Source: db.SourceCallback, Env: "production", Type: "accounts_connected", RequestID: "req_story", UserID: "u_story",
		Payload: []byte(`{"event":"accounts_connected","screen":"bank_select"}`)})
	// The same user's later request failed; a callback of theirs carries no request_id.
	app.plantStep(t0.Add(10*time.Minute), db.EventInput{Source: db.SourceAPI, Env: "sandbox", Type: "api.call", RequestID: "req_failed", UserID: "u_story", Method: "GET", Path: "/v1/accounts", Status: 500, IsError: true, ErrorCode: "internal_error"})
	app.plantStep(t0.Add(10*time.Minute+2*time.Second), db.EventInput{Source: db.SourceCallback, Env: "sandbox", Type: "initialization_error", RequestID: "req_failed", UserID: "u_story", IsError: true})
	lone := app.plantStep(t0.Add(5*time.Minute), db.EventInput{Source: db.SourceCallback, Env: "production", Type: "screen_loaded", UserID: "u_story"})
	app.plantStep(t0.Add(time.Second), db.EventInput{Source: db.SourceWebhook, Env: "production", Type: "identity.profile_ready", RequestID: "req_unrelated"})

	oneSearchBox := func(t *testing.T, doc *goquery.Document) {
		t.Helper()
		if n := doc.Find(`input[type="search"], input[name="q"]`).Length(); n != 1 || doc.Find(`input#lookup-q`).Length() != 1 {
			t.Fatalf("%d search inputs, want the top bar's alone", n)
		}
	}

	t.Run("a request_id: one timeline, three steps in order", func(t *testing.T) {
		doc := viewer.get("/lookup?q=req_story").doc(t)
		oneSearchBox(t, doc)
		if v := doc.Find(`#lookup-q`).AttrOr("value", ""); v != "req_story" {
			t.Errorf("top bar search holds %q", v)
		}
		tls := doc.Find(`[data-testid="timeline"]`)
		if tls.Length() != 1 {
			t.Fatalf("%d timelines, want 1", tls.Length())
		}
		if n := doc.Find(`[data-testid="event-row"]`).Length(); n != 0 {
			t.Fatalf("the page still lists %d table rows (the request_id in each)", n)
		}
		if got := strings.Count(doc.Find(".content").Text(), "req_story"); got != 2 { // what was looked up, and the timeline's head
			t.Errorf("the request_id appears %d times on the page, want 2", got)
		}
		tl := tls.First()
		for _, c := range []struct {
			sel  string
			want []string
		}{
			{`[data-testid="timeline-request-id"]`, []string{"req_story"}},
			{`[data-testid="step-source"]`, []string{"API call", "Callback", "Webhook"}},
			{`[data-testid="step-link"]`, []string{"POST /v1/payments", "accounts_connected", "payment.cancelled"}},
			{`[data-testid="step-offset"]`, []string{"+0 ms", "+1.2 s", "+3 min 20 s"}},
			{`[data-testid="step-gap"]`, []string{"1.2 s later", "3 min 19 s later"}},
			{`[data-testid="step-status"]`, []string{"201", "received", "verified"}},
			{`[data-testid="timeline-counts"]`, []string{"1 API call · 1 callback · 1 webhook"}},
			{`[data-testid="timeline-span"]`, []string{"2026-03-01 12:00:00 → 12:03:20 UTC 3 min 20 s"}},
			{`[data-testid="timeline-errors"]`, nil},
			{`[data-testid="timeline-lookup"]`, nil}, // it is the request_id looked up: all its steps are here
			{`[data-testid="timeline-partial"]`, nil},
		} {
			if got := texts(tl, c.sel); !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s: %q, want %q", c.sel, got, c.want)
			}
		}
		var hrefs, titles []string
		tl.Find(`[data-testid="step-link"]`).Each(func(_ int, s *goquery.Selection) { hrefs = append(hrefs, s.AttrOr("href", "")) })
		tl.Find(`[data-testid="step-offset"]`).Each(func(_ int, s *goquery.Selection) { titles = append(titles, s.AttrOr("title", "")) })
		if want := []string{"/events/" + itoa(call), "/events/" + itoa(back), "/events/" + itoa(hook)}; !reflect.DeepEqual(hrefs, want) {
			t.Errorf("step links %q, want %q", hrefs, want)
		}
		if want := []string{"2026-03-01 12:00:00.000 UTC", "2026-03-01 12:00:01.200 UTC", "2026-03-01 12:03:20.000 UTC"}; !reflect.DeepEqual(titles, want) {
			t.Errorf("absolute times %q, want %q", titles, want)
		}
		if s := texts(tl, `[data-testid="timeline-step"] .tl-summary`); !reflect.DeepEqual(s, []string{"screen bank_select · user u_story"}) {
			t.Errorf("summaries %q", s)
		}
		if doc.Find(`[data-testid="support-bundle"]`).AttrOr("href", "") != "/lookup/bundle?q=req_story" {
			t.Error("no support bundle link")
		}
	})

	t.Run("a user id: one timeline per request_id, and the lone event", func(t *testing.T) {
		doc := viewer.get("/lookup?q=u_story").doc(t)
		oneSearchBox(t, doc)
		tls := doc.Find(`[data-testid="timeline"]`)
		var ids []string
		tls.Each(func(_ int, s *goquery.Selection) { ids = append(ids, s.AttrOr("data-request-id", "")) })
		if want := []string{"req_story", "", "req_failed"}; !reflect.DeepEqual(ids, want) {
			t.Fatalf("timelines %q, want %q (by first step)", ids, want)
		}
		if got := texts(doc.Selection, `[data-testid="lookup-for"]`); len(got) != 1 || !strings.HasPrefix(got[0], "6 events in 3 timelines for u_story") {
			t.Errorf("summary %q", got)
		}
		if got := texts(tls.Eq(1), `[data-testid="timeline-request-id"]`); !reflect.DeepEqual(got, []string{"event " + itoa(lone) + " (no request_id)"}) {
			t.Errorf("lone event's head %q", got)
		}
		failed := tls.Eq(2)
		if got := texts(failed, `[data-testid="timeline-errors"]`); !reflect.DeepEqual(got, []string{"2 errors"}) || !failed.HasClass("tl-has-err") {
			t.Errorf("failed timeline: errors %q, class %q", got, failed.AttrOr("class", ""))
		}
		if n := failed.Find(`[data-testid="timeline-step"].tl-err`).Length(); n != 2 {
			t.Errorf("%d failed steps marked, want 2", n)
		}
		if got := texts(failed, `[data-testid="step-status"]`); !reflect.DeepEqual(got, []string{"500", "error"}) {
			t.Errorf("failed statuses %q", got)
		}
		if got := texts(failed, `[data-testid="timeline-step"] .tl-summary`); len(got) == 0 || got[0] != "internal_error" {
			t.Errorf("the failed call's error code is not shown: %q", got)
		}
		if href := failed.Find(`[data-testid="timeline-lookup"]`).AttrOr("href", ""); href != "/lookup?q=req_failed" {
			t.Errorf("all steps of this request_id: %q", href)
		}
		// A timeline found through a user id may lack steps that do not carry it: it says so.
		if got := texts(failed, `[data-testid="timeline-partial"]`); !reflect.DeepEqual(got, []string{"only the steps that carry u_story"}) {
			t.Errorf("partial timeline says %q", got)
		}
		if tls.Eq(0).HasClass("tl-has-err") || tls.Eq(0).Find(".tl-err").Length() != 0 {
			t.Error("a timeline without errors is marked as failed")
		}
		if doc.Find(`[data-testid="lookup-decision"]`).Length() != 1 {
			t.Error("a user id shows no rollout decision")
		}
	})

	t.Run("nothing looked up yet: the empty state points at the top bar's box", func(t *testing.T) {
		doc := viewer.get("/lookup").doc(t)
		oneSearchBox(t, doc)
		if got := texts(doc.Selection, `[data-testid="lookup-start"]`); len(got) != 1 || !strings.Contains(got[0], "search box at the top") {
			t.Fatalf("empty state %q", got)
		}
		if doc.Find(`[data-testid="timeline"], [data-testid="support-bundle"], [data-testid="lookup-query"]`).Length() != 0 {
			t.Fatal("results shown for nothing looked up")
		}
		if doc.Find(`#lookup-q[data-autofocus]`).Length() != 1 {
			t.Fatal("the top bar's box does not take the keyboard on the empty page")
		}
		if viewer.get("/lookup?q=req_x").doc(t).Find(`[data-autofocus]`).Length() != 0 {
			t.Fatal("the search box takes the keyboard on a page of results")
		}
	})

	t.Run("a long query is shown in full, with a copy button", func(t *testing.T) {
		long := "req_" + strings.Repeat("0123456789abcdef", 15) // 244 characters
		doc := viewer.get("/lookup?q=" + long).doc(t)
		if got := doc.Find(`[data-testid="lookup-query"]`).Text(); got != long {
			t.Fatalf("query shown as %q", got)
		}
		if doc.Find(`[data-testid="lookup-for"] [data-copy="`+long+`"]`).Length() != 1 {
			t.Fatal("no copy button for the query")
		}
		if doc.Find(`[data-testid="lookup-empty"]`).Length() != 1 {
			t.Fatal("no empty state")
		}
	})
}
