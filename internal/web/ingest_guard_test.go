package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/dbtest"
	"github.com/tensfer-golive/dashboard/internal/diskguard"
	"github.com/tensfer-golive/dashboard/internal/events"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// fakeClock is a clock a test moves by hand; it starts at the real time so that signatures made
// with the real clock stay within their tolerance.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *fakeClock) now() time.Time                    { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) time.Time { return time.Unix(0, c.ns.Add(int64(d))) }

// storedPublicBytes is less than what public input was charged per environment and input: the
// stored payload or body, headers and detail, and a fixed overhead per row. The
// input of a callback event is told by its type (return visits are sent with type return or
// accounts_connected in the flood).
func storedPublicBytes(t *testing.T, app *testApp, since time.Time) (bytes, rows map[string]int64) {
	t.Helper()
	const overhead = 256 // less than any row is charged beyond these bytes (see events.eventCost)
	bytes, rows = map[string]int64{}, map[string]int64{}
	q := `SELECT env || '/' || CASE WHEN type IN ('return', 'accounts_connected') THEN 'return' ELSE 'callback' END,
			count(*), coalesce(sum(length(payload) + coalesce(length(headers), 0)), 0) FROM events
		WHERE source = 'callback' AND received_at >= ? GROUP BY 1
		UNION ALL
		SELECT env || '/refused_delivery', count(*), coalesce(sum(length(body) + coalesce(length(headers), 0) + length(detail)), 0)
		FROM rejected_deliveries WHERE received_at >= ? GROUP BY 1`
	rs, err := app.db.R.Query(q, since.UnixMilli(), since.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for rs.Next() {
		var key string
		var n, b int64
		if err := rs.Scan(&key, &n, &b); err != nil {
			t.Fatal(err)
		}
		rows[key] += n
		bytes[key] += b + n*overhead
		rows["all"] += n
		bytes["all"] += b + n*overhead
	}
	return bytes, rows
}

// TestPublicIngestFloodStaysWithinItsBudget floods the public endpoints over loopback from 48
// client addresses (through a trusted proxy's X-Forwarded-For, as the dashboard derives a
// client's key) with 2,000 requests: forged production initialization errors padded with unknown
// fields, sandbox beacons, return visits with long queries, and badly signed 60 KiB webhooks,
// while Tensfer delivers signed webhooks from its own address. The budgets run on a clock the
// test moves 1 ms per request. What is stored stays within budget × elapsed + burst, per
// environment and input and in all; every signed webhook is acknowledged and stored; refusals are
// counted, not logged; forged init errors beyond the budget never reach the guardrails.
func TestPublicIngestFloodStaysWithinItsBudget(t *testing.T) {
	clock := newFakeClock()
	budget := events.PublicBudget{BytesPerSecond: 64 << 10, RowsPerSecond: 100}
	app := newTestApp(t, func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}
		c.PublicBudget = budget
	})
	app.srv.SetClock(clock.now)
	secret := app.withSecret("production")
	key, _ := tensfer.ParseSecret(secret)
	start := clock.now()
	dbStart := time.Now().Add(-time.Second) // received_at is stamped by the database's (real) clock
	logLines := strings.Count(app.logs.String(), "\n")

	const requests, clients = 2000, 48
	pad := strings.Repeat("x", 30<<10)
	forged := `{"event":"initialization_error","request_id":"req_forged","error":{"code":"INVALID_CLIENT_TOKEN","message":"forged"},"pad":"` + pad + `"}`
	badHook := `{"type":"payment.cancelled","pad":"` + strings.Repeat("y", 60<<10) + `"}`
	longQuery := "event=accounts_connected&session_id=s1&" + strings.Repeat("k", 200) + "=" + strings.Repeat("v", 3000)
	hc := &http.Client{
		Transport:     &http.Transport{MaxIdleConnsPerHost: 16},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(hc.CloseIdleConnections)

	type result struct {
		kind   string
		status int
		retry  string
		code   string
	}
	results := make([]result, requests)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= requests {
					return
				}
				now := clock.advance(time.Millisecond)
				addr := fmt.Sprintf("198.51.100.%d", 1+i%clients)
				var req *http.Request
				kind := []string{"forged", "forged", "forged", "forged", "sandbox", "sandbox", "refused", "refused", "return", "signed"}[i%10]
				switch kind {
				case "forged":
					req, _ = http.NewRequest(http.MethodPost, app.url+"/callbacks/production", strings.NewReader(forged))
				case "sandbox":
					req, _ = http.NewRequest(http.MethodPost, app.url+"/callbacks/sandbox", strings.NewReader(`{"event":"screen_loaded","screen":"consent","extra":"`+pad[:2000]+`"}`))
				case "refused":
					req, _ = http.NewRequest(http.MethodPost, app.url+"/hooks/production", strings.NewReader(badHook))
					tensfer.SignRequest(req, fmt.Sprintf("forged_%d", i), now, []byte(badHook), []byte("not the secret, not the secret!!"))
				case "return":
					req, _ = http.NewRequest(http.MethodGet, app.url+"/callbacks/production/return?"+longQuery, nil)
				case "signed":
					body := fmt.Sprintf(`{"id":"evt_%d","type":"payment.cancelled","request_id":"req_real_%d"}`, i, i)
					req, _ = http.NewRequest(http.MethodPost, app.url+"/hooks/production", strings.NewReader(body))
					tensfer.SignRequest(req, fmt.Sprintf("msg_%d", i), now, []byte(body), key)
					addr = "203.0.113.250" // Tensfer's own address
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Forwarded-For", addr)
				res, err := hc.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				var e apiError
				json.Unmarshal(b, &e)
				results[i] = result{kind: kind, status: res.StatusCode, retry: res.Header.Get("Retry-After"), code: e.Error.Code}
			}
		}()
	}
	wg.Wait()
	elapsed := clock.now().Sub(start).Seconds()

	sent, signedOK, quota429, refusedNotKept := map[string]int{}, 0, 0, 0
	for i, r := range results {
		sent[r.kind]++
		switch {
		case r.kind == "signed":
			if r.status != http.StatusOK {
				t.Errorf("signed webhook %d during the flood: %d %s", i, r.status, r.code)
			}
			signedOK++
		case r.kind == "forged" || r.kind == "sandbox":
			if r.status == http.StatusTooManyRequests {
				if r.code != "quota_exceeded" || r.retry == "" {
					t.Errorf("callback %d refused without its reason or Retry-After: %+v", i, r)
				}
				quota429++
			} else if r.status != http.StatusAccepted {
				t.Errorf("callback %d: %+v", i, r)
			}
		case r.kind == "refused" && r.status != http.StatusUnauthorized:
			t.Errorf("badly signed webhook %d: %+v", i, r)
		case r.kind == "return" && r.status != http.StatusOK:
			t.Errorf("return visit %d: %+v", i, r)
		}
	}
	if quota429 == 0 {
		t.Fatal("no callback was refused: the flood did not reach the budget")
	}

	// Stored bytes and rows stay within budget × elapsed + burst.
	perKey, global := budget.Limits()
	bytes, rows := storedPublicBytes(t, app, dbStart)
	for k, b := range bytes {
		lim, rowLim := perKey, perKey.Rows
		if k == "all" {
			lim, rowLim = global, global.Rows
		}
		maxBytes := lim.Bytes.PerSecond*elapsed + lim.Bytes.Burst
		maxRows := rowLim.PerSecond*elapsed + rowLim.Burst
		t.Logf("%-28s %4d rows %8d bytes (budget %8.0f bytes, %4.0f rows)", k, rows[k], b, maxBytes, maxRows)
		if float64(b) > maxBytes || float64(rows[k]) > maxRows {
			t.Errorf("%s: stored %d bytes in %d rows over %.1fs, budget %.0f bytes and %.0f rows", k, b, rows[k], elapsed, maxBytes, maxRows)
		}
	}
	if bytes["all"] == 0 {
		t.Fatal("nothing public was stored at all")
	}
	var clientsSeen int
	app.db.R.QueryRow(`SELECT count(DISTINCT client) FROM (SELECT client FROM events WHERE source = 'callback' UNION ALL SELECT client FROM rejected_deliveries) AS c`).Scan(&clientsSeen)
	if clientsSeen < 40 {
		t.Fatalf("the stored input came from %d client keys, want at least 40 distinct", clientsSeen)
	}

	// Every signed webhook is stored.
	var hooks int
	app.db.R.QueryRow(`SELECT count(*) FROM events WHERE source = 'webhook'`).Scan(&hooks)
	if hooks != sent["signed"] || signedOK != sent["signed"] {
		t.Fatalf("%d of %d signed webhooks stored", hooks, sent["signed"])
	}

	// What was not stored was counted, and not logged one line per request.
	var keptRefused, returns int
	app.db.R.QueryRow(`SELECT count(*) FROM rejected_deliveries`).Scan(&keptRefused)
	app.db.R.QueryRow(`SELECT count(*) FROM events WHERE type = 'accounts_connected'`).Scan(&returns)
	refusedNotKept = sent["refused"] - keptRefused
	counted := map[string]int64{}
	for _, c := range app.srv.events.Health().Refusals {
		counted[c.Input+"/"+c.Reason] += c.LastHour
	}
	want := map[string]int64{"callback/quota": int64(quota429), "refused_delivery/quota": int64(refusedNotKept), "return/quota": int64(sent["return"] - returns)}
	for k, n := range want {
		if counted[k] != n {
			t.Errorf("counted %s = %d, want %d (all counts %v)", k, counted[k], n, counted)
		}
	}
	logs := app.logs.String()
	newLines := strings.Count(logs, "\n") - logLines
	if strings.Contains(logs, `"status":429`) || strings.Count(logs, "input refused and not stored") != 1 || newLines > 2*keptRefused+10 {
		t.Fatalf("%d log lines for the flood (%d refused deliveries kept, 2 lines each); 429s logged: %v; summary lines: %d",
			newLines, keptRefused, strings.Contains(logs, `"status":429`), strings.Count(logs, "input refused and not stored"))
	}

	// The forged init errors stored are within the budget, and none reaches the guardrails: they
	// carry no beacon token.
	var storedInit, storedInitClients int
	app.db.R.QueryRow(`SELECT count(*), count(DISTINCT client) FROM events WHERE env = 'production' AND type = 'initialization_error'`).Scan(&storedInit, &storedInitClients)
	fig, err := app.srv.events.GuardrailFigures(context.Background(), dbStart, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if storedInit == 0 || storedInit >= sent["forged"] || float64(storedInit) > perKey.Rows.PerSecond*elapsed+perKey.Rows.Burst || fig["init_errors"] != (db.SignalCount{}) {
		t.Fatalf("forged init errors: %d sent, %d stored from %d senders, guardrail counts %d", sent["forged"], storedInit, storedInitClients, fig["init_errors"].Bad)
	}
}

