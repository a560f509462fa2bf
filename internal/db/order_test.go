package db

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/pgtest"
)

// TestEventIDsCommitInOrderAcrossInstances (PostgreSQL): two instances write events while a
// third holds a slow write transaction open that has already inserted an event, and a reader
// follows the table as the live feed does (ids above the highest it has seen). A sequence alone
// would hand the slow transaction a low id and let the fast writers commit higher ones first,
// and the reader would step past the low one for good; with every write holding the writer lock,
// the reader never meets an id below one it has seen, and sees every id.
func TestEventIDsCommitInOrderAcrossInstances(t *testing.T) {
	if !pgtest.Second() {
		t.Skip("PostgreSQL pass only: one SQLite writer cannot commit out of order")
	}
	ctx := context.Background()
	open, _ := newStore(t)
	handles := make([]*DB, 4) // two instances writing, one slow writer, one reader
	for i := range handles {
		d, err := open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		handles[i] = d
	}
	fast := []*Ingester{startIngester(t, handles[0], IngestOptions{}), startIngester(t, handles[1], IngestOptions{})}
	slow, reader := handles[2], handles[3]

	// The reader: every id above its watermark, in id order, as a live stream resumes.
	stop := make(chan struct{})
	var seen []int64
	var late []string
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		var mark int64
		stopping := false
		for {
			rows, err := reader.R.QueryContext(ctx, "SELECT id FROM events WHERE id > ? ORDER BY id", mark)
			if err != nil {
				t.Error(err)
				return
			}
			for rows.Next() {
				var id int64
				rows.Scan(&id)
				seen = append(seen, id)
				mark = id
			}
			rows.Close()
			// A row below the watermark that was not there before is one the reader skipped.
			var below int
			reader.R.QueryRowContext(ctx, "SELECT count(*) FROM events WHERE id <= ?", mark).Scan(&below)
			if below != len(seen) {
				late = append(late, fmt.Sprintf("%d rows at or below id %d, %d of them seen", below, mark, len(seen)))
			}
			if stopping {
				return
			}
			select {
			case <-stop:
				stopping = true // one more pass: everything is committed by now
			default:
			}
		}
	}()

	// The slow writer inserts first, then waits inside its transaction until both fast
	// instances are queued behind the writer lock (PostgreSQL's pg_locks says so), then commits.
	slowDone := make(chan error, 1)
	go func() {
		slowDone <- slow.tx(ctx, func(tx txer) error {
			id, err := tx.insertID(ctx, `INSERT INTO events (source, env, type, received_at, payload) VALUES ('webhook', 'production', 'slow', ?, ?)`,
				ms(slow.Now()), []byte(`{}`))
			if err != nil {
				return err
			}
			// Commit once both fast instances wait for the lock or, were there no lock, once
			// they have committed events above this one's id (which the reader then steps past).
			deadline := time.Now().Add(30 * time.Second)
			for {
				var waiting, above int
				if err := reader.R.QueryRowContext(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())").Scan(&waiting); err != nil {
					return err
				}
				if err := reader.R.QueryRowContext(ctx, "SELECT count(*) FROM events WHERE id > ?", id).Scan(&above); err != nil {
					return err
				}
				if waiting >= 2 || above >= 20 {
					return nil
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("the fast writers never queued behind the lock (%d waiting)", waiting)
				}
				time.Sleep(time.Millisecond) // polling a condition, not timing anything
			}
		})
	}()
	var wg sync.WaitGroup
	for k, g := range fast {
		for w := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 40 {
					if _, err := g.Submit(ctx, []EventInput{webhook("production", "fast", fmt.Sprintf("req_%d_%d_%d", k, w, i))}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
	// Every writer is done: the reader makes one last pass and stops.
	close(stop)
	<-readerDone
	var total int
	handles[0].R.QueryRowContext(ctx, "SELECT count(*) FROM events").Scan(&total)
	if len(late) > 0 {
		t.Fatalf("rows committed below ids the reader had seen: %v", late[:min(3, len(late))])
	}
	if total != 1+2*3*40 || len(seen) != total {
		t.Fatalf("%d events stored, %d seen; want %d", total, len(seen), 1+2*3*40)
	}
}
