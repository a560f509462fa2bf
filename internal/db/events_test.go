package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testClock is a settable clock that the writer goroutine may read while a test moves it.
type testClock struct{ ms atomic.Int64 }

func newTestClock(d *DB, start time.Time) *testClock {
	c := &testClock{}
	c.ms.Store(start.UnixMilli())
	d.SetClock(func() time.Time { return time.UnixMilli(c.ms.Load()) })
	return c
}

func (c *testClock) set(t time.Time)            { c.ms.Store(t.UnixMilli()) }
func (c *testClock) advance(step time.Duration) { c.ms.Add(step.Milliseconds()) }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// startIngester starts an Ingester on d that is closed when the test ends.
func startIngester(t testing.TB, d *DB, opts IngestOptions) *Ingester {
	t.Helper()
	g := NewIngester(d, opts)
	g.Start()
	t.Cleanup(func() { g.Close() })
	return g
}

func submitOne(t testing.TB, g *Ingester, in EventInput) IngestResult {
	t.Helper()
	res, err := g.Submit(context.Background(), []EventInput{in})
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

func webhook(env, typ, requestID string) EventInput {
	return EventInput{Source: SourceWebhook, Env: env, Type: typ, RequestID: requestID,
		Payload: fmt.Appendf(nil, `{"type":%q,"request_id":%q}`, typ, requestID)}
}

// mixedEvent is the i-th event of a varied, deterministic fixture.
func mixedEvent(i int) EventInput {
	envs := []string{"sandbox", "production", "production"}
	in := EventInput{Env: envs[i%3], RequestID: fmt.Sprintf("req_%d", i%7), Payload: fmt.Appendf(nil, `{"n":%d}`, i)}
	switch i % 4 {
	case 0:
		in.Source, in.Type, in.ExternalID = SourceWebhook, "payment.cancelled", fmt.Sprintf("evt_%d", i)
	case 1:
		in.Source, in.Type = SourceWebhook, "identity.profile_ready"
	case 2:
		in.Source, in.Type, in.UserID = SourceCallback, "screen_loaded", fmt.Sprintf("user_%d", i%5)
		if i%3 == 0 {
			in.Type, in.IsError = "initialization_error", true
		}
	case 3:
		in.Source, in.Type, in.Method, in.Path, in.Status = SourceAPI, "api.call", "GET", "/accounts", 200
		if i%5 == 0 {
			in.Status, in.IsError = 503, true
		}
	}
	return in
}

// seedMixed stores n mixed events, moving the clock a minute every 5 events, and returns them
// as stored (oldest first).
func seedMixed(t *testing.T, d *DB, n int) []Event {
	t.Helper()
	clock := newTestClock(d, t0)
	g := startIngester(t, d, IngestOptions{})
	var out []Event
	for i := range n {
		if i > 0 && i%5 == 0 {
			clock.advance(time.Minute)
		}
		res := submitOne(t, g, mixedEvent(i))
		e, err := d.EventByID(context.Background(), res.ID)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func matchesFilter(e Event, f EventFilter) bool {
	return (f.Env == "" || e.Env == f.Env) && (f.Source == "" || e.Source == f.Source) &&
		(f.Type == "" || e.Type == f.Type) && (f.RequestID == "" || e.RequestID == f.RequestID) &&
		(f.UserID == "" || e.UserID == f.UserID) && (f.IsError == nil || e.IsError == *f.IsError) &&
		(f.Since.IsZero() || !e.ReceivedAt.Before(f.Since)) && (f.Until.IsZero() || e.ReceivedAt.Before(f.Until))
}

func TestListEventsFiltersAndPages(t *testing.T) {
	d, _ := openTemp(t)
	ctx := context.Background()
	all := seedMixed(t, d, 60)
	yes, no := true, false
	for _, tc := range []struct {
		name string
		f    EventFilter
		none bool // expect no event at all (guards against a fixture that matches nothing by accident)
	}{
		{name: "everything"},
		{name: "env", f: EventFilter{Env: "production"}},
		{name: "source without env", f: EventFilter{Source: SourceWebhook}},
		{name: "env and source", f: EventFilter{Env: "sandbox", Source: SourceCallback}},
		{name: "type", f: EventFilter{Type: "payment.cancelled"}},
		{name: "type and env", f: EventFilter{Type: "api.call", Env: "production"}},
		{name: "request id", f: EventFilter{RequestID: "req_3"}},
		{name: "request id, env and source", f: EventFilter{RequestID: "req_3", Env: "production", Source: SourceAPI}},
		{name: "user id", f: EventFilter{UserID: "user_2"}},
		{name: "errors", f: EventFilter{IsError: &yes}},
		{name: "errors in one env", f: EventFilter{IsError: &yes, Env: "sandbox"}},
		{name: "errors of one source, any env", f: EventFilter{IsError: &yes, Source: SourceAPI}},
		{name: "no errors", f: EventFilter{IsError: &no, Env: "production"}},
		{name: "since", f: EventFilter{Since: t0.Add(7 * time.Minute)}},
		{name: "until", f: EventFilter{Until: t0.Add(3 * time.Minute)}},
		{name: "window, env and source", f: EventFilter{Since: t0.Add(2 * time.Minute), Until: t0.Add(9 * time.Minute), Env: "production", Source: SourceWebhook}},
		{name: "window inside one minute", f: EventFilter{Since: t0.Add(4*time.Minute + time.Second), Until: t0.Add(5 * time.Minute)}, none: true},
		{name: "since after everything", f: EventFilter{Since: t0.Add(time.Hour)}, none: true},
		{name: "until before everything", f: EventFilter{Until: t0}, none: true},
		{name: "unknown env", f: EventFilter{Env: "staging"}, none: true},
		{name: "unknown request id", f: EventFilter{RequestID: "req_nope"}, none: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []int64
			for _, e := range all {
				if matchesFilter(e, tc.f) {
					want = append(want, e.ID)
				}
			}
			if (len(want) == 0) != tc.none {
				t.Fatalf("fixture gives %d matches; case expects none=%v", len(want), tc.none)
			}
			// Newest first, page by page through BeforeID.
			var got []int64
			f := tc.f
			f.Limit = 4
			for page := 0; ; page++ {
				evs, next, err := d.ListEvents(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) > f.Limit || page > len(all) {
					t.Fatalf("page %d has %d events", page, len(evs))
				}
				for _, e := range evs {
					if !matchesFilter(e, tc.f) {
						t.Fatalf("event %d does not match the filter: %+v", e.ID, e)
					}
					got = append(got, e.ID)
				}
				if next == 0 {
					break
				}
				f.BeforeID = next
			}
			desc := slices.Clone(want)
			slices.Reverse(desc)
			if !slices.Equal(got, desc) {
				t.Fatalf("newest first got %v, want %v", got, desc)
			}
			// Oldest first from an AfterID cursor (the first event), as a stream backfill reads.
			got = nil
			f = tc.f
			f.Limit, f.AfterID = 5, all[0].ID
			if len(want) > 0 && want[0] == all[0].ID {
				want = want[1:]
			}
			for {
				evs, next, err := d.ListEvents(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range evs {
					got = append(got, e.ID)
				}
				if next == 0 {
					break
				}
				f.AfterID = next
			}
			if !slices.Equal(got, want) {
				t.Fatalf("oldest first got %v, want %v", got, want)
			}
		})
	}
}

// TestEventQueriesUseIndexes checks with EXPLAIN QUERY PLAN that every filtered page, lookup,
// stats and purge query walks an index range in id order: no full scan, no sort. This is what
// keeps them in milliseconds at a million rows (see BenchmarkLookupEvents).
func TestEventQueriesUseIndexes(t *testing.T) {
	sqliteOnly(t, "SQLite's query plans and INDEXED BY pins")
	d, _ := openTemp(t)
	yes, no := true, false
	since := t0
	type plan struct {
		name  string
		q     string
		args  []any
		index string // an index every search must use ("" = the primary key)
	}
	var plans []plan
	for _, tc := range []struct {
		name  string
		f     EventFilter
		index string
	}{
		{"newest page", EventFilter{BeforeID: 100}, ""},
		{"backfill page", EventFilter{AfterID: 100}, ""},
		{"env", EventFilter{Env: "production", BeforeID: 100}, "events_env"},
		{"env, oldest first", EventFilter{Env: "production", AfterID: 100}, "events_env"},
		{"env and source", EventFilter{Env: "production", Source: "webhook", BeforeID: 100}, "events_env_source"},
		{"source without env", EventFilter{Source: "webhook", BeforeID: 100}, "events_env_source"},
		{"type", EventFilter{Type: "payment.cancelled", Env: "production", Source: "webhook"}, "events_type"},
		{"request id beats env and source", EventFilter{RequestID: "req_1", Env: "production", Source: "api", Type: "api.call"}, "events_request_id"},
		{"user id", EventFilter{UserID: "u1", Env: "sandbox", Source: "callback"}, "events_user_id"},
		{"errors", EventFilter{IsError: &yes, Env: "production", Source: "api"}, "events_errors"},
		{"errors, any env", EventFilter{IsError: &yes}, "events_errors"},
		{"no errors", EventFilter{IsError: &no, Env: "production", Source: "api"}, "events_env_source"},
		{"time window", EventFilter{Since: since, Until: since.Add(time.Hour), Env: "sandbox"}, "events_env"},
	} {
		q, args := listEventsQuery(tc.f, 10, 1000, 51)
		plans = append(plans, plan{"list: " + tc.name, q, args, tc.index})
	}
	plans = append(plans,
		plan{"lookup", "SELECT " + eventCols + lookupEventsFrom, []any{"req_1", 200, 0}, ""},
		plan{"lookup preview, after an id", "SELECT " + eventColsPreview(2048) + lookupEventsFrom, []any{"req_1", 200, 500}, ""},
		plan{"first event at or after", "SELECT id FROM events WHERE received_at >= ? ORDER BY received_at, id LIMIT 1", []any{1}, "events_received_at"},
		plan{"stats: events", statsEventsSQL, []any{1}, "events_env"},
		plan{"stats: init errors", statsInitErrorsSQL, []any{1}, "events_type"},
		plan{"stats: api errors", statsAPIErrorsSQL, []any{1}, "events_errors"},
		plan{"stats: rejected", statsRejectedSQL, []any{1}, "rejected_deliveries_received_at"},
		plan{"by hour: events (several indexes, no scan)", hourlyEventsSQL, []any{1, 24}, ""},
		plan{"by hour: rejected", hourlyRejectedSQL, []any{1}, "rejected_deliveries_received_at"},
		plan{"purge", "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE received_at < ? ORDER BY received_at LIMIT ?)", []any{1, 500}, ""},
		plan{"rejected by env", "SELECT id FROM rejected_deliveries WHERE env = ? AND id < ? ORDER BY id DESC LIMIT ?", []any{"x", 5, 5}, "rejected_deliveries_env"},
	)
	for _, p := range plans {
		t.Run(p.name, func(t *testing.T) {
			rows, err := d.R.Query("EXPLAIN QUERY PLAN "+p.q, p.args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var lines []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				lines = append(lines, detail)
			}
			text := strings.Join(lines, "\n")
			for _, l := range lines {
				if strings.HasPrefix(l, "SEARCH events USING") || strings.HasPrefix(l, "SEARCH rejected_deliveries USING") {
					if p.index != "" && !strings.Contains(l, " INDEX "+p.index+" ") {
						t.Errorf("search without %s:\n%s", p.index, text)
					}
				}
				if strings.HasPrefix(l, "SCAN events") || strings.HasPrefix(l, "SCAN rejected_deliveries") ||
					strings.Contains(l, "TEMP B-TREE FOR ORDER BY") {
					t.Errorf("full scan or sort:\n%s", text)
				}
			}
			if p.index != "" && !strings.Contains(text, p.index+" ") {
				t.Errorf("plan does not use %s:\n%s", p.index, text)
			}
		})
	}
}

func TestEventByIDRoundTrips(t *testing.T) {
	d, _ := openTemp(t)
	ctx := context.Background()
	newTestClock(d, t0)
	g := startIngester(t, d, IngestOptions{})
	for _, tc := range []struct {
		name string
		in   EventInput
	}{
		{"webhook with headers and verification", EventInput{Source: SourceWebhook, Env: "production", Type: "payment.cancelled",
			RequestID: "req_1", UserID: "user_1", ExternalID: "evt_1", DedupeKey: "webhook:production:msg_1",
			OccurredAt: t0.Add(-time.Second), Payload: []byte(`{"id":"evt_1", "type":"payment.cancelled",  "x":1}`),
			Headers: map[string]string{"webhook-id": "msg_1", "user-agent": "Tensfer/1"}, Verification: json.RawMessage(`{"secret_id":"whs_1"}`)}},
		{"api call that timed out", EventInput{Source: SourceAPI, Env: "production", Type: "api.call", RequestID: "req_2",
			Method: "POST", Path: "/payments", DurationMS: 30000, ErrorCode: "timeout", ErrorMessage: "no answer in 30s",
			IsError: true, Payload: []byte(`{"env":"production"}`)}},
		{"api call answered 503", EventInput{Source: SourceAPI, Env: "sandbox", Type: "api.call", Method: "GET", Path: "/a",
			Status: 503, DurationMS: 0, IsError: true, Payload: []byte(`{}`), Demo: true}},
		{"callback keeps no api fields", EventInput{Source: SourceCallback, Env: "sandbox", Type: "screen_loaded",
			Payload: []byte(`{"event":"screen_loaded"}`)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := submitOne(t, g, tc.in)
			got, err := d.EventByID(ctx, res.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := Event{ID: res.ID, ReceivedAt: t0, EventInput: tc.in, PayloadSize: len(tc.in.Payload)}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("stored\n%+v\nwant\n%+v", got, want)
			}
		})
	}
	if _, err := d.EventByID(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing event: %v, want ErrNotFound", err)
	}
}

func TestLookupEvents(t *testing.T) {
	d, _ := openTemp(t)
	ctx := context.Background()
	g := startIngester(t, d, IngestOptions{})
	store := func(in EventInput) int64 { return submitOne(t, g, in).ID }
	cb := EventInput{Source: SourceCallback, Env: "production", Type: "initialization_error", RequestID: "req_A", UserID: "user_9", Payload: []byte(`{}`)}
	api := EventInput{Source: SourceAPI, Env: "production", Type: "api.call", RequestID: "req_A", Status: 500, Payload: []byte(`{}`)}
	hook := webhook("production", "payment.cancelled", "req_B")
	hook.ExternalID, hook.UserID = "evt_7", "user_9"
	tricky := webhook("sandbox", "payment.cancelled", "same")
	tricky.ExternalID, tricky.UserID = "same", "same" // matches on every column: listed once
	ids := []int64{store(cb), store(webhook("sandbox", "x", "req_C")), store(api), store(hook), store(tricky)}
	for i := range 5 {
		store(EventInput{Source: SourceCallback, Env: "sandbox", Type: "screen_loaded", UserID: "user_busy", RequestID: fmt.Sprint("r", i), Payload: []byte(`{}`)})
	}
	for _, tc := range []struct {
		name  string
		q     string
		limit int
		want  []int64
	}{
		{"request id across sources, oldest first", "req_A", 0, []int64{ids[0], ids[2]}},
		{"tensfer event id", "evt_7", 0, []int64{ids[3]}},
		{"user id", "user_9", 0, []int64{ids[0], ids[3]}},
		{"one row matching three ways", "same", 0, []int64{ids[4]}},
		{"capped, oldest kept", "user_busy", 2, []int64{ids[4] + 1, ids[4] + 2}},
		{"unknown", "req_nope", 0, nil},
		{"empty finds nothing", "", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := d.LookupEvents(ctx, tc.q, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, e := range evs {
				got = append(got, e.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLargePayloadsAreReadInBoundedPieces plants events with 64 KiB payloads under one id and
// checks the three bounded reads: previews (a summary list), pages ended by size (the export),
// and EachLookupEvent (the support bundle), which yields every event whole, in order.
func TestLargePayloadsAreReadInBoundedPieces(t *testing.T) {
	d, _ := openTemp(t)
	ctx := context.Background()
	g := startIngester(t, d, IngestOptions{})
	big := []byte(`{"screen":"pay","junk":"` + strings.Repeat("x", 64<<10) + `"}`)
	var ids []int64
	for range 40 { // 2.5 MiB of payloads: EachLookupEvent needs three of its 1 MiB reads
		ids = append(ids, submitOne(t, g, EventInput{Source: SourceCallback, Env: "sandbox", Type: "screen_loaded", RequestID: "req_big", Payload: big}).ID)
	}
	small := submitOne(t, g, EventInput{Source: SourceCallback, Env: "sandbox", Type: "screen_loaded", RequestID: "req_big", Payload: []byte(`{}`)}).ID
	ids = append(ids, small)

	previews, err := d.LookupEventPreviews(ctx, "req_big", 1000, 100)
	if err != nil || len(previews) != len(ids) {
		t.Fatalf("previews: %d (%v), want %d", len(previews), err, len(ids))
	}
	if p := previews[0]; len(p.Payload) != 100 || p.PayloadSize != len(big) || !p.Clipped() || string(p.Payload) != string(big[:100]) {
		t.Fatalf("preview of a big payload: %d of %d bytes, clipped %v", len(p.Payload), p.PayloadSize, p.Clipped())
	}
	if p := previews[len(previews)-1]; string(p.Payload) != `{}` || p.Clipped() {
		t.Fatalf("preview of a small payload: %q clipped %v", p.Payload, p.Clipped())
	}

	var got []int64
	for before := int64(0); ; {
		page, next, err := d.ListEvents(ctx, EventFilter{RequestID: "req_big", Limit: 500, MaxBytes: 200 << 10, BeforeID: before})
		if err != nil {
			t.Fatal(err)
		}
		size := 0
		for i, e := range page {
			if i > 0 && size >= 200<<10 {
				t.Fatalf("a page went on past MaxBytes: %d events", len(page))
			}
			size += len(e.Payload)
			got = append(got, e.ID)
		}
		if next == 0 {
			break
		}
		before = next
	}
	slices.Reverse(got)
	if !slices.Equal(got, ids) {
		t.Fatalf("pages ended by size lost or repeated events: %v, want %v", got, ids)
	}
	page, _, err := d.ListEvents(ctx, EventFilter{RequestID: "req_big", PreviewBytes: 10, Limit: 2})
	if err != nil || len(page) != 2 || len(page[1].Payload) != 10 || page[1].PayloadSize != len(big) {
		t.Fatalf("list with previews: %+v %v", page, err)
	}

	for _, tc := range []struct {
		name  string
		limit int
		want  []int64
	}{
		{"all of them, across several reads", 1000, ids},
		{"capped by count", 17, ids[:17]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen []int64
			err := d.EachLookupEvent(ctx, "req_big", tc.limit, func(e Event) error {
				if e.Clipped() || (e.ID != small && len(e.Payload) != len(big)) {
					t.Fatalf("event %d came clipped: %d of %d bytes", e.ID, len(e.Payload), e.PayloadSize)
				}
				seen = append(seen, e.ID)
				return nil
			})
			if err != nil || !slices.Equal(seen, tc.want) {
				t.Fatalf("each: %v (%v), want %v", seen, err, tc.want)
			}
		})
	}
	stop := errors.New("stop")
	n := 0
	if err := d.EachLookupEvent(ctx, "req_big", 1000, func(Event) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("fn's error did not stop the walk: %v after %d events", err, n)
	}
}

func TestPurgeEventsDeletesOnlyOldOnesAndIDsStayUnique(t *testing.T) {
	d, _ := openTemp(t)
	ctx := context.Background()
	clock := newTestClock(d, t0)
	g := startIngester(t, d, IngestOptions{})
	var ids []int64
	for day := range 4 {
		clock.set(t0.Add(time.Duration(day) * 24 * time.Hour))
		for range 5 {
			ids = append(ids, submitOne(t, g, webhook("sandbox", "x", "r")).ID)
		}
	}
	for _, tc := range []struct {
		name       string
		before     time.Time
		batch      int
		wantPurged int64
		wantFirst  int64 // oldest id left, 0 when none
	}{
		{"nothing that old", t0, 2, 0, ids[0]},
		{"first day, batches of 2", t0.Add(24 * time.Hour), 2, 5, ids[5]},
		{"up to the cutoff, not the newer", t0.Add(3*24*time.Hour - time.Millisecond), 0, 10, ids[15]},
		{"everything", t0.Add(100 * 24 * time.Hour), 1, 5, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := d.PurgeEvents(ctx, tc.before, tc.batch)
			if err != nil || n != tc.wantPurged {
				t.Fatalf("purged %d (%v), want %d", n, err, tc.wantPurged)
			}
			evs, _, err := d.ListEvents(ctx, EventFilter{AfterID: 0, Limit: 500})
			if err != nil {
				t.Fatal(err)
			}
			var first int64
			if len(evs) > 0 {
				first = evs[len(evs)-1].ID
			}
			if first != tc.wantFirst {
				t.Fatalf("oldest left %d, want %d", first, tc.wantFirst)
			}
		})
	}
	// The table is empty now; a new event must still get an id never handed out before, or a
	// client holding Last-Event-ID would skip it.
	if id := submitOne(t, g, webhook("sandbox", "x", "r")).ID; id <= ids[len(ids)-1] {
		t.Fatalf("id %d reused after purge (last was %d)", id, ids[len(ids)-1])
	}
	ctxDone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.PurgeEvents(ctxDone, t0.Add(1000*24*time.Hour), 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("purge with a done context: %v", err)
	}
}

func TestEventStatsAndProductionAPICalls(t *testing.T) {
	d, _ := openTemp(t)
	ctx := context.Background()
	clock := newTestClock(d, t0)
	g := startIngester(t, d, IngestOptions{})
	api := func(env string, status int, demo bool) EventInput {
		return EventInput{Source: SourceAPI, Env: env, Type: "api.call", Status: status, IsError: status >= 500, Demo: demo, Payload: []byte(`{}`)}
	}
	initErr := EventInput{Source: SourceCallback, Env: "production", Type: "initialization_error", IsError: true, Payload: []byte(`{}`)}
	// Yesterday: outside the window.
	clock.set(t0.Add(-24 * time.Hour))
	for _, in := range []EventInput{api("production", 500, false), initErr, webhook("production", "x", "")} {
		submitOne(t, g, in)
	}
	if _, err := d.InsertRejected(ctx, RejectedDelivery{Env: "production", Reason: RejectNoMatchingSignature}); err != nil {
		t.Fatal(err)
	}
	clock.set(t0)
	dup := api("production", 200, false)
	dup.DedupeKey = "api:1"
	for _, in := range []EventInput{
		api("production", 200, false), api("production", 503, false), api("production", 200, true),
		dup, dup, api("sandbox", 500, false), initErr, initErr, webhook("sandbox", "x", ""),
	} {
		submitOne(t, g, in)
	}
	for _, r := range []RejectedDelivery{
		{Env: "production", Reason: RejectTimestampSkew}, {Env: "sandbox", Reason: RejectMalformedJSON},
		{Env: "staging", Reason: RejectUnknownEnvironment},
	} {
		if _, err := d.InsertRejected(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	stats, err := d.EventStats(ctx, t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]EnvStats{
		"production": {Events: 6, RejectedWebhooks: 1, InitErrors: 2, APIErrors: 1},
		"sandbox":    {Events: 2, RejectedWebhooks: 1, APIErrors: 1},
		"staging":    {RejectedWebhooks: 1},
	}
	if !reflect.DeepEqual(stats, want) {
		t.Fatalf("stats %+v, want %+v", stats, want)
	}
	empty, err := d.EventStats(ctx, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := (map[string]EnvStats{"production": {}, "sandbox": {}}); !reflect.DeepEqual(empty, want) {
		t.Fatalf("stats of an empty window %+v, want %+v", empty, want)
	}
	// 1 yesterday + 3 today; demo, duplicate and sandbox calls are not counted, and retention
	// does not lower the total.
	if _, err := d.PurgeEvents(ctx, t0.Add(time.Hour), 0); err != nil {
		t.Fatal(err)
	}
	if n, err := d.CountProductionAPICalls(ctx); err != nil || n != 4 {
		t.Fatalf("production api calls %d (%v), want 4", n, err)
	}
}
