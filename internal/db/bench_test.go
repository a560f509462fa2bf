package db

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchEvents returns n webhook-like events with unique dedupe keys and ~300-byte payloads.
func benchEvents(n int) []EventInput {
	out := make([]EventInput, n)
	for i := range out {
		rid := fmt.Sprintf("req_%016x", rand.Uint64())
		out[i] = EventInput{
			Source: SourceWebhook, Env: "production", Type: "payment.cancelled", RequestID: rid,
			UserID: fmt.Sprintf("user_%d", i%5000), ExternalID: fmt.Sprintf("evt_%d", i),
			DedupeKey: fmt.Sprintf("webhook:production:msg_%d", i),
			Payload: fmt.Appendf(nil, `{"id":"evt_%d","type":"payment.cancelled","created_at":"2026-03-01T12:00:00Z",`+
				`"request_id":%q,"data":{"user_id":"user_%d","payment_id":"pay_%d","amount":1234,"currency":"GBP",`+
				`"reason":"user_cancelled","note":"%s"}}`, i, rid, i%5000, i, strings.Repeat("x", 80)),
			Headers:      map[string]string{"webhook-id": fmt.Sprintf("msg_%d", i), "content-type": "application/json"},
			Verification: []byte(`{"secret_id":"whs_1"}`),
		}
	}
	return out
}

