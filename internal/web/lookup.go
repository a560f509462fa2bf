package web

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/events"
	"github.com/tensfer-golive/dashboard/internal/rollout"
	"github.com/tensfer-golive/dashboard/internal/validation"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// maxAnswers is how many large answers (support bundles, API lookups, exports) are written at
// once, together; more get 503 and Retry-After. Each holds a few megabytes at most (one batch of
// events read and one event encoded), however large the events and however slowly the client
// reads, so open answers cost a bounded amount of memory whoever asks for them.
const maxAnswers = 4

// takeAnswerSlot takes one of the maxAnswers slots for a large answer (what it is, for the
// refusal), or answers 503 busy with Retry-After. The caller calls release when done.
func (s *Server) takeAnswerSlot(w http.ResponseWriter, what string) (release func(), err error) {
	select {
	case s.answerSlots <- struct{}{}:
		return func() { <-s.answerSlots }, nil
	default:
		w.Header().Set("Retry-After", "5")
		return nil, &httpError{status: http.StatusServiceUnavailable, code: "busy",
			msg: fmt.Sprintf("%d large answers (support bundles, lookups, exports) are being written right now; this %s was not started; try again in a few seconds", maxAnswers, what)}
	}
}

// defaultAnswerMaxBytes is the default cap on a streamed lookup answer (Config.LookupMaxBytes).
const defaultAnswerMaxBytes = 16 << 20

// showLookup finds everything about one request_id (or external event id, user id, or our event
// number) and shows it as timelines: one per request_id found, each oldest step first. The
// steps show summaries, read from the first bytes of each payload.
func (s *Server) showLookup(w http.ResponseWriter, r *http.Request) error {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	evs, truncated, err := s.events.Lookup(r.Context(), q)
	if err != nil {
		return err
	}
	vm := templates.LookupVM{Layout: s.page(w, r, "lookup", "Lookup"), Query: q, Events: len(evs), Truncated: truncated, Limit: events.LookupLimit}
	// Taken as a user id (an id some event carries as its user, or one nothing carries yet), the
	// query also shows where the rollout sends that user.
	asUser := q != "" && len(evs) == 0
	for _, e := range evs {
		asUser = asUser || e.UserID == q
	}
	if asUser {
		vm.Decision = checkVM(s.rollout.Check(rollout.User{ID: q}))
	}
	vm.Layout.Query = q
	vm.Layout.FocusSearch = q == ""
	for _, t := range events.Timelines(evs) {
		vm.Timelines = append(vm.Timelines, timelineVM(t))
	}
	return render(w, r, http.StatusOK, templates.LookupPage(vm))
}

// timelineVM maps one request_id's timeline to the view: each step with its offset from the
// first step and the gap since the one before.
func timelineVM(t events.Timeline) templates.TimelineVM {
	vm := templates.TimelineVM{RequestID: t.RequestID, First: t.First(), Last: t.Last(), Envs: t.Envs, Errors: t.Errors,
		APICalls: t.BySource[db.SourceAPI], Callbacks: t.BySource[db.SourceCallback], Webhooks: t.BySource[db.SourceWebhook]}
	prev := t.First()
	for _, e := range t.Steps {
		row := eventRow(e)
		if e.Source == db.SourceAPI { // the step shows the method, path and duration itself
			row.Summary = validation.Clip(strings.TrimSpace(e.ErrorCode+" "+e.ErrorMessage), 200)
		}
		vm.Steps = append(vm.Steps, templates.TimelineStep{Event: row, Method: e.Method, Path: e.Path,
			Duration: time.Duration(e.DurationMS) * time.Millisecond, Failed: events.Failed(e),
			Offset: e.ReceivedAt.Sub(t.First()), Gap: e.ReceivedAt.Sub(prev)})
		prev = e.ReceivedAt
	}
	return vm
}

// supportBundle is GET /lookup/bundle?q=: everything about one id as a JSON file to send to
// Tensfer support. It holds what was received and reported, never a key or signing secret. It is
// streamed, capped at LookupMaxBytes and events.LookupLimit events (a cut bundle ends with
// "truncated": true and what to do), and at most maxBundles are built at once.
func (s *Server) supportBundle(w http.ResponseWriter, r *http.Request) error {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if q == "" || len(q) > events.MaxLookupLen {
		return errBadRequest("give the request_id to bundle as ?q= (at most %d characters)", events.MaxLookupLen)
	}
	release, err := s.takeAnswerSlot(w, "support bundle")
	if err != nil {
		return err
	}
	defer release()
	if err := s.events.AuditSupportBundle(r.Context(), s.auditFor(r, "lookup.support_bundle"), q); err != nil {
		return err
	}
	w.Header().Set("Content-Disposition", `attachment; filename="tensfer-support-`+safeFileName(q)+`.json"`)
	head := jsonObjectHead("query", q, "generated_at", rfc3339(s.now()), "dashboard_version", s.cfg.Version,
		"note", "Webhooks, callbacks and API calls carrying this id, oldest first, as received. Contains no API keys or signing secrets.")
	return s.writeEventsAnswer(w, r, head, events.LookupLimit, "To get the rest, bundle a narrower id (a request_id rather than a user id), or export "+
		"the id's events from the Events page (GET /events/export?format=ndjson&request_id=…).",
		func(fn func(db.Event) error) error { return s.events.EachLookupEvent(r.Context(), q, fn) })
}

