package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/events"
)

// BenchmarkSupportBundle measures what support bundles cost in memory: each round downloads
// bundleParallel bundles at once, each of 200 callbacks with 64 KiB payloads (13 MB of JSON,
// under the 16 MiB cap, so every answer holds every event). The baseline, measured in the same
// run on the same database, is the way bundles were built before: a bare handler that loads
// every event with db.LookupEvents, builds the answer and encodes it in one go. Reported, for
// both: bytes allocated per bundle and the peak of the heap during a round (above the heap
// before it), and the ratios streamed / baseline.
//
//	go test -run '^$' -bench SupportBundle -benchtime 5x ./internal/web/
func BenchmarkSupportBundle(b *testing.B) {
	const bundleParallel = 4
	app := newTestApp(b)
	viewer, _ := app.login(db.RoleViewer)
	app.plantEvents(200, "req_bench", `{"event":"screen_loaded","screen":"pay","junk":"`+strings.Repeat("x", 64<<10)+`"}`)
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("q")
		evs, err := app.db.LookupEvents(r.Context(), q, events.LookupLimit)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		out := struct {
			Query  string      `json:"query"`
			Events []eventJSON `json:"events"`
		}{Query: q, Events: []eventJSON{}}
		for _, e := range evs {
			out.Events = append(out.Events, toEventJSON(e))
		}
		writeJSON(w, http.StatusOK, out)
	}))
	defer bare.Close()

	// round downloads bundleParallel bundles from url at once and returns the heap's peak above
	// where it was before, sampled every 100 µs.
	round := func(url string) (peak uint64) {
		runtime.GC()
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		metrics.Read(sample)
		base := sample[0].Value.Uint64()
		done := make(chan struct{})
		var sampled sync.WaitGroup
		sampled.Go(func() {
			t := time.NewTicker(100 * time.Microsecond)
			defer t.Stop()
			for {
				metrics.Read(sample)
				if v := sample[0].Value.Uint64(); v > base && v-base > peak {
					peak = v - base
				}
				select {
				case <-done:
					return
				case <-t.C:
				}
			}
		})
		var wg sync.WaitGroup
		for range bundleParallel {
			wg.Go(func() {
				res, err := viewer.hc.Get(url)
				if err != nil {
					b.Error(err)
					return
				}
				defer res.Body.Close()
				n, _ := io.Copy(io.Discard, res.Body)
				if res.StatusCode != 200 || n < 200*(64<<10) {
					b.Errorf("bundle: %d, %d bytes", res.StatusCode, n)
				}
			})
		}
		wg.Wait()
		close(done)
		sampled.Wait()
		return peak
	}
	measure := func(url string, rounds int) (bytesPerBundle, peakMB float64) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var peak uint64
		for range rounds {
			peak = max(peak, round(url))
		}
		runtime.ReadMemStats(&after)
		return float64(after.TotalAlloc-before.TotalAlloc) / float64(rounds*bundleParallel), float64(peak) / (1 << 20)
	}
	round(bare.URL + "/?q=req_bench") // warm both paths (page cache, connections)
	round(app.url + "/lookup/bundle?q=req_bench")
	baseBytes, basePeak := measure(bare.URL+"/?q=req_bench", 5)

	b.ReportAllocs()
	var peak uint64
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rounds := 0
	for b.Loop() {
		peak = max(peak, round(app.url+"/lookup/bundle?q=req_bench"))
		rounds++
	}
	runtime.ReadMemStats(&after)
	perBundle := float64(after.TotalAlloc-before.TotalAlloc) / float64(rounds*bundleParallel)
	peakMB := float64(peak) / (1 << 20)
	b.ReportMetric(perBundle, "B/bundle")
	b.ReportMetric(baseBytes, "bare-B/bundle")
	b.ReportMetric(perBundle/baseBytes, "alloc-ratio")
	b.ReportMetric(peakMB, "peak-heap-MB")
	b.ReportMetric(basePeak, "bare-peak-heap-MB")
	b.ReportMetric(peakMB/basePeak, "peak-ratio")
}