// fakeSpace is the free space a test's disk guard reads.
type fakeSpace struct{ free atomic.Uint64 }

func (f *fakeSpace) read(string) (diskguard.Space, error) {
	return diskguard.Space{Free: f.free.Load(), Total: 100 << 30}, nil
}

func readyz(t *testing.T, app *testApp) (int, readiness) {
	t.Helper()
	res := app.client().get("/readyz")
	var r readiness
	if err := json.Unmarshal([]byte(res.body), &r); err != nil {
		t.Fatalf("readyz %d: %s", res.StatusCode, res.body)
	}
	return res.StatusCode, r
}

// TestDiskWatermarksOverHTTP: below the soft watermark callbacks and refused deliveries are not
// stored (503, counted) while signed webhooks and API-call reports are; below the hard one signed
// webhooks get 503 with Retry-After and nothing is stored; /readyz says degraded, then not ready,
// then ready again; the Overview shows the refusals.
func TestDiskWatermarksOverHTTP(t *testing.T) {
	dbtest.SQLiteOnly(t, "on PostgreSQL the local disk's watermarks are off")
	clock := newFakeClock()
	space := &fakeSpace{}
	space.free.Store(10 << 30)
	app := newTestApp(t, func(c *Config) {
		c.Disk = diskguard.Config{Soft: diskguard.Threshold{Bytes: 100 << 20}, Hard: diskguard.Threshold{Bytes: 10 << 20}, Space: space.read}
	})
	app.srv.SetClock(clock.now)
	secret := app.withSecret("production")
	writer := app.addToken("svc", auth.ScopeEventsWrite)
	viewer, _ := app.login(db.RoleViewer)
	if doc := viewer.get("/").doc(t); doc.Find(`[data-testid="ingest-no-refusals"]`).Length() != 1 || doc.Find(`[data-testid="ingest-disk-level"]`).Text() != "ok" {
		t.Fatal("the Overview's ingest panel lacks its empty state or disk level")
	}

	type answers struct {
		callback, refused, signed, apiCall, ready int
		readyStatus, disk                         string
	}
	cases := []struct {
		name string
		free uint64
		want answers
		rows int // stored: events and refused deliveries
	}{
		{"plenty of room", 10 << 30, answers{202, 401, 200, 201, 200, "ready", "ok"}, 4},
		{"below the soft watermark", 50 << 20, answers{503, 401, 200, 201, 200, "degraded", "low"}, 2},
		{"below the hard watermark", 5 << 20, answers{503, 401, 503, 503, 503, "not_ready", "critical"}, 0},
		{"room again", 10 << 30, answers{202, 401, 200, 201, 200, "ready", "ok"}, 4},
	}
	for i, c := range cases {
		space.free.Store(c.free)
		clock.advance(6 * time.Second) // past the guard's reading interval
		before := app.eventCount() + len(app.rejected())
		var got answers
		res := app.api("POST", "/callbacks/production", "", strings.NewReader(`{"event":"screen_loaded"}`))
		got.callback = res.StatusCode
		if res.StatusCode == 503 && (res.Header.Get("Retry-After") == "" || !strings.Contains(res.body, "disk space")) {
			t.Errorf("%s: callback refusal without Retry-After or reason: %s", c.name, res.body)
		}
		req, _ := http.NewRequest(http.MethodPost, app.url+"/hooks/production", strings.NewReader(`{"type":"x"}`))
		got.refused = app.client().do(req).StatusCode
		res = app.sendWebhook("production", secret, fmt.Sprintf("msg_%d", i), `{"type":"payment.cancelled"}`)
		got.signed = res.StatusCode
		if res.StatusCode == 503 && (res.Header.Get("Retry-After") != "60" || !strings.Contains(res.body, "storage_unavailable")) {
			t.Errorf("%s: signed webhook refusal: %v %s", c.name, res.Header, res.body)
		}
		got.apiCall = app.api("POST", "/api/v1/api-calls", writer, jsonBody(map[string]any{"env": "production", "method": "GET", "path": "/v1/x", "status": 200})).StatusCode
		var r readiness
		got.ready, r = readyz(t, app)
		got.readyStatus, got.disk = r.Status, r.Checks["disk"]
		if got != c.want {
			t.Fatalf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
		if stored := app.eventCount() + len(app.rejected()) - before; stored != c.rows {
			t.Fatalf("%s: %d rows stored, want %d", c.name, stored, c.rows)
		}
	}
	doc := viewer.get("/").doc(t)
	table := doc.Find(`[data-testid="ingest-refusals"]`).Text()
	for _, want := range []string{"disk below the soft watermark", "disk below the hard watermark", "Callback beacons", "Refused deliveries", "Signed webhooks"} {
		if !strings.Contains(table, want) {
			t.Errorf("the Overview's refusals lack %q: %s", want, table)
		}
	}
	if _, r := readyz(t, app); r.RefusedLastHour["disk_low"] != 2 || r.RefusedLastHour["disk_critical"] != 4 {
		t.Fatalf("readyz refusal counts: %v", r.RefusedLastHour)
	}
}

// TestFullDatabaseAnswers503: a signed webhook whose write really fails (the database at its
// page limit) is answered 503 with Retry-After, never 2xx; /readyz reports the failing writes
// and recovers once a write succeeds; the Overview shows the failure.
func TestFullDatabaseAnswers503(t *testing.T) {
	dbtest.SQLiteOnly(t, "SQLite's max_page_count stands in for a full disk")
	app := newTestApp(t)
	secret := app.withSecret("production")
	viewer, _ := app.login(db.RoleViewer)
	ctx := context.Background()
	if err := app.db.LimitPages(ctx, 0); err != nil {
		t.Fatal(err)
	}
	big := `{"type":"payment.cancelled","data":{"pad":"` + strings.Repeat("p", 300<<10) + `"}}`
	res := app.sendWebhook("production", secret, "msg_full", big)
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" || !strings.Contains(res.body, "storage_unavailable") {
		t.Fatalf("webhook into a full database: %d %s", res.StatusCode, res.body)
	}
	if status, r := readyz(t, app); status != 503 || r.Checks["writes"] != "failing" || r.Status != "not_ready" {
		t.Fatalf("readyz after the failed write: %d %+v", status, r)
	}
	if doc := viewer.get("/").doc(t); !strings.Contains(doc.Find(`[data-testid="ingest-write-failure"]`).Text(), "full") {
		t.Fatalf("the Overview does not show the failed write: %q", doc.Find(`[data-testid="overview-ingest"]`).Text())
	}
	if err := app.db.LimitPages(ctx, -1); err != nil {
		t.Fatal(err)
	}
	if res := app.sendWebhook("production", secret, "msg_full", big); res.StatusCode != 200 {
		t.Fatalf("Tensfer's retry: %d %s", res.StatusCode, res.body)
	}
	if status, r := readyz(t, app); status != 200 || r.Checks["writes"] != "ok" {
		t.Fatalf("readyz after a write succeeded: %d %+v", status, r)
	}
	if n := app.eventCount(); n != 1 {
		t.Fatalf("%d events stored, want the one retried", n)
	}
}

