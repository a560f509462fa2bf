package web

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/events"
)

// benchBeacon is a realistic callback beacon of about 250 bytes, with one member the documented
// shape does not know (dropped when stored).
func benchBeacon(seq int) []byte {
	return fmt.Appendf(nil, `{"event":"screen_loaded","event_id":"cb_%016x","session_id":"sess_%016x","user_id":"user_%d",`+
		`"request_id":"req_%016x","screen":"consent","occurred_at":"%s","sdk_version":"web-2.14.1"}`,
		rand.Uint64(), rand.Uint64(), seq%50000, rand.Uint64(), time.Now().UTC().Format(time.RFC3339Nano))
}

// BenchmarkPublicIngest measures the cost of storing unauthenticated input with its guards (the
// per-client limit, the beacon's shaping, the byte-and-row budgets, the disk watermark) against
// the dashboard's own signed-webhook ingest in the same run: b.N beacons to POST
// /callbacks/production and b.N signed webhooks to POST /hooks/production, from 64 keep-alive
// clients, alternated in rounds so that drift on a shared machine hits both alike. The budgets
// are set high enough never to refuse, so every beacon pays for the checks and is stored.
// ratio = beacons/s over webhooks/s; ns/op counts the beacons only.
//
//	go test -run '^$' -bench PublicIngest -benchtime 20000x ./internal/web/
func BenchmarkPublicIngest(b *testing.B) {
	const clients = 64
	n := b.N
	app := newTestApp(b, func(c *Config) {
		c.CallbackRate = RateLimit{Burst: 1 << 30, Every: time.Nanosecond}
		c.PublicBudget = events.PublicBudget{BytesPerSecond: 1 << 40, RowsPerSecond: 1e9}
	})
	key := benchWebhookKey(b, app)
	tr := &http.Transport{MaxIdleConns: 4 * clients, MaxIdleConnsPerHost: clients, IdleConnTimeout: time.Minute}
	b.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}

	beacons, hooks := make([]benchDelivery, n), make([]benchDelivery, n)
	hdr := http.Header{"Content-Type": {"text/plain;charset=UTF-8"}, "User-Agent": {"Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"}}
	for i := range n {
		beacons[i] = benchDelivery{body: benchBeacon(i), hdr: hdr}
		hooks[i] = benchDelivery{id: fmt.Sprintf("msg_%08d_%s", i, auth.RandomID(6)), body: benchWebhookBody(i, fmt.Sprintf("req_%016x", rand.Uint64()))}
	}
	targets := []*benchTarget{
		{name: "beacons", url: app.url + "/callbacks/production", ds: beacons},
		{name: "webhooks", url: app.url + "/hooks/production", ds: hooks},
	}
	// Warm up both paths and open the connections.
	warm := make([]benchDelivery, 2*clients)
	for i := range warm {
		warm[i] = benchDelivery{body: benchBeacon(i), hdr: hdr}
	}
	if _, failed := benchFire(hc, targets[0].url, clients, warm, make([]time.Duration, len(warm))); failed > 0 {
		b.Fatalf("%d warm-up beacons not stored", failed)
	}
	benchRounds(b, hc, clients, n, targets, "beacons", func(t *benchTarget, lo, hi int) {
		now := time.Now()
		for i := lo; i < hi && t.name == "webhooks"; i++ {
			hooks[i].sign(key, now)
		}
	})
	if refused := app.srv.events.Health().Refusals; len(refused) > 0 {
		b.Errorf("input was refused during the benchmark: %+v", refused)
	}
	beaconT, hookT := targets[0], targets[1]
	rate := func(t *benchTarget) float64 { return float64(n) / t.elapsed.Seconds() }
	b.ReportMetric(rate(beaconT), "beacons/s")
	b.ReportMetric(rate(hookT), "webhooks/s")
	b.ReportMetric(rate(beaconT)/rate(hookT), "ratio")
	b.ReportMetric(benchMS(beaconT.lat, 0.99), "p99_ms")
	b.ReportMetric(benchMS(hookT.lat, 0.99), "webhook_p99_ms")
}
