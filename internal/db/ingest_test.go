package db

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSubmitStoresAndDeduplicates(t *testing.T) {
	withKey := func(in EventInput, key string) EventInput { in.DedupeKey = key; return in }
	a := withKey(webhook("production", "payment.cancelled", "req_1"), "webhook:production:msg_1")
	b := withKey(webhook("production", "payment.cancelled", "req_2"), "webhook:production:msg_2")
	aSandbox := withKey(webhook("sandbox", "payment.cancelled", "req_1"), "webhook:sandbox:msg_1")
	plain := webhook("production", "x", "req_3")
	for _, tc := range []struct {
		name     string
		submits  [][]EventInput
		want     [][]IngestResult // ids are 1-based positions of newly stored events
		inserted []int64          // what OnCommit saw, in order
	}{
		{"one event", [][]EventInput{{a}}, [][]IngestResult{{{ID: 1}}}, []int64{1}},
		{"redelivery stores nothing new", [][]EventInput{{a}, {a}}, [][]IngestResult{{{ID: 1}}, {{ID: 1, Duplicate: true}}}, []int64{1}},
		{"duplicate inside one submit", [][]EventInput{{a, b, a}}, [][]IngestResult{{{ID: 1}, {ID: 2}, {ID: 1, Duplicate: true}}}, []int64{1, 2}},
		{"same delivery id in another env is not a duplicate", [][]EventInput{{a, aSandbox}}, [][]IngestResult{{{ID: 1}, {ID: 2}}}, []int64{1, 2}},
		{"no dedupe key is never a duplicate", [][]EventInput{{plain, plain}, {plain}}, [][]IngestResult{{{ID: 1}, {ID: 2}}, {{ID: 3}}}, []int64{1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := openTemp(t)
			var mu sync.Mutex
			var seen []int64
			g := startIngester(t, d, IngestOptions{OnCommit: func(evs []Event) {
				mu.Lock()
				defer mu.Unlock()
				for _, e := range evs {
					seen = append(seen, e.ID)
				}
			}})
			for i, in := range tc.submits {
				res, err := g.Submit(context.Background(), in)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(res, tc.want[i]) {
					t.Fatalf("submit %d: %+v, want %+v", i, res, tc.want[i])
				}
				// OnCommit ran before Submit returned.
				mu.Lock()
				n := len(seen)
				mu.Unlock()
				if last := res[len(res)-1]; !last.Duplicate && (n == 0 || seen[n-1] < last.ID) {
					t.Fatalf("submit %d returned before OnCommit saw event %d (saw %v)", i, last.ID, seen)
				}
			}
			if !reflect.DeepEqual(seen, tc.inserted) {
				t.Fatalf("OnCommit saw %v, want %v", seen, tc.inserted)
			}
			evs, _, err := d.ListEvents(context.Background(), EventFilter{})
			if err != nil || len(evs) != len(tc.inserted) {
				t.Fatalf("%d events stored (%v), want %d", len(evs), err, len(tc.inserted))
			}
		})
	}
}

func TestSubmitRefusesInvalidEventsWhole(t *testing.T) {
	d, _ := openTemp(t)
	g := startIngester(t, d, IngestOptions{})
	good := webhook("sandbox", "x", "r")
	for _, tc := range []struct {
		name   string
		mutate func(*EventInput)
		want   string
	}{
		{"unknown source", func(e *EventInput) { e.Source = "email" }, "source must be"},
		{"unknown env", func(e *EventInput) { e.Env = "staging" }, "env must be"},
		{"no type", func(e *EventInput) { e.Type = "" }, "type must be"},
		{"empty payload", func(e *EventInput) { e.Payload = nil }, "payload is empty"},
		{"verification not json", func(e *EventInput) { e.Verification = []byte("{") }, "verification is not valid JSON"},
		{"absurd request id", func(e *EventInput) { e.RequestID = strings.Repeat("r", 5000) }, "request_id is longer"},
		{"negative duration", func(e *EventInput) { e.DurationMS = -1 }, "duration_ms is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := good
			tc.mutate(&bad)
			_, err := g.Submit(context.Background(), []EventInput{good, bad})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "event 1") {
				t.Fatalf("err %v, want one naming event 1 and %q", err, tc.want)
			}
			if id, _ := d.LatestEventID(context.Background()); id != 0 {
				t.Fatalf("the valid event of a refused submit was stored (id %d)", id)
			}
		})
	}
}

