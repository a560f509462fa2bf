package db

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/pgtest"
)

// copyFixture is a SQLite database holding n events of payloadSize bytes, and an empty
// PostgreSQL one. Neither suite run's store matters: the copy always goes SQLite to PostgreSQL,
// so it runs on the first run only.
func copyFixture(t testing.TB, n, payloadSize int) (src, dst *DB) {
	t.Helper()
	if pgtest.Second() {
		t.Skip("the copy goes from SQLite to PostgreSQL whatever the run's store; it ran on the first run")
	}
	ctx := context.Background()
	url := pgtest.URL(t)
	src, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	tx, err := src.W.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	stmt, err := tx.PrepareContext(ctx, "INSERT INTO events (source, env, type, request_id, received_at, payload) VALUES ('webhook', 'production', 'payment.cancelled', ?, ?, ?)")
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"data":"` + strings.Repeat("x", payloadSize-11) + `"}`)
	for i := range n {
		if _, err := stmt.ExecContext(ctx, "req_"+string(rune('a'+i%26)), int64(1_700_000_000_000+i), payload); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if dst, err = OpenPostgres(ctx, url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	return src, dst
}

// BenchmarkCopyToPostgres copies 200,000 events of 512 bytes (about 100 MiB of payload) and
// samples the Go heap at every progress report: it stays a small fraction of what was copied,
// because rows stream through COPY one at a time. It reports heap-growth-MiB and fails when the
// heap grows by more than an eighth of the data. (A benchmark, not a test: under -race the copy
// takes minutes.) Run: go test ./internal/db -run '^$' -bench CopyToPostgres -benchtime 1x
func BenchmarkCopyToPostgres(b *testing.B) {
	const n, size = 200_000, 512
	for b.Loop() {
		b.StopTimer()
		src, dst := copyFixture(b, n, size)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base, peak := ms.HeapAlloc, ms.HeapAlloc
		reports := 0
		b.StartTimer()
		got, err := CopyToPostgres(context.Background(), src, dst, func(p CopyProgress) {
			reports++
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		})
		if err != nil {
			b.Fatal(err)
		}
		var events int64
		for _, p := range got {
			if p.Table == "events" {
				events = p.Done
			}
		}
		var inPG int64
		if err := dst.R.QueryRowContext(context.Background(), "SELECT count(*) FROM events").Scan(&inPG); err != nil || events != n || inPG != n {
			b.Fatalf("copied %d events, PostgreSQL holds %d (%v), want %d", events, inPG, err, n)
		}
		const data = n * size
		growth := peak - base
		b.ReportMetric(float64(growth)/(1<<20), "heap-growth-MiB")
		b.ReportMetric(float64(data)/(1<<20), "payload-MiB")
		if reports < n/copyBatch || growth > data/8 {
			b.Fatalf("heap grew by %d bytes while copying %d (%d reports): the copy does not stream", growth, data, reports)
		}
	}
}

// TestCopyToPostgresRefusesANonEmptyTarget: a target holding any row is refused, naming the
// tables, and keeps what it held.
func TestCopyToPostgresRefusesANonEmptyTarget(t *testing.T) {
	src, dst := copyFixture(t, 3, 64)
	ctx := context.Background()
	if err := dst.SetMeta(ctx, "someone", "was here"); err != nil {
		t.Fatal(err)
	}
	_, err := CopyToPostgres(ctx, src, dst, nil)
	if !errors.Is(err, ErrTargetNotEmpty) || !strings.Contains(err.Error(), "rows in meta") {
		t.Fatalf("copy into a database holding a meta row: %v", err)
	}
	var events, meta int
	if err := dst.R.QueryRowContext(ctx, "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM meta)").Scan(&events, &meta); err != nil || events != 0 || meta != 1 {
		t.Errorf("after the refusal the target holds %d events and %d meta rows (%v)", events, meta, err)
	}
}
