package db

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestFullDatabaseIsAStorageFailure: a write the database cannot make room for fails with an
// error IsStorageFailure recognises, stores nothing, and writing works again once there is room.
func TestFullDatabaseIsAStorageFailure(t *testing.T) {
	sqliteOnly(t, "SQLite's max_page_count")
	ctx := context.Background()
	d, _ := openTemp(t)
	g := NewIngester(d, IngestOptions{})
	g.Start()
	t.Cleanup(func() { g.Close() })
	if err := d.LimitPages(ctx, 0); err != nil {
		t.Fatal(err)
	}
	big := []byte(`{"pad":"` + strings.Repeat("x", 64<<10) + `"}`)
	in := EventInput{Source: SourceWebhook, Env: "production", Type: "t", Payload: big, DedupeKey: "webhook:production:full"}
	_, err := g.Submit(ctx, []EventInput{in})
	if err == nil || !IsStorageFailure(err) {
		t.Fatalf("a write past the page limit: %v (storage failure: %v)", err, IsStorageFailure(err))
	}
	var n int
	d.R.QueryRow("SELECT count(*) FROM events").Scan(&n)
	if n != 0 {
		t.Fatalf("%d events stored by a failed write", n)
	}
	if err := d.LimitPages(ctx, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Submit(ctx, []EventInput{in}); err != nil {
		t.Fatalf("after the limit is lifted: %v", err)
	}
	for _, err := range []error{nil, errors.New("db: not found"), context.Canceled, fmt.Errorf("wrapped: %w", ErrNotFound)} {
		if IsStorageFailure(err) {
			t.Errorf("IsStorageFailure(%v) = true", err)
		}
	}
}