func TestConcurrentDuplicatesStoreOnce(t *testing.T) {
	d, _ := openTemp(t)
	g := startIngester(t, d, IngestOptions{MaxBatch: 8})
	const workers, keys = 16, 4
	results := make([][]IngestResult, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var in []EventInput
			for k := range keys {
				e := webhook("production", "x", "")
				e.DedupeKey = fmt.Sprintf("webhook:production:msg_%d", (k+w)%keys)
				in = append(in, e)
			}
			results[w], errs[w] = g.Submit(context.Background(), in)
		}()
	}
	wg.Wait()
	idOf := map[string]int64{}
	fresh := map[string]int{}
	for w := range workers {
		if errs[w] != nil {
			t.Fatal(errs[w])
		}
		for k, r := range results[w] {
			key := fmt.Sprintf("msg_%d", (k+w)%keys)
			if id, ok := idOf[key]; ok && id != r.ID {
				t.Fatalf("%s answered with ids %d and %d", key, id, r.ID)
			}
			idOf[key] = r.ID
			if !r.Duplicate {
				fresh[key]++
			}
		}
	}
	for key, n := range fresh {
		if n != 1 {
			t.Errorf("%s stored %d times as new", key, n)
		}
	}
	if len(fresh) != keys {
		t.Errorf("%d keys stored, want %d", len(fresh), keys)
	}
	if st := g.Stats(); st.Events != keys || st.Duplicates != workers*keys-keys {
		t.Errorf("stats %+v, want %d events and %d duplicates", st, keys, workers*keys-keys)
	}
}

// blockingCommits returns an OnCommit that holds the writer inside each commit callback until
// the test lets it go, and reports the size of every batch.
func blockingCommits() (onCommit func([]Event), entered chan int, release chan struct{}) {
	entered, release = make(chan int, 64), make(chan struct{})
	return func(evs []Event) { entered <- len(evs); <-release }, entered, release
}

