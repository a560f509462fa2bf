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
