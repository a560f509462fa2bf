package web

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/events"
	"github.com/tensfer-golive/dashboard/internal/feed"
	"github.com/tensfer-golive/dashboard/web/templates"
)

const (
	streamHeartbeat   = 15 * time.Second
	streamMaxBackfill = 5000 // rows replayed from the database on reconnect before asking for a reload
)

// writeSSE writes one server-sent event; data may span lines.
func writeSSE(w *bytes.Buffer, id int64, event string, data []byte) {
	if id > 0 {
		w.WriteString("id: " + strconv.FormatInt(id, 10) + "\n")
	}
	w.WriteString("event: " + event + "\n")
	for _, line := range bytes.Split(data, []byte("\n")) {
		w.WriteString("data: ")
		w.Write(line)
		w.WriteByte('\n')
	}
	w.WriteByte('\n')
}

// streamEvents is GET /events/stream: the live feed as server-sent events, with the page's
// filters. A reconnecting browser sends Last-Event-ID; events it missed come from the hub's ring
// or, if older, from the database, so nothing is skipped and nothing is sent twice.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) error {
	parsed, err := events.ParseFilter(r.URL.Query())
	if err != nil {
		return err
	}
	f := parsed.EventFilter
	if !f.Until.IsZero() && !f.Until.After(s.now()) {
		// Nothing new can match a window that has ended; 204 tells EventSource not to reconnect.
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	last := int64(-1)
	for _, v := range []string{r.Header.Get("Last-Event-ID"), r.URL.Query().Get("last_id")} {
		if v == "" {
			continue
		}
		if last, err = strconv.ParseInt(v, 10, 64); err != nil || last < 0 {
			return errBadRequest("Last-Event-ID must be an event id")
		}
		break
	}
	if last < 0 {
		last = s.events.Hub().Last()
	}
	since, until := f.Since.UnixMilli(), f.Until.UnixMilli()
	match := func(row events.FeedRow) bool {
		return (f.Env == "" || row.Env == f.Env) && (f.Source == "" || row.Source == f.Source) &&
			(f.Type == "" || row.Type == f.Type) && (f.IsError == nil || row.IsError == *f.IsError) &&
			(f.RequestID == "" || row.RequestID == f.RequestID) &&
			(f.Since.IsZero() || row.ReceivedAt >= since) && (f.Until.IsZero() || row.ReceivedAt < until)
	}
	sub, err := s.events.Hub().Subscribe(last, match)
	if errors.Is(err, feed.ErrTooManySubscribers) {
		return &httpError{status: http.StatusServiceUnavailable, code: "too_many_streams", msg: "too many live streams are open; close some tabs and reload"}
	}
	if err != nil {
		return err
	}
	defer sub.Close()

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	buf.WriteString("retry: 2000\n\n")
	flush := func() error {
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
		buf.Reset()
		return rc.Flush()
	}
	if err := flush(); err != nil {
		return nil
	}
	if through, ok := sub.NeedBackfill(); ok {
		reload, err := s.backfill(r.Context(), &buf, f, last, through)
		if err != nil {
			s.log.Warn("stream backfill", "request_id", requestIDFrom(r.Context()), "error", err)
			return nil
		}
		if reload {
			writeSSE(&buf, 0, "reload", []byte("too many events were missed; reload the page"))
			flush()
			return nil
		}
		if err := flush(); err != nil {
			return nil
		}
	}
	beat := time.NewTicker(streamHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case it, ok := <-sub.C:
			if !ok {
				return nil // dropped (fell behind) or shutting down: the browser reconnects from its last id
			}
			writeSSE(&buf, it.ID, "row", s.rowHTML(r.Context(), it))
			// Send whatever else is already waiting in the same write.
			for more := true; more && buf.Len() < 64<<10; {
				select {
				case it, ok := <-sub.C:
					if !ok {
						more = false
						break
					}
					writeSSE(&buf, it.ID, "row", s.rowHTML(r.Context(), it))
				default:
					more = false
				}
			}
			if err := flush(); err != nil {
				return nil
			}
		case <-beat.C:
			buf.WriteString(": ping\n\n")
			if err := flush(); err != nil {
				return nil
			}
		}
	}
}

// rowHTML is the row as rendered at publish time, or, if nobody was watching then, rendered now
// from the stored event.
func (s *Server) rowHTML(ctx context.Context, it feed.Item[events.FeedRow]) []byte {
	if it.Value.HTML != nil {
		return it.Value.HTML
	}
	e, err := s.db.EventByID(ctx, it.ID)
	if err != nil {
		s.log.Warn("stream: load event", "event_id", it.ID, "error", err)
		return nil
	}
	return s.renderFeedRow(e)
}

// backfill writes the stored events with last < id <= through that match f, oldest first. It
// reports reload when there are more than a browser should be sent.
func (s *Server) backfill(ctx context.Context, buf *bytes.Buffer, f db.EventFilter, last, through int64) (reload bool, err error) {
	sent := 0
	for cursor := last; cursor < through; {
		f.AfterID, f.BeforeID, f.Limit, f.Ascending = cursor, through+1, 500, true
		evs, _, err := s.db.ListEvents(ctx, f)
		if err != nil {
			return false, err
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			writeSSE(buf, e.ID, "row", s.renderFeedRow(e))
			cursor = e.ID
		}
		if sent += len(evs); sent > streamMaxBackfill {
			return true, nil
		}
	}
	return false, nil
}

// renderFeedRow renders one event as its feed row, the same component the events page shows; a
// failure is logged and yields an empty row.
func (s *Server) renderFeedRow(e db.Event) []byte {
	var buf bytes.Buffer
	if err := templates.EventRowView(eventRow(e)).Render(context.Background(), &buf); err != nil {
		s.log.Error("render feed row", "event_id", e.ID, "error", err)
	}
	return buf.Bytes()
}