// BenchmarkIngestGroupCommit measures the Ingester with 64 concurrent submitters of one event
// each (like 64 webhook deliveries in flight) against a bare baseline in the same run: the same
// rows inserted by one goroutine into a separate database (same schema, pragmas and
// synchronous=FULL) in hand-written transactions of 64 rows, the best batching 64 single-event
// submitters allow; and again in transactions of the size the Ingester actually reached. Run
// with a fixed count, e.g. -benchtime 20000x.
func BenchmarkIngestGroupCommit(b *testing.B) {
	const submitters = 64
	ctx := context.Background()
	d, err := Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	base, err := Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer base.Close()
	base2, err := Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer base2.Close()
	g := NewIngester(d, IngestOptions{})
	g.Start()
	defer g.Close()
	n := b.N
	inputs := benchEvents(n)

	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range submitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if _, err := g.Submit(ctx, inputs[i:i+1]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()

	st := g.Stats()
	perBatch := float64(st.Events) / float64(max(st.Batches, 1))
	baseElapsed := bareBatchInsert(b, base, inputs, submitters)
	// A second baseline at the batch size the Ingester reached: what is left is the cost of the
	// Ingester itself (queueing, dedupe check, RETURNING, counters), not of smaller batches.
	sameElapsed := bareBatchInsert(b, base2, inputs, max(1, int(perBatch+0.5)))
	rate, baseRate, sameRate := float64(n)/elapsed.Seconds(), float64(n)/baseElapsed.Seconds(), float64(n)/sameElapsed.Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(baseRate, "bare64_events/s")
	b.ReportMetric(rate/baseRate, "ratio_vs_bare64")
	b.ReportMetric(perBatch, "events/batch")
	b.ReportMetric(sameRate, "bare_same_batch_events/s")
	b.ReportMetric(rate/sameRate, "ratio_vs_bare_same_batch")
}

// bareBatchInsert is the baseline: the same rows, in transactions of batch rows, with one
// prepared INSERT and nothing else (no dedupe check, no RETURNING, no counters, no callback).
func bareBatchInsert(b *testing.B, d *DB, inputs []EventInput, batch int) time.Duration {
	ctx := context.Background()
	const q = `INSERT INTO events (source, env, type, request_id, user_id, external_id, dedupe_key,
		received_at, occurred_at, is_error, method, path, status, duration_ms, error_code, error_message, payload,
		headers, verification, demo) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	start := time.Now()
	for lo := 0; lo < len(inputs); lo += batch {
		tx, err := d.W.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		st, err := tx.PrepareContext(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		now := ms(time.Now())
		for i := lo; i < min(lo+batch, len(inputs)); i++ {
			args, err := insertArgs(&inputs[i], now)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := st.ExecContext(ctx, args...); err != nil {
				b.Fatal(err)
			}
		}
		st.Close()
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// benchSelected reports whether the -bench pattern names this benchmark explicitly, for
// benchmarks too slow to set up under a catch-all pattern such as -bench=. in CI.
func benchSelected(name string) bool {
	f := flag.Lookup("test.bench")
	return f != nil && strings.Contains(f.Value.String(), name)
}

const fixtureEvents = 1_000_000

// buildLookupFixture fills d with fixtureEvents events in one transaction, generated inside
// SQLite: every three consecutive events (webhook, callback, api call) share a request id that
// looks random, callbacks carry one of 50,000 user ids, 70% are production, one every 100 ms.
func buildLookupFixture(b *testing.B, d *DB) {
	ctx := context.Background()
	start := time.Now()
	conn, err := d.W.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA cache_size = -262144"); err != nil { // 256 MiB for the build
		b.Fatal(err)
	}
	defer conn.ExecContext(ctx, "PRAGMA cache_size = -32000")
	_, err = conn.ExecContext(ctx, `
		WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ?1 - 1)
		INSERT INTO events (source, env, type, request_id, user_id, external_id, dedupe_key, received_at,
			is_error, method, path, status, duration_ms, error_code, error_message, payload, headers)
		SELECT
			CASE i % 3 WHEN 0 THEN 'webhook' WHEN 1 THEN 'callback' ELSE 'api' END,
			CASE WHEN i % 10 < 7 THEN 'production' ELSE 'sandbox' END,
			CASE i % 3 WHEN 0 THEN 'payment.cancelled' WHEN 1 THEN 'screen_loaded' ELSE 'api.call' END,
			printf('req_%08x', ((i / 3) * 2654435761) % 4294967296),
			CASE WHEN i % 3 = 1 THEN 'user_' || (i % 50000) ELSE '' END,
			CASE WHEN i % 3 = 0 THEN 'evt_' || i ELSE '' END,
			CASE WHEN i % 3 = 0 THEN 'webhook:production:msg_' || i END,
			?2 + i * 100,
			i % 3 = 2 AND i % 100 = 2,
			CASE WHEN i % 3 = 2 THEN 'GET' END, CASE WHEN i % 3 = 2 THEN '/accounts' END,
			CASE WHEN i % 3 = 2 THEN 200 END, CASE WHEN i % 3 = 2 THEN 87 END,
			CASE WHEN i % 3 = 2 THEN '' END, CASE WHEN i % 3 = 2 THEN '' END,
			'{"id":"evt_' || i || '","type":"payment.cancelled","created_at":"2026-03-01T12:00:00Z","request_id":"' ||
				printf('req_%08x', ((i / 3) * 2654435761) % 4294967296) ||
				'","data":{"user_id":"user_' || (i % 50000) || '","amount":1234,"currency":"GBP","note":"' ||
				substr(hex(zeroblob(40)), 1, 80) || '"}}',
			'{"webhook-id":"msg_' || i || '","content-type":"application/json"}'
		FROM s`, fixtureEvents, ms(t0))
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("fixture: %d events in %v", fixtureEvents, time.Since(start).Round(time.Millisecond))
}

func fixtureRequestID(k uint64) string { return fmt.Sprintf("req_%08x", (k*2654435761)%4294967296) }

// timeOps runs op in a b.Loop, recording each duration, and returns them sorted.
func timeOps(b *testing.B, op func(i int)) []time.Duration {
	var durs []time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		op(i)
		durs = append(durs, time.Since(start))
	}
	slices.Sort(durs)
	return durs
}

func p99(durs []time.Duration) time.Duration {
	if len(durs) == 0 {
		return 0
	}
	return durs[len(durs)*99/100]
}

func mean(durs []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range durs {
		sum += d
	}
	return sum / time.Duration(max(len(durs), 1))
}

// BenchmarkLookupEvents measures LookupEvents by request_id and filtered ListEvents pages with
// 1,000,000 events stored (target p99 <= 5 ms), reporting p99 per operation and ratios against
// baselines run on the same fixture: a bare single-index SELECT of the same rows for the lookup
// (it only searches request_id; LookupEvents also searches external_id and user_id),
// the unfiltered newest page for the list pages.
//
// NB: building the fixture takes tens of seconds, so it runs only when named, e.g.
// go test -run '^$' -bench LookupEvents ./internal/db/
func BenchmarkLookupEvents(b *testing.B) {
	if !benchSelected("LookupEvents") {
		b.Skip("builds a 1,000,000-event fixture; select it by name: -bench LookupEvents")
	}
	ctx := context.Background()
	d, err := Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	buildLookupFixture(b, d)
	rng := rand.New(rand.NewPCG(1, 2))
	groups := uint64(fixtureEvents / 3)

	b.Run("lookup", func(b *testing.B) {
		// The baseline first, on its own timer, then LookupEvents under b.Loop. Both prepare their
		// statement per call, as every store method does.
		bare := "SELECT " + eventCols + " FROM events WHERE request_id = ? AND request_id <> '' ORDER BY id"
		var baseDurs []time.Duration
		for range 2000 {
			rid := fixtureRequestID(rng.Uint64N(groups))
			start := time.Now()
			rows, err := d.R.QueryContext(ctx, bare, rid)
			if err != nil {
				b.Fatal(err)
			}
			evs, _, err := scanEvents(rows, 0)
			if err != nil || len(evs) != 3 {
				b.Fatalf("bare select of %s: %d rows, %v", rid, len(evs), err)
			}
			baseDurs = append(baseDurs, time.Since(start))
		}
		slices.Sort(baseDurs)
		durs := timeOps(b, func(int) {
			rid := fixtureRequestID(rng.Uint64N(groups))
			evs, err := d.LookupEvents(ctx, rid, 0)
			if err != nil || len(evs) != 3 {
				b.Fatalf("lookup %s: %d events, %v", rid, len(evs), err)
			}
		})
		b.ReportMetric(float64(p99(durs).Nanoseconds()), "p99-ns")
		b.ReportMetric(float64(mean(baseDurs).Nanoseconds()), "bare-ns/op")
		b.ReportMetric(float64(p99(baseDurs).Nanoseconds()), "bare-p99-ns")
		b.ReportMetric(float64(mean(durs))/float64(mean(baseDurs)), "ratio")
	})

	var baseline time.Duration // mean of the unfiltered newest page, measured first
	yes := true
	for _, tc := range []struct {
		name string
		f    func(before int64) EventFilter
	}{
		{"page-unfiltered", func(before int64) EventFilter { return EventFilter{BeforeID: before} }},
		{"page-env-source", func(before int64) EventFilter {
			return EventFilter{Env: "sandbox", Source: SourceWebhook, BeforeID: before}
		}},
		{"page-type-any-env", func(before int64) EventFilter { return EventFilter{Type: "api.call", BeforeID: before} }},
		{"page-errors-any-env", func(before int64) EventFilter { return EventFilter{IsError: &yes, BeforeID: before} }},
		{"page-request-id", func(before int64) EventFilter {
			return EventFilter{RequestID: fixtureRequestID(rng.Uint64N(groups)), Env: "production", BeforeID: before}
		}},
		{"page-last-hour", func(int64) EventFilter {
			end := t0.Add(100 * fixtureEvents * time.Millisecond)
			return EventFilter{Since: end.Add(-time.Hour), Env: "production", Source: SourceAPI}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			durs := timeOps(b, func(int) {
				// A page at a random depth: cursors come from anywhere in the history.
				before := int64(rng.Uint64N(fixtureEvents)) + 2
				if _, _, err := d.ListEvents(ctx, tc.f(before)); err != nil {
					b.Fatal(err)
				}
			})
			if baseline == 0 {
				baseline = mean(durs)
			}
			b.ReportMetric(float64(p99(durs).Nanoseconds()), "p99-ns")
			b.ReportMetric(float64(mean(durs))/float64(baseline), "ratio")
		})
	}
}

// BenchmarkCountByHour measures the Overview's 24-hour trend (CountByHour: the window's events
// counted per hour and environment in covering indexes, its refused deliveries grouped by hour)
// over the lookup fixture's last 24 hours, some 864,000 events, against a bare count(*) of the
// same id range in the same run: the least any query over those events can cost.
//
// NB: the fixture takes tens of seconds to build, so it runs only when named, e.g.
// go test -run '^$' -bench CountByHour ./internal/db/
func BenchmarkCountByHour(b *testing.B) {
	if !benchSelected("CountByHour") {
		b.Skip("builds a 1,000,000-event fixture; select it by name: -bench CountByHour")
	}
	ctx := context.Background()
	d, err := Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	buildLookupFixture(b, d)
	since := t0.Add(100 * fixtureEvents * time.Millisecond).Add(-24 * time.Hour)
	lo, _, err := d.firstEventAtOrAfter(ctx, since)
	if err != nil {
		b.Fatal(err)
	}
	var baseDurs []time.Duration
	var rows int64
	for range 5 {
		start := time.Now()
		if err := d.R.QueryRowContext(ctx, "SELECT count(*) FROM events WHERE id >= ?", lo).Scan(&rows); err != nil {
			b.Fatal(err)
		}
		baseDurs = append(baseDurs, time.Since(start))
	}
	durs := timeOps(b, func(int) {
		counts, err := d.CountByHour(ctx, since, 24)
		if err != nil {
			b.Fatal(err)
		}
		var n int64
		for _, c := range counts {
			n += c.Events
		}
		if n != rows {
			b.Fatalf("%d events by hour, want %d", n, rows)
		}
	})
	b.ReportMetric(float64(rows), "rows")
	b.ReportMetric(float64(p99(durs).Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(mean(baseDurs).Nanoseconds()), "bare-ns/op")
	b.ReportMetric(float64(mean(durs))/float64(mean(baseDurs)), "ratio")
}
