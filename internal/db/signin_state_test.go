package db

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/ratelimit"
)

func openStore(t *testing.T) *DB {
	t.Helper()
	open, _ := newStore(t)
	d, err := open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestRateTokensAreTheLimitersBucket: the shared bucket answers like ratelimit.Limiter, the
// in-process one it replaces, step for step, waits included (to the millisecond it stores).
func TestRateTokensAreTheLimitersBucket(t *testing.T) {
	d := openStore(t)
	ctx := context.Background()
	rate := ratelimit.Rate{Burst: 3, Every: time.Minute}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	lim := ratelimit.New(rate, func() time.Time { return now })
	for i, advance := range []time.Duration{0, 0, 0, 0, 10 * time.Second, 50 * time.Second, 0, 0, 90 * time.Second, 0, 0, 0, time.Hour, 0, 0, 0, 0} {
		now = now.Add(advance)
		wantOK, wantWait := lim.Allow("k")
		ok, wait, err := d.TakeRateToken(ctx, "k", rate.Burst, rate.Every, now)
		if err != nil {
			t.Fatal(err)
		}
		if ok != wantOK || wait.Round(time.Millisecond) != wantWait.Round(time.Millisecond) {
			t.Fatalf("step %d: %v %s, the limiter says %v %s", i, ok, wait, wantOK, wantWait)
		}
	}
	// Another key has its own bucket.
	if ok, _, err := d.TakeRateToken(ctx, "other", rate.Burst, rate.Every, now); err != nil || !ok {
		t.Fatalf("another key: %v %v", ok, err)
	}
}

// TestLoginCountersAreBoundedAndPurged: new counters past maxRows evict the least worth keeping
// (never the ones being written, never a locked account before a single failure), a counter
// that is forgettable is not stored, and the purge deletes what has ended.
func TestLoginCountersAreBoundedAndPurged(t *testing.T) {
	d := openStore(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	set := func(key string, failures int, forget time.Duration) {
		t.Helper()
		err := d.UpdateLoginCounters(ctx, [][]byte{[]byte(key)}, now, 3, func(cs []LoginCounter) {
			cs[0].Failures, cs[0].LastFailure, cs[0].ForgetAt = failures, now, now.Add(forget)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	stored := func() map[string]int {
		t.Helper()
		rows, err := d.R.QueryContext(ctx, "SELECT key, failures FROM login_counters")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int{}
		for rows.Next() {
			var k []byte
			var n int
			if err := rows.Scan(&k, &n); err != nil {
				t.Fatal(err)
			}
			out[string(k)] = n
		}
		return out
	}
	set("locked", 9, time.Hour)
	set("two", 2, time.Hour)
	set("one", 1, time.Hour)
	set("new", 1, time.Hour) // past the bound: "one" (fewest failures, oldest) goes
	if got := fmt.Sprint(stored()); got != "map[locked:9 new:1 two:2]" {
		t.Fatalf("after the fourth counter: %s", got)
	}
	set("gone", 0, 0) // forgettable: not stored
	if n, err := d.CountLoginCounters(ctx); err != nil || n != 3 {
		t.Fatalf("%d counters (%v), want 3", n, err)
	}
	set("two", 2, -time.Minute) // a stored counter that became forgettable is deleted
	if got := fmt.Sprint(stored()); got != "map[locked:9 new:1]" {
		t.Fatalf("after forgetting one: %s", got)
	}
	if err := d.InsertPendingLogin(ctx, []byte("step"), mustUser(t, d), now.Add(time.Minute), 4); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.TakeRateToken(ctx, "bucket", 5, time.Minute, now); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour)
	n, err := d.PurgeSignInState(ctx, now, 100)
	if err != nil || n != 4 {
		t.Fatalf("purged %d rows (%v), want 2 counters, a step and a bucket", n, err)
	}
}

func mustUser(t *testing.T, d *DB) int64 {
	t.Helper()
	ctx := context.Background()
	if _, err := d.InsertUser(ctx, User{Email: "ana@example.com", Role: RoleViewer, PasswordHash: "x"}, Audit{Actor: "test", Action: "user.create"}); err != nil {
		t.Fatal(err)
	}
	u, err := d.UserByEmail(ctx, "ana@example.com") // NB: InsertUser's id is not yet right on PostgreSQL
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// TestPendingLoginCodesAreTakenOnce: each code is taken from the step before it is checked, so
// the budget holds against parallel guesses; a step out of codes or past its time is gone.
func TestPendingLoginCodesAreTakenOnce(t *testing.T) {
	d := openStore(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	uid := mustUser(t, d)
	if err := d.InsertPendingLogin(ctx, []byte("a"), uid, now.Add(time.Minute), 2); err != nil {
		t.Fatal(err)
	}
	results := make(chan int, 4)
	for range 4 {
		go func() {
			_, left, err := d.TakePendingLoginCode(ctx, []byte("a"), now)
			switch {
			case errors.Is(err, ErrNotFound):
				results <- -1
			case err != nil:
				t.Error(err)
				results <- -2
			default:
				results <- left
			}
		}()
	}
	got := map[int]int{}
	for range 4 {
		got[<-results]++
	}
	if fmt.Sprint(got) != "map[-1:2 0:1 1:1]" {
		t.Fatalf("four parallel takes of a two-code step: %v (left -> count, -1 refused)", got)
	}
	if live, err := d.PendingLoginLive(ctx, []byte("a"), now); err != nil || live {
		t.Fatalf("a step out of codes is live: %v %v", live, err)
	}
	if err := d.InsertPendingLogin(ctx, []byte("b"), uid, now.Add(time.Minute), 4); err != nil {
		t.Fatal(err)
	}
	if live, err := d.PendingLoginLive(ctx, []byte("b"), now); err != nil || !live {
		t.Fatalf("a fresh step: %v %v", live, err)
	}
	if _, _, err := d.TakePendingLoginCode(ctx, []byte("b"), now.Add(time.Minute)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an expired step: %v", err)
	}
	var n int
	if err := d.R.QueryRowContext(ctx, "SELECT COUNT(*) FROM pending_logins").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d steps left after both ended (%v)", n, err)
	}
}
