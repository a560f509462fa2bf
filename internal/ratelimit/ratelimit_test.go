package ratelimit

import (
	"testing"
	"time"
)

func TestLimiterBurstThenRefill(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := New(Rate{Burst: 2, Every: time.Second}, func() time.Time { return now })
	for i, want := range []bool{true, true, false} {
		if ok, _ := l.Allow("a"); ok != want {
			t.Fatalf("attempt %d: allow = %v, want %v", i, ok, want)
		}
	}
	if ok, wait := l.Allow("a"); ok || wait != time.Second {
		t.Fatalf("empty bucket: ok=%v wait=%v, want false and 1s", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another key has its own bucket")
	}
	now = now.Add(time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("a token refills after Every")
	}
}

func TestThrottleOncePerInterval(t *testing.T) {
	th := NewThrottle[int64](time.Minute)
	t0 := time.Unix(1_700_000_000, 0)
	cases := []struct {
		key  int64
		at   time.Duration
		want bool
	}{
		{1, 0, true}, {1, 30 * time.Second, false}, {2, 30 * time.Second, true},
		{1, time.Minute, false}, {1, time.Minute + time.Nanosecond, true}, {2, time.Minute, false},
	}
	for i, c := range cases {
		if got := th.Due(c.key, t0.Add(c.at)); got != c.want {
			t.Errorf("case %d: Due(%d, +%v) = %v, want %v", i, c.key, c.at, got, c.want)
		}
	}
}

func TestQuotasHoldPerKeyAndTogether(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	perKey := Limits{Rows: Budget{PerSecond: 10, Burst: 10}, Bytes: Budget{PerSecond: 1000, Burst: 2000}}
	global := Limits{Rows: Budget{PerSecond: 100, Burst: 100}, Bytes: Budget{PerSecond: 1500, Burst: 3000}}
	q := NewQuotas(perKey, global, func() time.Time { return now })
	cases := []struct {
		name    string
		advance time.Duration
		key     string
		size    int
		ok      bool
		wait    time.Duration
	}{
		{"within the key's burst", 0, "a", 1500, true, 0},
		{"the key's bytes are short", 0, "a", 600, false, 100 * time.Millisecond},
		{"nothing was taken by the refusal", 0, "a", 500, true, 0},
		{"another key draws on the global budget", 0, "b", 1000, true, 0},
		{"the global bytes are short though b has room", 0, "b", 100, false, 66_666_667 * time.Nanosecond}, // 100 bytes at 1500/s, rounded up
		{"the global budget refills", time.Second, "b", 1500, true, 0},
		{"larger than any burst: told to wait for a full refill", 0, "c", 5000, false, 2 * time.Second},
	}
	for _, c := range cases {
		now = now.Add(c.advance)
		ok, wait := q.Take(c.key, c.size)
		if ok != c.ok || wait != c.wait {
			t.Errorf("%s: Take(%q, %d) = %v, %v; want %v, %v", c.name, c.key, c.size, ok, wait, c.ok, c.wait)
		}
	}
}

func TestQuotasRowBudget(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	q := NewQuotas(Limits{Rows: Budget{PerSecond: 2, Burst: 3}, Bytes: Budget{PerSecond: 1e9, Burst: 1e9}},
		Limits{Rows: Budget{PerSecond: 100, Burst: 100}, Bytes: Budget{PerSecond: 1e9, Burst: 1e9}}, func() time.Time { return now })
	for i, want := range []bool{true, true, true, false} {
		if ok, _ := q.Take("k", 1); ok != want {
			t.Fatalf("row %d: ok = %v, want %v", i, ok, want)
		}
	}
	if _, wait := q.Take("k", 1); wait != 500*time.Millisecond {
		t.Fatalf("wait for a row = %v, want 500ms", wait)
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := q.Take("k", 1); !ok {
		t.Fatal("a row refills at the budget's rate")
	}
}

// BenchmarkQuotasTake is the cost of the public-ingest quota check, against the per-client
// limiter every callback already passes (BENCHMARKS.md).
func BenchmarkQuotasTake(b *testing.B) {
	big := Budget{PerSecond: 1e12, Burst: 1e12}
	q := NewQuotas(Limits{Rows: big, Bytes: big}, Limits{Rows: big, Bytes: big}, time.Now)
	l := New(Rate{Burst: 1 << 30, Every: time.Nanosecond}, time.Now)
	b.Run("bare_limiter", func(b *testing.B) {
		for b.Loop() {
			l.Allow("192.0.2.1")
		}
	})
	b.Run("quotas", func(b *testing.B) {
		for b.Loop() {
			q.Take("production/callback", 700)
		}
	})
}
