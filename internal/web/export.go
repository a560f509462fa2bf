package web

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/events"
)

// exportEvents is GET /events/export?format=csv|ndjson with the feed's filters: every matching
// event, newest first, streamed page by page (keyset), so a large export never sits in memory:
// a page ends at 500 events or exportPageBytes of payloads, whichever comes first.
func (s *Server) exportEvents(w http.ResponseWriter, r *http.Request) error {
	parsed, err := events.ParseFilter(r.URL.Query())
	if err != nil {
		return err
	}
	f := parsed.EventFilter
	format := r.URL.Query().Get("format")
	if format != "csv" && format != "ndjson" {
		return errBadRequest("format must be csv or ndjson")
	}
	release, err := s.takeAnswerSlot(w, "export")
	if err != nil {
		return err
	}
	defer release()
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Minute))
	name := "events-" + s.now().UTC().Format("20060102-150405") + "." + format
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "no-store")
	var cw *csv.Writer
	var enc *json.Encoder
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		cw = csv.NewWriter(w)
		cw.Write([]string{"id", "received_at", "env", "source", "type", "request_id", "user_id", "external_id", "status", "is_error",
			"method", "path", "duration_ms", "error_code", "error_message", "payload"})
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc = json.NewEncoder(w)
		enc.SetEscapeHTML(false)
	}
	f.Limit, f.MaxBytes = 500, exportPageBytes
	n := 0
	for {
		evs, next, err := s.db.ListEvents(r.Context(), f)
		if err != nil {
			// Headers are sent; the truncated file is the signal, and the log has the cause.
			s.log.Error("export events", "request_id", requestIDFrom(r.Context()), "error", err)
			return nil
		}
		for _, e := range evs {
			if cw != nil {
				cw.Write(csvSafe([]string{itoa(e.ID), rfc3339(e.ReceivedAt), e.Env, e.Source, e.Type, e.RequestID, e.UserID, e.ExternalID,
					statusText(e), strconv.FormatBool(e.IsError), e.Method, e.Path, durationText(e), e.ErrorCode, e.ErrorMessage, string(e.Payload)}))
			} else if err := enc.Encode(toEventJSON(e)); err != nil {
				return nil
			}
		}
		n += len(evs)
		if cw != nil {
			cw.Flush()
		}
		rc.Flush()
		if next == 0 {
			break
		}
		f.BeforeID = next
	}
	_ = s.events.AuditExport(r.Context(), s.auditFor(r, "events.export"), format, n, r.URL.RawQuery)
	return nil
}

// exportPageBytes bounds the payloads one page of an export holds in memory.
const exportPageBytes = 2 << 20

func statusText(e db.Event) string {
	if e.Source != db.SourceAPI || e.Status == 0 {
		return ""
	}
	return strconv.Itoa(e.Status)
}

func durationText(e db.Event) string {
	if e.Source != db.SourceAPI {
		return ""
	}
	return strconv.FormatInt(e.DurationMS, 10)
}

// csvSafe defuses cells a spreadsheet would run as a formula (they come from outside: callbacks
// need no signature) by prefixing them with a quote, as OWASP recommends.
func csvSafe(cells []string) []string {
	for i, c := range cells {
		if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
			cells[i] = "'" + c
		}
	}
	return cells
}
