package events

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/dbtest"
	"github.com/tensfer-golive/dashboard/internal/diskguard"
)

// storedPayload is the payload of the newest callback event.
func (f *fixture) storedPayload(t *testing.T) (db.Event, map[string]any) {
	t.Helper()
	evs, _, err := f.db.ListEvents(context.Background(), db.EventFilter{Source: db.SourceCallback, Limit: 1})
	if err != nil || len(evs) != 1 {
		t.Fatalf("newest callback: %v %v", evs, err)
	}
	var m map[string]any
	if err := json.Unmarshal(evs[0].Payload, &m); err != nil {
		t.Fatalf("stored payload %q: %v", evs[0].Payload, err)
	}
	return evs[0], m
}

func TestBeaconStoredInItsDocumentedShape(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	long := strings.Repeat("é", 255) // 510 bytes: within the parser's 255 characters, over 256 bytes
	pad := strings.Repeat("x", 60<<10)
	cases := []struct {
		name      string
		body      string
		want      map[string]any
		maxStored int
	}{
		{
			name: "documented fields are kept as sent",
			body: `{"event":"initialization_error","event_id":"cb_1","session_id":"s1","user_id":"u1","request_id":"req_1","screen":"consent","error":{"code":"E1","message":"bad token"},"occurred_at":"2026-11-30T11:59:00Z"}`,
			want: map[string]any{"event": "initialization_error", "event_id": "cb_1", "session_id": "s1", "user_id": "u1", "request_id": "req_1",
				"screen": "consent", "error": map[string]any{"code": "E1", "message": "bad token"}, "occurred_at": "2026-11-30T11:59:00Z"},
		},
		{
			name:      "unknown members are dropped, only their names listed",
			body:      `{"event":"screen_loaded","pad":"` + pad + `","nested":{"deep":[1,2,3]},"error":{"code":"E","stack":"` + pad + `"}}`,
			want:      map[string]any{"event": "screen_loaded", "error": map[string]any{"code": "E"}, "unknown_fields": []any{"error.stack", "nested", "pad"}},
			maxStored: 512,
		},
		{
			name: "long fields are cut and marked",
			body: `{"event":"screen_loaded","event_id":"` + long + `","user_id":"` + long + `","session_id":"` + long + `","screen":"` + strings.Repeat("s", 128) + `","error":"` + strings.Repeat("m", 2048) + `"}`,
			want: map[string]any{"event": "screen_loaded", "event_id": strings.Repeat("é", 128), "user_id": strings.Repeat("é", 128), "session_id": strings.Repeat("é", 128),
				"screen": strings.Repeat("s", 128), "error": map[string]any{"message": strings.Repeat("m", 256)}, "truncated": true},
			maxStored: 2 << 10,
		},
		{
			name: "at most eight unknown names, each short",
			body: `{"event":"x","a1":1,"a2":2,"a3":3,"a4":4,"a5":5,"a6":6,"a7":7,"a8":8,"a9":9,"` + strings.Repeat("n", 100) + `":0}`,
			want: map[string]any{"event": "x", "unknown_fields": []any{"a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"}, "truncated": true},
		},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := f.svc.ReceiveCallback(ctx, "production", []byte(c.body), http.Header{"User-Agent": {strings.Repeat("u", 4000)}}, "192.0.2.1")
			if err != nil || res.ID == 0 {
				t.Fatalf("beacon %d: %+v %v", i, res, err)
			}
			e, got := f.storedPayload(t)
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(c.want)
			if string(gotJSON) != string(wantJSON) {
				t.Fatalf("stored %s\nwant   %s", gotJSON, wantJSON)
			}
			if c.maxStored > 0 && len(e.Payload) > c.maxStored {
				t.Fatalf("stored %d bytes of payload, want at most %d", len(e.Payload), c.maxStored)
			}
			if ua := e.Headers["user-agent"]; len(ua) > publicHeaderMax || !strings.HasSuffix(ua, "…") {
				t.Fatalf("user-agent kept as %d bytes %q", len(ua), ua[max(0, len(ua)-8):])
			}
			if e.UserID != got["user_id"] && got["user_id"] != nil {
				t.Fatalf("user_id column %q differs from the payload's %q", e.UserID, got["user_id"])
			}
		})
	}
}

