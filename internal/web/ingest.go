package web

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/feed"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// feedRow is what the live feed carries: the fields its filters look at, and the row rendered
// once when someone is watching, so the HTML is made once per event however many browsers
// watch, and not at all when nobody does (the ring of recent items then holds no payloads).
type feedRow struct {
	Env        string
	Source     string
	Type       string
	RequestID  string
	ReceivedAt int64 // Unix ms
	IsError    bool
	HTML       []byte // nil when nobody was subscribed at publish time; rendered from the database then
}

// startIngest wires the group-commit ingester to the live feed: after each commit the new rows
// go to a publisher goroutine that renders them and publishes them to the hub.
func (s *Server) startIngest(ctx context.Context) error {
	last, err := s.db.LatestEventID(ctx)
	if err != nil {
		return err
	}
	s.hub = feed.New[feedRow](feed.Options{StartAfter: last, MaxSubscribers: 500, Buffer: s.cfg.FeedBuffer, SubscriberBuffer: s.cfg.FeedSubscriberBuffer})
	s.committed = make(chan []db.Event, 1024)
	s.ingester = db.NewIngester(s.db, db.IngestOptions{OnCommit: func(evs []db.Event) { s.committed <- evs }})
	s.publisherDone = make(chan struct{})
	go s.publish()
	s.ingester.Start()
	return nil
}

// publish renders committed events and hands them to the hub, in commit order.
func (s *Server) publish() {
	defer close(s.publisherDone)
	for evs := range s.committed {
		watched := s.hub.Subscribers() > 0
		items := make([]feed.Item[feedRow], 0, len(evs))
		for _, e := range evs {
			row := feedRow{Env: e.Env, Source: e.Source, Type: e.Type, RequestID: e.RequestID, ReceivedAt: e.ReceivedAt.UnixMilli(), IsError: e.IsError}
			if watched {
				row.HTML = s.renderRow(eventRow(e))
			}
			items = append(items, feed.Item[feedRow]{ID: e.ID, Value: row})
		}
		s.hub.Publish(items...)
	}
}

// renderRow renders one feed row; a failure is logged and yields an empty row.
func (s *Server) renderRow(r templates.EventRow) []byte {
	var buf bytes.Buffer
	if err := templates.EventRowView(r).Render(context.Background(), &buf); err != nil {
		s.log.Error("render feed row", "event_id", r.ID, "error", err)
	}
	return buf.Bytes()
}

// EndStreams closes every live stream so a graceful shutdown does not wait on them; browsers
// reconnect to the next instance with their Last-Event-ID. Register it with
// http.Server.RegisterOnShutdown.
func (s *Server) EndStreams() { s.hub.Close() }

// Close stops ingest after every acknowledged event is stored and published, and ends live
// streams. Call it after the HTTP server has shut down.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.ingester == nil {
			return
		}
		err = s.ingester.Close()
		close(s.committed)
		<-s.publisherDone
		s.hub.Close()
	})
	return err
}

// secretCache keeps each environment's active webhook keys in memory so verifying a delivery
// reads no database row; any change to secrets drops it, and it expires after a few seconds so
// an expiry time passing is noticed.
type secretCache struct {
	mu      sync.Mutex
	gen     uint64 // bumped by invalidate; a load started before it is not cached
	entries map[string]cachedSecrets
}

type cachedSecrets struct {
	ids    []string
	keys   [][]byte
	loaded time.Time
}

const secretCacheTTL = 5 * time.Second

func (c *secretCache) invalidate() {
	c.mu.Lock()
	c.entries = nil
	c.gen++
	c.mu.Unlock()
}
