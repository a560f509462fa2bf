package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/events"
)

// plantEvents stores n callbacks carrying requestID with payload, straight into the table (as
// a flood of 64 KiB beacons would have), and returns the first id.
func (a *testApp) plantEvents(n int, requestID, payload string) int64 {
	a.t.Helper()
	res, err := a.db.W.Exec(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?1)
		INSERT INTO events (source, env, type, request_id, received_at, payload) SELECT 'callback', 'production', 'screen_loaded', ?2, ?3, CAST(?4 AS BLOB) FROM s`,
		n, requestID, time.Now().UnixMilli(), payload)
	if err != nil {
		a.t.Fatal(err)
	}
	last, _ := res.LastInsertId()
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
	if rows := doc.Find(`[data-testid="lookup-table"] [data-testid="event-row"]`); rows.Length() != 40 || !strings.Contains(rows.First().Text(), "screen pay") {
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
		if n := doc.Find(`[data-testid="event-row"]`).Length(); n != events.LookupLimit {
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

func TestSupportBundlesBuiltAtOnceAreBounded(t *testing.T) {
	app := newTestApp(t)
	viewer, _ := app.login(db.RoleViewer)
	app.plantEvents(1, "req_x", `{}`)
	for range maxBundles {
		app.srv.bundleSlots <- struct{}{} // bundles being built
	}
	res := viewer.get("/lookup/bundle?q=req_x")
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" || !strings.Contains(res.body, "try again in a few seconds") {
		t.Fatalf("bundle with every slot taken: %d %q %.200s", res.StatusCode, res.Header.Get("Retry-After"), res.body)
	}
	if res.Header.Get("Content-Disposition") != "" {
		t.Fatal("the refusal is offered as a download")
	}
	<-app.srv.bundleSlots
	if out := decodeAnswer(t, viewer.get("/lookup/bundle?q=req_x")); len(out.Events) != 1 {
		t.Fatalf("bundle once a slot is free: %+v", out)
	}
	if len(app.srv.bundleSlots) != maxBundles-1 {
		t.Fatalf("a finished bundle kept its slot: %d taken", len(app.srv.bundleSlots))
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
