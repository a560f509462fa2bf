package feed_test

import (
	"fmt"

	"github.com/tensfer-golive/dashboard/internal/feed"
)

// A stream handler resuming from Last-Event-ID: backfill from the store what the hub no longer
// holds, then read the subscription. The ids seen are contiguous, with no duplicate.
func ExampleHub_Subscribe() {
	store := []string{"", "a", "b", "c", "d", "e", "f"} // store[id], committed before publish
	hub := feed.New[string](feed.Options{Buffer: 3})
	for id := int64(1); id <= 5; id++ {
		hub.Publish(feed.Item[string]{ID: id, Value: store[id]})
	}

	lastEventID := int64(1)
	sub, err := hub.Subscribe(lastEventID, nil)
	if err != nil {
		panic(err)
	}
	defer sub.Close()
	if through, ok := sub.NeedBackfill(); ok {
		for id := lastEventID + 1; id <= through; id++ { // e.g. db.ListEvents with AfterID
			fmt.Println("store", id, store[id])
		}
	}
	hub.Publish(feed.Item[string]{ID: 6, Value: store[6]}) // committed meanwhile
	for range 4 {
		it := <-sub.C
		fmt.Println("hub  ", it.ID, it.Value)
	}
	// Output:
	// store 2 b
	// hub   3 c
	// hub   4 d
	// hub   5 e
	// hub   6 f
}
