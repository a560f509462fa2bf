package web

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/launch"
)

// BenchmarkDecideHTTP measures GET /api/v1/rollout/decide with 64 keep-alive clients (bearer
// token, a user id and two attributes, a rollout at 5 %) against a bare net/http handler that
// writes the same bytes, measured in the same run with the same clients: the ratio is the cost of
// the router, middleware, token check and decision.
//
//	go test -run '^$' -bench DecideHTTP -benchtime 40000x ./internal/web/
func BenchmarkDecideHTTP(b *testing.B) {
	app := newTestApp(b)
	ctx := context.Background()
	for range 2 {
		if _, err := app.srv.rollout.Act(ctx, launch.Advance, 0, 0, false, db.Audit{Actor: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
	token := app.addToken("bench", auth.ScopeRolloutDecide)
	path := "/api/v1/rollout/decide?user_id=user-12345&attr.country=SE&attr.plan=pro"
	res := app.api(http.MethodGet, path, token, nil)
	if res.StatusCode != http.StatusOK {
		b.Fatalf("decide: %d %s", res.StatusCode, res.body)
	}
	answer := []byte(res.body)
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.URL.Query().Get("user_id")
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	}))
	b.Cleanup(bare.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
	b.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}

	fire := func(base string, n int) time.Duration {
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range 64 {
			wg.Go(func() {
				for {
					i := next.Add(1)
					if i > int64(n) {
						return
					}
					req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/rollout/decide?user_id=user-"+strconv.FormatInt(i, 10)+"&attr.country=SE&attr.plan=pro", nil)
					req.Header.Set("Authorization", "Bearer "+token)
					res, err := hc.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						b.Errorf("status %d", res.StatusCode)
						return
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	fire(bare.URL, 2000) // warm both: connections, caches
	fire(app.url, 2000)
	// Alternate the two in rounds, so drift in the machine's load falls on both alike.
	b.ResetTimer()
	var dash, bareTook time.Duration
	for round := range 4 {
		n := b.N/4 + b.N%4*(round/3)
		dash += fire(app.url, n)
		b.StopTimer()
		bareTook += fire(bare.URL, n)
		b.StartTimer()
	}
	b.StopTimer()
	rate := func(d time.Duration) float64 { return float64(b.N) / d.Seconds() }
	b.ReportMetric(rate(dash), "decisions/s")
	b.ReportMetric(rate(bareTook), "bare_answers/s")
	b.ReportMetric(rate(dash)/rate(bareTook), "ratio_vs_bare")
}