// TestGroupCommitTakesEverythingQueued holds the writer on one batch while more Submits queue
// up, then checks that they are committed together, MaxBatch at a time, not one by one.
func TestGroupCommitTakesEverythingQueued(t *testing.T) {
	d, _ := openTemp(t)
	onCommit, entered, release := blockingCommits()
	g := startIngester(t, d, IngestOptions{MaxBatch: 5, OnCommit: onCommit})
	first := make(chan error, 1)
	go func() {
		_, err := g.Submit(context.Background(), []EventInput{webhook("sandbox", "x", "first")})
		first <- err
	}()
	if n := <-entered; n != 1 {
		t.Fatalf("first batch has %d events, want 1 (no waiting for company)", n)
	}
	// Ten Submits of 2 events: a Submit is never split, so with MaxBatch 5 a batch takes two
	// Submits and stops before a third that would take it past MaxBatch.
	const queued, queuedEvents = 10, 20
	var wg sync.WaitGroup
	errs := make(chan error, queued)
	for i := range queued {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := []EventInput{webhook("sandbox", "x", fmt.Sprint(i)), webhook("sandbox", "y", fmt.Sprint(i))}
			_, err := g.Submit(context.Background(), in)
			errs <- err
		}()
	}
	// The first Submit must not return while its commit callback is still running.
	select {
	case err := <-first:
		t.Fatalf("Submit returned (%v) before the commit finished", err)
	default:
	}
	waitFor(t, "queued submits to block", func() bool { return g.waiting.Load() == queued })
	release <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for total := 0; total < queuedEvents; {
		n := <-entered
		sizes = append(sizes, n)
		total += n
		release <- struct{}{}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Ideally 4+4+4+4+4. A Submit may still be between counting itself and blocking on the
	// queue when the writer looks, so allow one extra batch; one batch per Submit would be 10.
	if len(sizes) > 6 {
		t.Fatalf("10 queued submits took batches %v, want them grouped up to 5 events", sizes)
	}
	for _, n := range sizes {
		if n > 5 {
			t.Fatalf("batch of %d events exceeds MaxBatch 5: %v", n, sizes)
		}
	}
	if st := g.Stats(); st.Batches != uint64(len(sizes)+1) || st.Events != queuedEvents+1 {
		t.Fatalf("stats %+v, want %d batches and %d events", st, len(sizes)+1, queuedEvents+1)
	}
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCancelledWhileQueuedStoresNothing(t *testing.T) {
	d, _ := openTemp(t)
	onCommit, entered, release := blockingCommits()
	g := startIngester(t, d, IngestOptions{OnCommit: onCommit})
	busy := make(chan error, 1)
	go func() {
		_, err := g.Submit(context.Background(), []EventInput{webhook("sandbox", "x", "busy")})
		busy <- err
	}()
	<-entered // the writer is inside a commit and takes nothing new

	ctx, cancel := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() { _, err := g.Submit(ctx, []EventInput{webhook("sandbox", "x", "cancelled")}); queued <- err }()
	waitFor(t, "the submit to queue", func() bool { return g.waiting.Load() == 1 })
	cancel()
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled submit: %v, want context.Canceled", err)
	}
	release <- struct{}{}
	if err := <-busy; err != nil {
		t.Fatal(err)
	}
	if evs, err := d.LookupEvents(context.Background(), "cancelled", 0); err != nil || len(evs) != 0 {
		t.Fatalf("cancelled event stored: %v %v", evs, err)
	}
	// An already-cancelled context never queues.
	if _, err := g.Submit(ctx, []EventInput{webhook("sandbox", "x", "cancelled")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("submit with a done context: %v", err)
	}
}

// TestFailedBatchAcknowledgesNothing makes the transaction fail half way (a trigger refuses one
// event): the Submit gets the error, nothing of it is stored, and the next batch works.
func TestFailedBatchAcknowledgesNothing(t *testing.T) {
	d, _ := openTemp(t)
	var committed []Event
	g := startIngester(t, d, IngestOptions{OnCommit: func(evs []Event) { committed = append(committed, evs...) }})
	var err error
	if d.Postgres() {
		_, err = d.W.Exec(`CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'disk on fire'; END; $$;
			CREATE TRIGGER refuse_boom BEFORE INSERT ON events FOR EACH ROW WHEN (NEW.type = 'boom') EXECUTE FUNCTION refuse_boom()`)
	} else {
		_, err = d.W.Exec(`CREATE TEMP TRIGGER refuse_boom BEFORE INSERT ON events WHEN NEW.type = 'boom'
		BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`)
	}
	if err != nil {
		t.Fatal(err)
	}
	res, err := g.Submit(context.Background(), []EventInput{webhook("sandbox", "ok", "a"), webhook("sandbox", "boom", "b")})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") || res != nil {
		t.Fatalf("submit into a failing transaction: %v %v", res, err)
	}
	if id, _ := d.LatestEventID(context.Background()); id != 0 || len(committed) != 0 {
		t.Fatalf("a failed batch stored event %d / published %d", id, len(committed))
	}
	// SQLite reuses the ids of the rolled-back rows; a PostgreSQL sequence never gives one twice.
	if r := submitOne(t, g, webhook("sandbox", "ok", "c")); (r.ID != 1 && !d.Postgres()) || r.ID < 1 || len(committed) != 1 {
		t.Fatalf("after a failure: %+v, %d published", r, len(committed))
	}
	if st := g.Stats(); st.Failed != 1 || st.Batches != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCloseDrainsQueueAndRefusesNewSubmits(t *testing.T) {
	d, _ := openTemp(t)
	onCommit, entered, release := blockingCommits()
	g := NewIngester(d, IngestOptions{OnCommit: onCommit})
	g.Start()
	go func() { g.Submit(context.Background(), []EventInput{webhook("sandbox", "x", "first")}) }()
	<-entered
	const queued = 5
	errs := make(chan error, queued)
	for i := range queued {
		go func() {
			_, err := g.Submit(context.Background(), []EventInput{webhook("sandbox", "x", fmt.Sprint("q", i))})
			errs <- err
		}()
	}
	waitFor(t, "submits to queue", func() bool { return g.waiting.Load() == queued })
	closed := make(chan struct{})
	go func() { g.Close(); close(closed) }()
	waitFor(t, "Close to stop intake", func() bool {
		select {
		case <-g.quit:
			return true
		default:
			return false
		}
	})
	go func() { // let every later commit through
		for range entered {
			release <- struct{}{}
		}
	}()
	release <- struct{}{}
	<-closed
	close(entered)
	stored := 0
	for range queued {
		err := <-errs
		switch {
		case err == nil:
			stored++
		case !errors.Is(err, ErrIngesterClosed):
			t.Fatalf("queued submit during close: %v", err)
		}
	}
	// Whatever was acknowledged is stored, whatever was refused is not.
	evs, _, err := d.ListEvents(context.Background(), EventFilter{})
	if err != nil || len(evs) != stored+1 {
		t.Fatalf("%d events stored (%v), %d acknowledged", len(evs), err, stored+1)
	}
	if _, err := g.Submit(context.Background(), []EventInput{webhook("sandbox", "x", "late")}); !errors.Is(err, ErrIngesterClosed) {
		t.Fatalf("submit after close: %v", err)
	}
	select {
	case <-g.done:
	default:
		t.Fatal("writer goroutine still running after Close")
	}
	g.Close() // twice is fine
}

func TestReceivedAtNeverGoesBack(t *testing.T) {
	d, _ := openTemp(t)
	clock := newTestClock(d, t0)
	g := startIngester(t, d, IngestOptions{})
	ctx := context.Background()
	first := submitOne(t, g, webhook("sandbox", "x", "a"))
	clock.set(t0.Add(-time.Hour)) // the wall clock steps back
	second := submitOne(t, g, webhook("sandbox", "x", "b"))
	clock.set(t0.Add(time.Minute))
	third := submitOne(t, g, webhook("sandbox", "x", "c"))
	want := []time.Time{t0, t0, t0.Add(time.Minute)}
	for i, id := range []int64{first.ID, second.ID, third.ID} {
		e, err := d.EventByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !e.ReceivedAt.Equal(want[i]) {
			t.Errorf("event %d received_at %v, want %v", id, e.ReceivedAt, want[i])
		}
	}
}
