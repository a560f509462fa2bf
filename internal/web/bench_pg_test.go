package web

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/dbtest"
	"github.com/tensfer-golive/dashboard/internal/pgtest"
)

// BenchmarkWebhookIngestPostgres measures durable webhook ingest over HTTP on PostgreSQL (a
// cluster of its own with fsync and synchronous commit on, as in production): b.N signed
// deliveries from 64 concurrent keep-alive clients, each answered only after its commit.
// Against, in the same run and with the same deliveries:
//
//   - bare_pgx: bareHookHandler (the same signature check) on net/http, storing each delivery
//     with one INSERT .. ON CONFLICT DO NOTHING through a pgxpool of 16 connections on a database
//     with the same schema: what a hand-written pgx handler does. ratio = events/s over
//     bare_events/s (target >= 0.8).
//   - two_instances: two dashboards on the same database, the deliveries alternating between
//     them, as behind a balancer. ratio_two_vs_one = its events/s over one instance's.
//
// Rounds rotate the targets as BenchmarkWebhookIngest does. Run with a fixed count:
//
//	go test -run '^$' -bench WebhookIngestPostgres -benchtime 10000x ./internal/web/
func BenchmarkWebhookIngestPostgres(b *testing.B) {
	if dbtest.Postgres() {
		b.Skip("it starts a durable cluster of its own: once, in the first pass, is enough")
	}
	const clients = 64
	n := b.N
	cluster := pgtest.New(b)
	for _, name := range []string{"dash", "bare"} {
		if err := cluster.CreateDatabase(name); err != nil {
			b.Fatal(err)
		}
	}
	store := dbtest.Store{Dir: b.TempDir(), URL: cluster.DatabaseURL("dash")}
	one := newTestAppOn(b, store)
	two := newTestAppOn(b, store) // same directory: the same master key
	key := benchWebhookKey(b, one)

	// The bare handler's database: the same schema and indexes, migrated by the store, then
	// written through pgx alone.
	bd, err := db.OpenPostgres(context.Background(), cluster.DatabaseURL("bare"))
	if err != nil {
		b.Fatal(err)
	}
	bd.Close()
	pool, err := pgxpool.New(context.Background(), cluster.DatabaseURL("bare")+"&pool_max_conns=16")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	bare := httptest.NewServer(bareHookHandler(key, func(ctx context.Context, in db.EventInput) error {
		hdr, _ := json.Marshal(in.Headers)
		_, err := pool.Exec(ctx, `INSERT INTO events (source, env, type, request_id, user_id, external_id, dedupe_key,
			received_at, occurred_at, payload, headers, verification) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (dedupe_key) DO NOTHING`, in.Source, in.Env, in.Type, in.RequestID, in.UserID, in.ExternalID, in.DedupeKey,
			time.Now().UnixMilli(), in.OccurredAt.UnixMilli(), in.Payload, string(hdr), string(in.Verification))
		return err
	}))
	b.Cleanup(bare.Close)

	tr := &http.Transport{MaxIdleConns: 8 * clients, MaxIdleConnsPerHost: clients, IdleConnTimeout: time.Minute}
	b.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	mk := func(tag string) []benchDelivery {
		ds := make([]benchDelivery, n)
		for i := range ds {
			ds[i] = benchDelivery{id: fmt.Sprintf("msg_%s_%08d_%s", tag, i, auth.RandomID(6)), body: benchWebhookBody(i, fmt.Sprintf("req_%016x", rand.Uint64()))}
		}
		return ds
	}
	twoURLs := []string{one.url + "/hooks/production", two.url + "/hooks/production"}
	targets := []*benchTarget{
		{name: "dashboard", url: one.url + "/hooks/production", ds: mk("one")},
		{name: "bare_pgx", url: bare.URL + "/hooks/production", ds: mk("bare")},
		{name: "two_instances", ds: mk("two"), fire: func(ds []benchDelivery, lat []time.Duration) (time.Duration, int64) {
			return benchFireAlternating(hc, twoURLs, clients, ds, lat)
		}},
	}
	// Warm up: open the connections to each server and touch every code path once.
	for _, t := range targets {
		ws := make([]benchDelivery, 2*clients)
		for i := range ws {
			ws[i] = benchDelivery{id: fmt.Sprintf("warm_%s_%d_%s", t.name, i, auth.RandomID(6)), body: benchWebhookBody(i, "req_warm")}
			ws[i].sign(key, time.Now())
		}
		fire := t.fire
		if fire == nil {
			fire = func(ds []benchDelivery, lat []time.Duration) (time.Duration, int64) {
				return benchFire(hc, t.url, clients, ds, lat)
			}
		}
		if _, failed := fire(ws, make([]time.Duration, len(ws))); failed > 0 {
			b.Fatalf("%s: %d warm-up deliveries not acknowledged", t.name, failed)
		}
	}
	benchRounds(b, hc, clients, n, targets, "dashboard", func(t *benchTarget, lo, hi int) {
		now := time.Now() // signed per round so a long run stays inside the 5-minute tolerance
		for i := lo; i < hi; i++ {
			t.ds[i].sign(key, now)
		}
	})
	var stored int64
	one.db.R.QueryRow("SELECT count(*) FROM events").Scan(&stored)
	if want := int64(2*n + 4*clients); stored != want {
		b.Errorf("the dashboards' database holds %d events, want %d", stored, want)
	}
	dash, bareT, twoT := targets[0], targets[1], targets[2]
	rate := func(t *benchTarget) float64 { return float64(n) / t.elapsed.Seconds() }
	b.ReportMetric(rate(dash), "events/s")
	b.ReportMetric(rate(bareT), "bare_events/s")
	b.ReportMetric(rate(dash)/rate(bareT), "ratio")
	b.ReportMetric(rate(twoT), "two_instances_events/s")
	b.ReportMetric(rate(twoT)/rate(dash), "ratio_two_vs_one")
	b.ReportMetric(benchMS(dash.lat, 0.99), "p99_ms")
	b.ReportMetric(benchMS(bareT.lat, 0.99), "bare_p99_ms")
	b.ReportMetric(benchMS(twoT.lat, 0.99), "two_p99_ms")
}

// benchFireAlternating is benchFire with delivery i sent to urls[i%len(urls)].
func benchFireAlternating(hc *http.Client, urls []string, clients int, ds []benchDelivery, lat []time.Duration) (time.Duration, int64) {
	var failed int64
	// Each URL gets its share of the clients at once, so both instances are loaded together.
	done := make(chan struct{}, len(urls))
	type res struct {
		d time.Duration
		f int64
	}
	out := make([]res, len(urls))
	start := time.Now()
	for k, u := range urls {
		go func() {
			defer func() { done <- struct{}{} }()
			var mine []benchDelivery
			var idx []int
			for i := k; i < len(ds); i += len(urls) {
				mine = append(mine, ds[i])
				idx = append(idx, i)
			}
			l := make([]time.Duration, len(mine))
			d, f := benchFire(hc, u, clients/len(urls), mine, l)
			for j, i := range idx {
				lat[i] = l[j]
			}
			out[k] = res{d, f}
		}()
	}
	for range urls {
		<-done
	}
	total := time.Since(start)
	for _, r := range out {
		failed += r.f
	}
	return total, failed
}
