package events

import (
	"context"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/dbtest"
	"github.com/tensfer-golive/dashboard/internal/secrets"
)

// TestFeedTakesEventsCommittedElsewhere: two services on one database, as two instances, with no
// Bus message between them (it is late): an event the other committed comes onto this one's feed
// before this one's next commit. The hub takes ids only in increasing order, so publishing this
// one's commit first would skip the other's for good, on every stream and every resume.
func TestFeedTakesEventsCommittedElsewhere(t *testing.T) {
	ctx := context.Background()
	store := dbtest.New(t)
	key, _ := secrets.GenerateKey()
	box, _ := secrets.NewBox(key)
	start := func() *Service {
		d, err := store.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(ctx, Config{DB: d, Box: box})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
			d.Close()
		})
		return s
	}
	other, here := start(), start()
	sub, err := here.Hub().Subscribe(here.Hub().Last(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	status := 200
	var want []int64
	for _, s := range []*Service{other, here} {
		res, err := s.RecordAPICall(ctx, APICall{Env: "production", Method: "GET", Path: "/v1/payments", Status: &status})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, res.ID)
	}
	for _, id := range want {
		select {
		case it := <-sub.C:
			if it.ID != id {
				t.Fatalf("feed delivered event %d, want %d (committed in order %v)", it.ID, id, want)
			}
		case <-time.After(10 * time.Second): // a bound on a failure, not a pace
			t.Fatalf("event %d never reached the feed (committed in order %v)", id, want)
		}
	}
}