// apiLookup is GET /api/v1/lookup/{request_id}[?limit=N]: every webhook, callback and API call
// carrying that id, oldest first, at most limit of them (default and most events.LookupLimit),
// streamed, capped at LookupMaxBytes and bounded by the maxAnswers slots as the support bundle is.
func (s *Server) apiLookup(w http.ResponseWriter, r *http.Request) error {
	q := strings.TrimSpace(chiParam(r, "request_id"))
	if q == "" || len(q) > events.MaxLookupLen {
		return errBadRequest("request_id must be 1 to %d characters", events.MaxLookupLen)
	}
	limit := events.LookupLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > events.LookupLimit {
			return errBadRequest("limit must be a whole number from 1 to %d", events.LookupLimit)
		}
		limit = n
	}
	remedy := "To get them all, page through GET /api/v1/events?request_id=… (newest first, with next_cursor)."
	if limit < events.LookupLimit {
		remedy = fmt.Sprintf("Raise limit (at most %d), or page through GET /api/v1/events?request_id=… (newest first, with next_cursor).", events.LookupLimit)
	}
	release, err := s.takeAnswerSlot(w, "lookup")
	if err != nil {
		return err
	}
	defer release()
	return s.writeEventsAnswer(w, r, jsonObjectHead("request_id", q), limit, remedy,
		func(fn func(db.Event) error) error { return s.events.EachByRequestID(r.Context(), q, limit, fn) })
}

// jsonObjectHead opens a JSON object with string members given as name, value pairs.
func jsonObjectHead(pairs ...string) []byte {
	b := []byte{'{'}
	for i := 0; i+1 < len(pairs); i += 2 {
		k, _ := json.Marshal(pairs[i])
		v, _ := json.Marshal(pairs[i+1])
		b = append(append(append(append(b, k...), ':'), v...), ',')
	}
	return b
}

// errAnswerFull stops reading events once the answer is full.
var errAnswerFull = errors.New("answer is full")

// writeEventsAnswer writes a JSON object that begins with head (an open object, see jsonObjectHead),
// then "events": each event written as it is read, then "event_count" and "truncated". When
// the events stop early (more than limit, more than LookupMaxBytes, or a read that
// failed part-way) "truncated" is true and "truncated_reason" says what was left out and, with
// remedy, how to get it. The marker comes last so the answer is valid JSON however it ends.
func (s *Server) writeEventsAnswer(w http.ResponseWriter, r *http.Request, head []byte, limit int, remedy string, each func(fn func(db.Event) error) error) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	out := &eventsAnswer{maxBytes: s.cfg.LookupMaxBytes, limit: limit}
	out.w = bufio.NewWriterSize(&out.sent, 32<<10)
	out.sent.w = w
	out.enc = json.NewEncoder(&out.buf)
	out.enc.SetEscapeHTML(false)
	out.w.Write(head)
	out.w.WriteString(`"events":[`)
	err := each(out.add)
	if out.sent.err != nil {
		s.log.Info("stream events: the client went away", "request_id", requestIDFrom(r.Context()), "error", out.sent.err)
		return nil
	}
	switch {
	case err == nil, errors.Is(err, errAnswerFull):
	case out.sent.n == 0 && out.count == 0:
		// Nothing has been sent: answer the error instead.
		w.Header().Del("Content-Disposition")
		return err
	default:
		s.log.Error("stream events", "request_id", requestIDFrom(r.Context()), "error", err)
		out.cut = fmt.Sprintf("Reading the events failed part-way: this holds the first %d only. Try again, and quote request id %s if it happens again.",
			out.count, requestIDFrom(r.Context()))
	}
	out.w.WriteString("\n],\"event_count\":")
	fmt.Fprint(out.w, out.count)
	if out.cut == "" {
		out.w.WriteString(`,"truncated":false}` + "\n")
	} else {
		reason, _ := json.Marshal(out.cut + " " + remedy)
		out.w.WriteString(`,"truncated":true,"truncated_reason":`)
		out.w.Write(reason)
		out.w.WriteString("}\n")
	}
	if err := out.w.Flush(); err != nil {
		s.log.Info("stream events: the client went away", "request_id", requestIDFrom(r.Context()), "error", err)
	}
	return nil
}

// eventsAnswer is the "events" array of a streamed answer: it encodes one event at a time into
// buf and writes it out, until the array would pass maxBytes or hold more than limit events.
type eventsAnswer struct {
	w        *bufio.Writer
	sent     countingWriter // under w: what has actually been sent
	buf      bytes.Buffer
	enc      *json.Encoder
	maxBytes int64
	limit    int // most events written
	written  int64
	count    int
	last     db.Event
	cut      string // why the events stopped early; "" when they did not
}

func (a *eventsAnswer) add(e db.Event) error {
	if a.count == a.limit {
		a.cut = fmt.Sprintf("More than %d events carry this id: this holds the first %d (oldest first), up to event %d received %s.",
			a.limit, a.limit, a.last.ID, rfc3339(a.last.ReceivedAt))
		return errAnswerFull
	}
	a.buf.Reset()
	if err := a.enc.Encode(toEventJSON(e)); err != nil {
		return err
	}
	ev := bytes.TrimSuffix(a.buf.Bytes(), []byte{'\n'})
	if a.written+int64(len(ev))+2 > a.maxBytes {
		a.cut = fmt.Sprintf("The events stop at %s: this holds the first %d (oldest first); event %d (%s of JSON) and any after it were left out.",
			byteSize(a.maxBytes), a.count, e.ID, byteSize(int64(len(ev))))
		return errAnswerFull
	}
	if a.count > 0 {
		a.w.WriteByte(',')
	}
	a.w.WriteByte('\n')
	if _, err := a.w.Write(ev); err != nil {
		return err
	}
	a.written += int64(len(ev)) + 2
	a.count++
	a.last = e
	return nil
}

// countingWriter counts the bytes written through it and keeps the first error.
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if c.err == nil {
		c.err = err
	}
	return n, err
}

// byteSize says n bytes the way a person reads them: 16 MiB, 64 KiB, 900 bytes.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", (n+512)>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
