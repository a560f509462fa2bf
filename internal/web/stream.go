package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/events"
	"github.com/tensfer-golive/dashboard/internal/feed"
	"github.com/tensfer-golive/dashboard/web/templates"
)

const (
	streamHeartbeat   = 15 * time.Second
	streamMaxBackfill = 5000 // rows replayed from the database on reconnect before asking for a reload
	streamsPerUser    = 20   // live streams one user may hold open (the hub caps all users together)
)

// writeSSE writes one server-sent event; data may span lines. EventSource ends a line at CR, LF
// or CR LF, so data is split at each of them: no byte of data can end its "data:" line early and
// start a field of its own (an "event:" or an "id:" smuggled in a callback's text).
func writeSSE(w *bytes.Buffer, id int64, event string, data []byte) {
	if id > 0 {
		w.WriteString("id: " + strconv.FormatInt(id, 10) + "\n")
	}
	w.WriteString("event: " + event + "\n")
	for {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			break
		}
		w.WriteString("data: ")
		w.Write(data[:i])
		w.WriteByte('\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	w.WriteString("data: ")
	w.Write(data)
	w.WriteString("\n\n")
}

// streamSlots counts each user's open live streams, so one account cannot take every slot.
type streamSlots struct {
	mu   sync.Mutex
	open map[int64]int
}

func (c *streamSlots) take(user int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[user] >= streamsPerUser {
		return false
	}
	if c.open == nil {
		c.open = map[int64]int{}
	}
	c.open[user]++
	return true
}

func (c *streamSlots) give(user int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[user]--; c.open[user] <= 0 {
		delete(c.open, user)
	}
}

// stillSignedIn reports whether the stream's session is still live and its user still enabled;
// logout, sign-out-everywhere, a password or role change and disabling a user all end sessions.
func (s *Server) stillSignedIn(ctx context.Context, u currentUser) bool {
	row, err := s.db.SessionByID(ctx, u.sessionID)
	if err != nil || s.now().Sub(row.CreatedAt) > s.cfg.SessionMax {
		return false
	}
	cur, err := s.db.UserByID(ctx, u.ID)
	return err == nil && !cur.Disabled() && cur.Role == u.Role
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
	if newest := s.events.Hub().Last(); last < 0 || last > newest {
		// No id, or one from the future (another database, a forged header): resume from the
		// newest event rather than wait, silently, for an id that may never come.
		last = newest
	}
	u, _ := userFrom(r.Context())
	if !s.streamSlots.take(u.ID) {
		return &httpError{status: http.StatusServiceUnavailable, code: "too_many_streams",
			msg: fmt.Sprintf("you have %d live streams open; close some tabs and reload", streamsPerUser)}
	}
	defer s.streamSlots.give(u.ID)
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
	recheck := time.NewTicker(s.cfg.StreamRecheck)
	defer recheck.Stop()
	ended := func() bool {
		if s.stillSignedIn(r.Context(), u) {
			return false
		}
		// 204 on the reconnect would stop the browser; the page's next load asks to log in.
		writeSSE(&buf, 0, "reload", []byte("your session has ended"))
		flush()
		return true
	}
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-recheck.C:
			if ended() {
				return nil
			}
		case <-s.recheck.wait(): // access changed on some instance: check now, not at the next tick
			if ended() {
				return nil
			}
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
	return s.renderRow(e)
}

// backfill writes the stored events with last < id <= through that match f, oldest first. It
// reports reload when there are more than a browser should be sent.
func (s *Server) backfill(ctx context.Context, buf *bytes.Buffer, f db.EventFilter, last, through int64) (reload bool, err error) {
	sent := 0
	for cursor := last; cursor < through; {
		f.AfterID, f.BeforeID, f.Limit, f.Ascending = cursor, through+1, 500, true
		f.PreviewBytes = events.LookupPreviewBytes // rows are summaries
		evs, _, err := s.db.ListEvents(ctx, f)
		if err != nil {
			return false, err
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			writeSSE(buf, e.ID, "row", s.renderRow(e))
			cursor = e.ID
		}
		if sent += len(evs); sent > streamMaxBackfill {
			return true, nil
		}
	}
	return false, nil
}

// feedRowRenderer renders one event as its feed row, the same component the events page shows;
// a failure is logged and yields an empty row. The event pipeline calls it (app.Config.Render).
func feedRowRenderer(log *slog.Logger) func(db.Event) []byte {
	return func(e db.Event) []byte {
		var buf bytes.Buffer
		if err := templates.EventRowView(eventRow(e)).Render(context.Background(), &buf); err != nil {
			log.Error("render feed row", "event_id", e.ID, "error", err)
		}
		return buf.Bytes()
	}
}
