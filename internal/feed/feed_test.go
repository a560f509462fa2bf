package feed

import (
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

type ev struct {
	env string
}

func items(from, to int64, env func(id int64) string) []Item[ev] {
	var out []Item[ev]
	for id := from; id <= to; id++ {
		out = append(out, Item[ev]{ID: id, Value: ev{env: env(id)}})
	}
	return out
}

// evenSandbox makes even ids sandbox and odd ids production.
func evenSandbox(id int64) string {
	if id%2 == 0 {
		return "sandbox"
	}
	return "production"
}

func ids(its []Item[ev]) []int64 {
	var out []int64
	for _, it := range its {
		out = append(out, it.ID)
	}
	return out
}

// drain reads what is buffered on C without waiting for more.
func drain(s *Subscription[ev]) []Item[ev] {
	var out []Item[ev]
	for {
		select {
		case it, ok := <-s.C:
			if !ok {
				return out
			}
			out = append(out, it)
		default:
			return out
		}
	}
}

// waitClosed reads C until it is closed, failing the test after a deadline.
func waitClosed(t *testing.T, s *Subscription[ev]) []Item[ev] {
	t.Helper()
	var out []Item[ev]
	deadline := time.After(5 * time.Second)
	for {
		select {
		case it, ok := <-s.C:
			if !ok {
				return out
			}
			out = append(out, it)
		case <-deadline:
			t.Fatal("subscription channel was not closed")
		}
	}
}

func TestSubscribeFiltersLiveItems(t *testing.T) {
	for _, tc := range []struct {
		name  string
		match func(ev) bool
		want  []int64
	}{
		{"everything", nil, []int64{1, 2, 3, 4, 5, 6}},
		{"production only", func(e ev) bool { return e.env == "production" }, []int64{1, 3, 5}},
		{"sandbox only", func(e ev) bool { return e.env == "sandbox" }, []int64{2, 4, 6}},
		{"nothing", func(ev) bool { return false }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := New[ev](Options{})
			s, err := h.Subscribe(0, tc.match)
			if err != nil {
				t.Fatal(err)
			}
			h.Publish(items(1, 6, evenSandbox)...)
			if got := ids(drain(s)); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestReconnectReplaysWithoutGapsOrDuplicates plays a client that saw events up to afterID and
// reconnects: what it backfills from the store plus what arrives on C must be exactly the
// matching events after afterID, in order, including events published after it reconnected.
func TestReconnectReplaysWithoutGapsOrDuplicates(t *testing.T) {
	prod := func(e ev) bool { return e.env == "production" }
	for _, tc := range []struct {
		name         string
		startAfter   int64 // newest id in the store when the hub started
		published    int64 // ids startAfter+1..published were published before the reconnect
		afterID      int64 // Last-Event-ID
		match        func(ev) bool
		wantBackfill int64 // 0: none needed
	}{
		{"caught up", 0, 10, 10, nil, 0},
		{"inside the ring", 0, 10, 4, nil, 0},
		{"inside the ring, filtered", 0, 10, 4, prod, 0},
		{"fresh client, all held", 0, 6, 0, nil, 0},
		{"fresh client, some evicted", 0, 10, 0, nil, 2},
		{"older than the ring", 0, 20, 3, nil, 12},
		{"older than the ring, filtered", 0, 20, 3, prod, 12},
		{"exactly at the ring's edge", 0, 20, 12, nil, 0},
		{"one before the ring's edge", 0, 20, 11, nil, 12},
		{"before the hub started", 100, 105, 90, nil, 100},
		{"ahead of everything published", 0, 10, 15, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := New[ev](Options{Buffer: 8, StartAfter: tc.startAfter})
			store := items(1, tc.published+3, evenSandbox) // the store has everything ever committed
			h.Publish(store[tc.startAfter:tc.published]...)

			s, err := h.Subscribe(tc.afterID, tc.match)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			through, need := s.NeedBackfill()
			if need != (tc.wantBackfill > 0) || through != tc.wantBackfill {
				t.Fatalf("NeedBackfill = %d, %v; want %d", through, need, tc.wantBackfill)
			}
			var got []int64
			if need {
				for _, it := range store {
					if it.ID > tc.afterID && it.ID <= through && (tc.match == nil || tc.match(it.Value)) {
						got = append(got, it.ID)
					}
				}
			}
			// Publishing after the subscription: some again (a retried publish), then new ones.
			h.Publish(store[tc.published-2:]...)
			got = append(got, ids(drain(s))...)

			var want []int64
			for _, it := range store {
				if it.ID > tc.afterID && (tc.match == nil || tc.match(it.Value)) {
					want = append(want, it.ID)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("client saw %v, want %v", got, want)
			}

			// A second client reconnecting now, after the retried publish, sees the same.
			again, err := h.Subscribe(tc.afterID, tc.match)
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			got = nil
			if through, ok := again.NeedBackfill(); ok {
				for _, it := range store {
					if it.ID > tc.afterID && it.ID <= through && (tc.match == nil || tc.match(it.Value)) {
						got = append(got, it.ID)
					}
				}
			}
			if got = append(got, ids(drain(again))...); !slices.Equal(got, want) {
				t.Fatalf("second client saw %v, want %v", got, want)
			}
		})
	}
}

func TestSlowSubscriberIsDroppedAndPublishNeverBlocks(t *testing.T) {
	h := New[ev](Options{Buffer: 16, SubscriberBuffer: 4})
	slow, err := h.Subscribe(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := h.Subscribe(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	var fastGot []int64
	took := make(chan struct{})
	go func() {
		for it := range fast.C {
			fastGot = append(fastGot, it.ID)
			took <- struct{}{}
		}
	}()
	published := make(chan struct{})
	go func() {
		defer close(published)
		for id := int64(1); id <= n; id++ {
			h.Publish(Item[ev]{ID: id})
			<-took // the fast reader keeps up; nobody waits for the slow one, which reads nothing
		}
	}()
	select {
	case <-published:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked on a subscriber that does not read")
	}

	got := waitClosed(t, slow)
	if !errors.Is(slow.Err(), ErrFellBehind) {
		t.Fatalf("slow subscriber Err = %v, want ErrFellBehind", slow.Err())
	}
	if want := []int64{1, 2, 3, 4}; !slices.Equal(ids(got), want) {
		t.Fatalf("slow subscriber kept %v, want its full buffer %v", ids(got), want)
	}
	if len(fastGot) != n || fastGot[n-1] != n {
		t.Fatalf("fast subscriber got %d items, want %d", len(fastGot), n)
	}
	if h.Subscribers() != 1 || h.Dropped() != 1 {
		t.Fatalf("subscribers=%d dropped=%d, want 1 and 1", h.Subscribers(), h.Dropped())
	}
	fast.Close()
	if h.Subscribers() != 0 {
		t.Fatalf("subscribers=%d after close", h.Subscribers())
	}
}

// TestConcurrentClientsSeeEverythingOnce runs a publisher against clients that subscribe,
// read, get dropped when they lag (small buffers) and reconnect with the last id they saw,
// backfilling from the store when the ring has moved on. Each must see every id exactly once.
func TestConcurrentClientsSeeEverythingOnce(t *testing.T) {
	const n = 3000
	h := New[ev](Options{Buffer: 64, SubscriberBuffer: 8})
	var storeMu sync.Mutex
	var store []Item[ev] // committed before published, like the database
	readStore := func(after, through int64) []int64 {
		storeMu.Lock()
		defer storeMu.Unlock()
		var out []int64
		for _, it := range store {
			if it.ID > after && it.ID <= through {
				out = append(out, it.ID)
			}
		}
		return out
	}

	const clients = 6
	results := make([][]int64, clients)
	reconnects := make([]int, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seen []int64
			var last int64
			for last < n {
				s, err := h.Subscribe(last, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if through, ok := s.NeedBackfill(); ok {
					seen = append(seen, readStore(last, through)...)
					last = through
				}
				for it := range s.C {
					seen = append(seen, it.ID)
					last = it.ID
					if last == n {
						s.Close()
						break
					}
					if c%2 == 1 && it.ID%97 == 0 {
						for range 1000 { // odd clients stall now and then, so they get dropped
							runtime.Gosched()
						}
					}
				}
				if last < n {
					if err := s.Err(); !errors.Is(err, ErrFellBehind) {
						t.Errorf("client %d: channel closed with %v", c, err)
						return
					}
					reconnects[c]++
				}
			}
			results[c] = seen
		}()
	}
	for id := int64(1); id <= n; id++ {
		storeMu.Lock()
		store = append(store, Item[ev]{ID: id})
		storeMu.Unlock()
		h.Publish(Item[ev]{ID: id})
	}
	// Everyone still connected must finish: nothing is published any more, so each drains its
	// buffer and, once it holds id n, leaves.
	wg.Wait()
	t.Logf("reconnects %v", reconnects)
	for c, seen := range results {
		if len(seen) != n {
			t.Errorf("client %d saw %d items (after %d connections), want %d", c, len(seen), reconnects[c], n)
			continue
		}
		for i, id := range seen {
			if id != int64(i+1) {
				t.Errorf("client %d: item %d has id %d (gap or duplicate)", c, i, id)
				break
			}
		}
	}
}

func TestCloseEndsSubscriptions(t *testing.T) {
	h := New[ev](Options{MaxSubscribers: 2})
	a, err := h.Subscribe(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Subscribe(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Subscribe(0, nil); !errors.Is(err, ErrTooManySubscribers) {
		t.Fatalf("third subscriber: %v, want ErrTooManySubscribers", err)
	}
	a.Close()
	a.Close()
	if got := waitClosed(t, a); len(got) != 0 || a.Err() != nil {
		t.Fatalf("closed subscription: items %v, err %v", got, a.Err())
	}
	h.Close()
	waitClosed(t, b)
	if !errors.Is(b.Err(), ErrClosed) {
		t.Fatalf("after hub close Err = %v, want ErrClosed", b.Err())
	}
	if _, err := h.Subscribe(0, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("subscribe on a closed hub: %v", err)
	}
	h.Publish(Item[ev]{ID: 1}) // must not panic on closed channels
	b.Close()
	if h.Subscribers() != 0 {
		t.Fatalf("subscribers=%d after close", h.Subscribers())
	}
}