// TestBeaconsAreStoredInTheirShapeOverHTTP: a beacon's unknown members are not stored, whatever
// its size; the refused delivery of a large badly signed webhook keeps a marked prefix.
func TestBeaconsAreStoredInTheirShapeOverHTTP(t *testing.T) {
	app := newTestApp(t)
	admin, _ := app.login(db.RoleAdmin)
	body := `{"event":"screen_loaded","user_id":"u1","pad":"` + strings.Repeat("x", 60<<10) + `"}`
	if res := app.api("POST", "/callbacks/sandbox", "", strings.NewReader(body)); res.StatusCode != 202 {
		t.Fatalf("beacon: %d %s", res.StatusCode, res.body)
	}
	evs, _, _ := app.db.ListEvents(context.Background(), db.EventFilter{Source: db.SourceCallback})
	if len(evs) != 1 || string(evs[0].Payload) != `{"event":"screen_loaded","user_id":"u1","unknown_fields":["pad"]}` {
		t.Fatalf("stored: %s", evs[0].Payload)
	}
	req, _ := http.NewRequest(http.MethodPost, app.url+"/hooks/production", strings.NewReader(body))
	app.client().do(req)
	page := admin.get("/events/rejected")
	if !strings.Contains(page.body, "first 4096 kept") {
		t.Fatalf("the rejected delivery's page does not say the body was cut: %d", page.StatusCode)
	}
}