func TestReturnVisitIsBounded(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	q := url.Values{}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
		q.Set(k, strings.Repeat(k, 5000))
	}
	if err := f.svc.RecordReturn(ctx, "sandbox", q, nil, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	e, got := f.storedPayload(t)
	query, _ := got["query"].(map[string]any)
	if got["event"] != "return" || len(query) != returnParams || got["truncated"] != true || len(query["a"].(string)) != returnValueMax || len(e.Payload) > 2300 {
		t.Fatalf("stored %d bytes: %s", len(e.Payload), e.Payload)
	}
	// A query that is a beacon is stored in the beacon's shape: unknown parameters by name only.
	q = url.Values{"event": {"accounts_connected"}, "session_id": {"s9"}, "next": {strings.Repeat("n", 5000)}}
	if err := f.svc.RecordReturn(ctx, "sandbox", q, nil, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if e, _ := f.storedPayload(t); string(e.Payload) != `{"event":"accounts_connected","session_id":"s9","unknown_fields":["next"]}` {
		t.Fatalf("stored %s", e.Payload)
	}
}

func TestRefusedDeliveryKeepsABoundedPrefix(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d := f.delivery("production", "msg_big", `{"type":"x","pad":"`+strings.Repeat("p", 60<<10)+`"}`, nil)
	d.Header.Set("Webhook-Signature", "v1,"+strings.Repeat("A", 2000))
	_, err := f.svc.ReceiveWebhook(ctx, d)
	var rej *Rejection
	if !errors.As(err, &rej) || !rej.Kept {
		t.Fatalf("refusal: %v", err)
	}
	kept, _, _ := f.db.ListRejected(ctx, "", 0, 1)
	r := kept[0]
	if len(r.Body) != db.MaxRejectedBody || r.BodySize != int64(len(d.Body)) || !r.Truncated() {
		t.Fatalf("kept %d bytes of %d (truncated %v)", len(r.Body), r.BodySize, r.Truncated())
	}
	if sig := r.Headers["webhook-signature"]; len(sig) > rejectedHeaderMax || !strings.HasSuffix(sig, "…") {
		t.Fatalf("signature header kept as %d bytes", len(sig))
	}
}

// fixedBudget sets a small budget of unauthenticated input: 10,000 bytes and 10 rows a second in
// all, half of that per environment and input, each with a burst of four seconds' worth.
func fixedBudget(f *fixture, c *Config) {
	c.PublicBudget = PublicBudget{BytesPerSecond: 10_000, RowsPerSecond: 10}
}

func TestPublicBudgetRefusesAndCounts(t *testing.T) {
	f := newFixture(t, fixedBudget)
	ctx := context.Background()
	key := f.addSecret(t, "production")
	beacon := []byte(`{"event":"initialization_error","screen":"` + strings.Repeat("s", 100) + `"}`)
	stored, refused := 0, 0
	var last *Refusal
	for range 40 {
		_, err := f.svc.ReceiveCallback(ctx, "production", beacon, nil, "192.0.2.1")
		switch {
		case err == nil:
			stored++
		case errors.As(err, &last):
			refused++
		default:
			t.Fatal(err)
		}
	}
	// Per key: 20,000 bytes and 20 rows at once; a beacon is charged about 900 bytes (see eventCost), so the rows run out first.
	if stored != 20 || refused != 20 || last.Reason != RefusedQuota || last.RetryAfter != time.Second || !strings.Contains(last.Message, "retry in 1 seconds") {
		t.Fatalf("stored %d, refused %d, last %+v", stored, refused, last)
	}
	// Another environment has its own budget; signed webhooks have none.
	if _, err := f.svc.ReceiveCallback(ctx, "sandbox", beacon, nil, "192.0.2.1"); err != nil {
		t.Fatalf("sandbox callback: %v", err)
	}
	for i := range 30 {
		if _, err := f.svc.ReceiveWebhook(ctx, f.delivery("production", "msg_"+string(rune('a'+i)), `{"type":"x"}`, key)); err != nil {
			t.Fatalf("signed webhook %d during the flood: %v", i, err)
		}
	}
	// Refused deliveries from unknown senders are bounded the same way, and counted when not kept.
	kept := 0
	for i := range 40 {
		_, err := f.svc.ReceiveWebhook(ctx, Delivery{Env: "production", Body: []byte(`{}`), Client: "198.51.100." + string(rune('0'+i%10)), RequestID: "r"})
		var rej *Rejection
		if !errors.As(err, &rej) {
			t.Fatal(err)
		}
		if rej.Kept {
			kept++
		}
	}
	// All public input together has 40 rows at once, of which the callbacks took 21.
	if kept != 19 {
		t.Fatalf("%d refused deliveries kept, want the global budget's remaining 19", kept)
	}
	// The budget refills with time.
	f.now = f.now.Add(time.Second)
	if _, err := f.svc.ReceiveCallback(ctx, "production", beacon, nil, "192.0.2.1"); err != nil {
		t.Fatalf("after a second: %v", err)
	}
	got := map[string]int64{}
	for _, c := range f.svc.Health().Refusals {
		got[c.Env+"/"+c.Input+"/"+c.Reason] = c.LastHour
	}
	want := map[string]int64{"production/callback/quota": 20, "production/refused_delivery/quota": 21}
	if len(got) != len(want) || got["production/callback/quota"] != 20 || got["production/refused_delivery/quota"] != 21 {
		t.Fatalf("counts %v, want %v", got, want)
	}
	// An hour later the counts have aged out of the panel.
	f.now = f.now.Add(time.Hour)
	if r := f.svc.Health().Refusals; len(r) != 0 {
		t.Fatalf("counts an hour later: %+v", r)
	}
}

// TestNoSenderIsTrustedByItsAddress: an address that delivered a valid webhook gets no exemption
// for its refused deliveries; they are kept within the same limits as anyone's.
func TestNoSenderIsTrustedByItsAddress(t *testing.T) {
	f := newFixture(t, fixedBudget)
	ctx := context.Background()
	key := f.addSecret(t, "production")
	tensferAddr := "203.0.113.7"
	good := f.delivery("production", "msg_ok", `{"type":"x"}`, key)
	good.Client, good.IP = tensferAddr, tensferAddr
	if _, err := f.svc.ReceiveWebhook(ctx, good); err != nil {
		t.Fatal(err)
	}
	kept := 0
	for i := range 60 {
		d := f.delivery("production", "msg_bad", `{"type":"x"}`, nil)
		d.Client, d.IP = tensferAddr, tensferAddr
		var rej *Rejection
		if _, err := f.svc.ReceiveWebhook(ctx, d); !errors.As(err, &rej) {
			t.Fatalf("refusal %d: %v", i, err)
		}
		if rej.Kept {
			kept++
		}
	}
	// The budget of refused deliveries in production holds 20 rows at once.
	if kept != 20 {
		t.Fatalf("%d of 60 unsigned deliveries from a once-valid sender kept, want the budget's 20", kept)
	}
}

// fakeDisk lets a test set the free space the guard reads.
type fakeDisk struct{ free uint64 }

func (d *fakeDisk) config(f *fixture, c *Config) {
	c.Disk = diskguard.New(diskguard.Config{
		Soft: diskguard.Threshold{Bytes: 100 << 20}, Hard: diskguard.Threshold{Bytes: 10 << 20},
		Now:   func() time.Time { return f.now },
		Space: func(string) (diskguard.Space, error) { return diskguard.Space{Free: d.free, Total: 1 << 40}, nil },
	})
}

func TestDiskWatermarks(t *testing.T) {
	disk := &fakeDisk{free: 1 << 30}
	f := newFixture(t, disk.config)
	ctx := context.Background()
	key := f.addSecret(t, "production")
	status := 200
	type outcome struct{ callback, ret, refusedKept, webhook, apiCall string }
	try := func(i int) outcome {
		var o outcome
		reason := func(err error) string {
			var r *Refusal
			if errors.As(err, &r) {
				return r.Reason
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			return "stored"
		}
		_, err := f.svc.ReceiveCallback(ctx, "production", []byte(`{"event":"screen_loaded"}`), nil, "192.0.2.1")
		o.callback = reason(err)
		o.ret = reason(f.svc.RecordReturn(ctx, "production", url.Values{"event": {"screen_loaded"}}, nil, "192.0.2.1"))
		var rej *Rejection
		_, err = f.svc.ReceiveWebhook(ctx, f.delivery("production", "bad", `{"type":"x"}`, nil))
		if errors.As(err, &rej) && rej.Kept {
			o.refusedKept = "kept"
		} else {
			o.refusedKept = "not kept"
		}
		_, err = f.svc.ReceiveWebhook(ctx, f.delivery("production", "msg_"+string(rune('a'+i)), `{"type":"x"}`, key))
		o.webhook = reason(err)
		_, err = f.svc.RecordAPICall(ctx, APICall{Env: "production", Method: "GET", Path: "/v1/x", Status: &status})
		o.apiCall = reason(err)
		return o
	}
	cases := []struct {
		name string
		free uint64
		want outcome
	}{
		{"plenty of room", 1 << 30, outcome{"stored", "stored", "kept", "stored", "stored"}},
		{"below the soft watermark", 50 << 20, outcome{RefusedDiskLow, RefusedDiskLow, "not kept", "stored", "stored"}},
		{"below the hard watermark", 5 << 20, outcome{RefusedDiskCritical, RefusedDiskCritical, "not kept", RefusedDiskCritical, RefusedDiskCritical}},
		{"room again", 1 << 30, outcome{"stored", "stored", "kept", "stored", "stored"}},
	}
	for i, c := range cases {
		disk.free = c.free
		f.now = f.now.Add(10 * time.Second) // past the guard's reading interval
		before := countRows(t, f)
		if got := try(i); got != c.want {
			t.Fatalf("%s: %+v, want %+v", c.name, got, c.want)
		}
		if c.want.webhook == RefusedDiskCritical && countRows(t, f) != before {
			t.Fatalf("%s: something was stored", c.name)
		}
	}
}

func countRows(t *testing.T, f *fixture) int {
	t.Helper()
	var n int
	if err := f.db.R.QueryRow("SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM rejected_deliveries)").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFullDatabaseRefusesAndReports: a real write that fails (the database at its page limit) is
// a write_failed refusal, never an acknowledgement, and the guard reports it until a write
// succeeds again.
func TestFullDatabaseRefusesAndReports(t *testing.T) {
	dbtest.SQLiteOnly(t, "SQLite's max_page_count stands in for a full disk")
	f := newFixture(t)
	ctx := context.Background()
	key := f.addSecret(t, "production")
	if err := f.db.LimitPages(ctx, 0); err != nil {
		t.Fatal(err)
	}
	big := `{"type":"x","pad":"` + strings.Repeat("p", 200<<10) + `"}`
	_, err := f.svc.ReceiveWebhook(ctx, f.delivery("production", "msg_full", big, key))
	var r *Refusal
	if !errors.As(err, &r) || r.Reason != RefusedWriteFailed || r.RetryAfter == 0 {
		t.Fatalf("webhook into a full database: %v", err)
	}
	if h := f.svc.Health(); !h.Disk.Failing() || len(h.Refusals) != 1 || h.Refusals[0].Input != InputWebhook {
		t.Fatalf("health after the failure: %+v", h)
	}
	if err := f.db.LimitPages(ctx, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ReceiveWebhook(ctx, f.delivery("production", "msg_full", big, key)); err != nil {
		t.Fatalf("the retried delivery: %v", err)
	}
	if f.svc.Health().Disk.Failing() {
		t.Fatal("still failing after a successful write")
	}
}
