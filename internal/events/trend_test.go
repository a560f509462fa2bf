package events

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
)

// arrival is something that arrives at now+at: an API call with a status, or a refused delivery.
type arrival struct {
	at     time.Duration
	env    string
	status int  // API call's status (5xx is an error)
	refuse bool // a refused delivery instead
}

func TestTrendsBucketByHour(t *testing.T) {
	ok := func(at time.Duration) arrival { return arrival{at: at, env: "production", status: 200} }
	tests := []struct {
		name     string
		arrivals []arrival // in time order
		want     map[string]map[int]Hour
	}{
		{name: "no traffic: every hour is zero"},
		{name: "window edges: from now-24h inclusive to now, stamped at or after now in the last hour",
			arrivals: []arrival{
				ok(-24*time.Hour - time.Millisecond), // before the window
				ok(-24 * time.Hour),                  // first hour
				ok(-23*time.Hour - time.Millisecond), // still the first hour
				ok(-23 * time.Hour),                  // second hour
				ok(-time.Hour - time.Millisecond),    // hour 22
				ok(-time.Hour),                       // last hour
				ok(-time.Millisecond),
				ok(0),
				ok(time.Second), // the writer's clock a moment ahead
			},
			want: map[string]map[int]Hour{"production": {0: {Events: 2}, 1: {Events: 1}, 22: {Events: 1}, 23: {Events: 4}}}},
		{name: "hours between arrivals are zero",
			arrivals: []arrival{ok(-20*time.Hour - 30*time.Minute), ok(-3*time.Hour - time.Minute)},
			want:     map[string]map[int]Hour{"production": {3: {Events: 1}, 20: {Events: 1}}}},
		{name: "errors, refusals and environments apart",
			arrivals: []arrival{
				{at: -90 * time.Minute, env: "production", status: 503},
				{at: -80 * time.Minute, env: "sandbox", status: 200},
				{at: -30 * time.Minute, env: "production", status: 500},
				{at: -20 * time.Minute, env: "production", status: 404}, // a 4xx is not an error signal
				{at: -10 * time.Minute, env: "production", refuse: true},
				{at: -9 * time.Minute, env: "sandbox", refuse: true},
				{at: -8 * time.Minute, env: "staging", refuse: true}, // no such environment: not in any trend
			},
			want: map[string]map[int]Hour{
				"production": {22: {Events: 1, Errors: 1}, 23: {Events: 2, Errors: 1, Rejected: 1}},
				"sandbox":    {22: {Events: 1}, 23: {Rejected: 1}},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			var at atomic.Int64
			f.db.SetClock(func() time.Time { return time.UnixMilli(at.Load()) })
			for _, a := range tt.arrivals {
				at.Store(f.now.Add(a.at).UnixMilli())
				if a.refuse {
					if _, err := f.db.InsertRejected(ctx, db.RejectedDelivery{Env: a.env, Reason: db.RejectNoMatchingSignature}); err != nil {
						t.Fatal(err)
					}
					continue
				}
				status := a.status
				if _, err := f.svc.RecordAPICall(ctx, APICall{Env: a.env, Method: "GET", Path: "/v1/x", Status: &status}); err != nil {
					t.Fatal(err)
				}
			}
			trends, err := f.svc.Trends(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, env := range []string{"sandbox", "production"} {
				for i, got := range trends[env].Hours {
					if want := tt.want[env][i]; got != want {
						t.Errorf("%s hour %d: %+v, want %+v", env, i, got, want)
					}
				}
			}
			if _, found := trends["staging"]; found {
				t.Errorf("a trend for an unknown environment: %+v", trends["staging"])
			}
		})
	}
}

func TestHourRatesAndChange(t *testing.T) {
	rates := []struct {
		h    Hour
		want float64
		ok   bool
	}{
		{Hour{}, 0, false},
		{Hour{Events: 10}, 0, true},
		{Hour{Events: 8, Errors: 1, Rejected: 2}, 0.3, true},
		{Hour{Rejected: 4}, 1, true},
	}
	for _, tt := range rates {
		if got, ok := tt.h.ErrorRate(); got != tt.want || ok != tt.ok {
			t.Errorf("%+v: rate %v %v, want %v %v", tt.h, got, ok, tt.want, tt.ok)
		}
	}
	changes := []struct {
		cur, prev int64
		want      float64
		ok        bool
	}{{5, 0, 0, false}, {0, 0, 0, false}, {15, 10, 0.5, true}, {5, 10, -0.5, true}, {0, 4, -1, true}, {7, 7, 0, true}}
	for _, tt := range changes {
		if got, ok := Change(tt.cur, tt.prev); got != tt.want || ok != tt.ok {
			t.Errorf("Change(%d, %d) = %v %v, want %v %v", tt.cur, tt.prev, got, ok, tt.want, tt.ok)
		}
	}
}

// TestTrendsAreReusedForTTL: within TrendTTL the Overview's counts are the last answer, so views
// share one count; once it has passed, new arrivals are counted.
func TestTrendsAreReusedForTTL(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var at atomic.Int64
	at.Store(f.now.Add(-time.Minute).UnixMilli())
	f.db.SetClock(func() time.Time { return time.UnixMilli(at.Load()) })
	record := func() {
		t.Helper()
		status := 200
		if _, err := f.svc.RecordAPICall(ctx, APICall{Env: "production", Method: "GET", Path: "/v1/x", Status: &status}); err != nil {
			t.Fatal(err)
		}
	}
	last := func() int64 {
		t.Helper()
		trends, err := f.svc.Trends(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return trends["production"].Last().Events
	}
	record()
	if got := last(); got != 1 {
		t.Fatalf("first count: %d events, want 1", got)
	}
	record()
	f.now = f.now.Add(TrendTTL - time.Millisecond)
	if got := last(); got != 1 {
		t.Fatalf("within the TTL: %d events, want the last answer (1)", got)
	}
	f.now = f.now.Add(time.Millisecond)
	if got := last(); got != 2 {
		t.Fatalf("after the TTL: %d events, want 2", got)
	}
}
