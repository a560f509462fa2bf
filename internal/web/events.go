package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/events"
	"github.com/tensfer-golive/dashboard/internal/validation"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// filterVM shows a parsed event filter back in the filter form.
func filterVM(f events.Filter) templates.EventFilters {
	v := f.Form
	return templates.EventFilters{Env: v.Env, Source: v.Source, Type: v.Type, Status: v.Status, Since: v.Since, Until: v.Until, Query: v.Query}
}

// eventSummary is the one-line gist of an event for the feed. The payload may be a preview (its
// first bytes only): the summary then comes from what precedes the cut.
func eventSummary(e db.Event) string {
	switch e.Source {
	case db.SourceAPI:
		s := e.Method + " " + e.Path
		if e.DurationMS > 0 {
			s += fmt.Sprintf(" · %d ms", e.DurationMS)
		}
		if e.ErrorCode != "" {
			s += " · " + e.ErrorCode
		}
		return s
	case db.SourceCallback:
		fields := payloadFields(e.Payload)
		text := func(k string) string {
			var v string
			_ = json.Unmarshal(fields[k], &v)
			return v
		}
		parts := []string{}
		if v := text("screen"); v != "" {
			parts = append(parts, "screen "+v)
		}
		if v := strings.TrimSpace(text("error.code") + " " + text("error.message")); v != "" {
			parts = append(parts, v)
		}
		if e.UserID != "" {
			parts = append(parts, "user "+e.UserID)
		}
		return strings.Join(parts, " · ")
	}
	fields := payloadFields(e.Payload)
	keys := make([]string, 0, len(fields))
	for k := range fields {
		if strings.HasPrefix(k, "data.") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		v := strings.Trim(string(fields[k]), `"`)
		if len(v) > 40 || strings.ContainsAny(v, "{[") {
			continue
		}
		parts = append(parts, strings.TrimPrefix(k, "data.")+"="+v)
		if len(parts) == 3 {
			break
		}
	}
	return strings.Join(parts, " ")
}

// payloadFields reads the members of the JSON object b as raw values, and those of its "data"
// and "error" objects as "data.<name>" and "error.<name>". It reads token by token and stops
// quietly at the first error, so a payload preview cut short still yields every member that
// came before the cut.
func payloadFields(b []byte) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var members func(prefix string) bool
	members = func(prefix string) bool {
		for dec.More() {
			t, err := dec.Token()
			if err != nil {
				return false
			}
			k, _ := t.(string)
			if prefix == "" && (k == "data" || k == "error") {
				t, err := dec.Token()
				if err != nil {
					return false
				}
				switch t {
				case json.Delim('{'):
					if !members(k + ".") {
						return false
					}
				case json.Delim('['): // skipped
					for dec.More() {
						var v json.RawMessage
						if dec.Decode(&v) != nil {
							return false
						}
					}
					if _, err := dec.Token(); err != nil {
						return false
					}
				default:
					out[k], _ = json.Marshal(t)
				}
				continue
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return false
			}
			out[prefix+k] = v
		}
		_, err := dec.Token() // the closing brace
		return err == nil
	}
	if t, err := dec.Token(); err == nil && t == json.Delim('{') {
		members("")
	}
	return out
}

// errNoEvent answers a request for an event that is not stored.
func errNoEvent(id int64) error {
	return errNotFound(fmt.Sprintf("there is no event %d (it may have been purged by retention)", id))
}

func eventRow(e db.Event) templates.EventRow {
	return templates.EventRow{ID: e.ID, Source: e.Source, Env: e.Env, Type: e.Type, RequestID: e.RequestID, UserID: e.UserID,
		ReceivedAt: e.ReceivedAt, Summary: validation.Clip(eventSummary(e), 200), Status: e.Status, IsError: e.IsError, Demo: e.Demo,
		Unverified: !verifiedEvent(e)}
}

func (s *Server) showEvents(w http.ResponseWriter, r *http.Request) error {
	f, err := events.ParseFilter(r.URL.Query())
	if err != nil {
		return err
	}
	vf := filterVM(f)
	// Read the feed's position before the page: an event committed in between is then both on
	// the page and on the stream (the browser drops the duplicate row), never on neither.
	published := s.events.Hub().Last()
	f.PreviewBytes = events.LookupPreviewBytes // rows are summaries
	evs, next, err := s.db.ListEvents(r.Context(), f.EventFilter)
	if err != nil {
		return err
	}
	u, _ := userFrom(r.Context())
	vm := templates.EventsVM{Layout: s.page(w, r, "events", "Events"), Filters: vf, CanAct: u.Role.AtLeast(db.RoleOperator),
		IsAdmin: u.Role.AtLeast(db.RoleAdmin), Filtered: vf.Query != ""}
	for _, e := range evs {
		vm.Rows = append(vm.Rows, eventRow(e))
	}
	if next > 0 {
		q := r.URL.Query()
		q.Set("cursor", strconv.FormatInt(next, 10))
		vm.NextURL = "/events?" + q.Encode()
	}
	// The live stream continues the first page only (an older page is history).
	vm.Live = f.BeforeID == 0 && (f.Until.IsZero() || f.Until.After(s.now()))
	if vm.Live {
		vm.NewestID = published
		vm.StreamURL = "/events/stream"
		if vf.Query != "" {
			vm.StreamURL += "?" + vf.Query
		}
	}
	return render(w, r, http.StatusOK, templates.EventsPage(vm))
}

func prettyJSON(raw []byte) string {
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return string(raw)
	}
	return out.String()
}

func sortedHeaders(h map[string]string) [][2]string {
	out := make([][2]string, 0, len(h))
	for k, v := range h {
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// curlFor rebuilds the delivery as a cURL command (to re-post it to this dashboard or elsewhere).
func (s *Server) curlFor(e db.Event) string {
	target := s.publicURL("/hooks/" + e.Env)
	if e.Source == db.SourceCallback {
		target = s.publicURL("/callbacks/" + e.Env)
	} else if e.Source == db.SourceAPI {
		target = s.publicURL("/api/v1/api-calls")
	}
	var b strings.Builder
	b.WriteString("curl -X POST " + shellQuote(target) + " \\\n  -H 'Content-Type: application/json'")
	for _, h := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		if v := e.Headers[h]; v != "" {
			b.WriteString(" \\\n  -H " + shellQuote(h+": "+v))
		}
	}
	if e.Source == db.SourceAPI {
		b.WriteString(" \\\n  -H 'Authorization: Bearer $TOKEN'")
	}
	b.WriteString(" \\\n  --data-binary " + shellQuote(string(e.Payload)))
	return b.String()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (s *Server) showEvent(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	e, err := s.db.EventByID(r.Context(), id)
	if errors.Is(err, db.ErrNotFound) {
		return errNoEvent(id)
	}
	if err != nil {
		return err
	}
	u, _ := userFrom(r.Context())
	vm := templates.EventDetailVM{Layout: s.page(w, r, "events", e.Type), Row: eventRow(e), OccurredAt: e.OccurredAt, ExternalID: e.ExternalID,
		Payload: prettyJSON(e.Payload), Headers: sortedHeaders(e.Headers), Method: e.Method, Path: e.Path, Duration: e.DurationMS,
		ErrorCode: e.ErrorCode, ErrorMessage: e.ErrorMessage, Curl: s.curlFor(e), CanAct: u.Role.AtLeast(db.RoleOperator)}
	if len(e.Verification) > 0 {
		var v struct {
			SecretID   string `json:"secret_id"`
			VerifiedAt string `json:"verified_at"`
		}
		var b struct {
			KeyID     string `json:"beacon_key"`
			ExpiresAt string `json:"token_expires_at"`
		}
		if json.Unmarshal(e.Verification, &v) == nil && v.SecretID != "" {
			vm.Verification = "signature matched secret " + v.SecretID + " at " + v.VerifiedAt
		} else if json.Unmarshal(e.Verification, &b) == nil && b.KeyID != "" {
			vm.Verification = "beacon token verified with beacon key " + b.KeyID + ", valid until " + b.ExpiresAt
		} else {
			vm.Verification = string(e.Verification)
		}
	}
	if err := s.replayExtras(r, e, &vm); err != nil {
		return err
	}
	return render(w, r, http.StatusOK, templates.EventDetailPage(vm))
}

// eventJSON is an event in the JSON API, the export and the support bundle.
type eventJSON struct {
	ID           string            `json:"id"`
	Source       string            `json:"source"`
	Env          string            `json:"env"`
	Type         string            `json:"type"`
	RequestID    string            `json:"request_id"`
	ReceivedAt   string            `json:"received_at"`
	Payload      json.RawMessage   `json:"payload"`
	UserID       string            `json:"user_id,omitempty"`
	ExternalID   string            `json:"external_id,omitempty"`
	OccurredAt   *string           `json:"occurred_at,omitempty"`
	IsError      bool              `json:"is_error"`
	Method       string            `json:"method,omitempty"`
	Path         string            `json:"path,omitempty"`
	Status       *int              `json:"status,omitempty"`
	DurationMS   *int64            `json:"duration_ms,omitempty"`
	ErrorCode    string            `json:"error_code,omitempty"`
	ErrorMessage string            `json:"error_message,omitempty"`
	Headers      map[string]string `json:"headers,omitempty"`
	Verification json.RawMessage   `json:"verification,omitempty"`
	// Verified: the sender was authenticated (a webhook's signature, an API-call report's token,
	// a callback's beacon token). Only verified events count toward the rollout's guardrails.
	Verified bool `json:"verified"`
	Demo     bool `json:"demo,omitempty"`
}

// verifiedEvent reports whether an event's sender was authenticated: webhooks and API-call
// reports always are; a callback only when its beacon token verified.
func verifiedEvent(e db.Event) bool { return e.Source != db.SourceCallback || len(e.Verification) > 0 }

func toEventJSON(e db.Event) eventJSON {
	out := eventJSON{ID: itoa(e.ID), Source: e.Source, Env: e.Env, Type: e.Type, RequestID: e.RequestID, ReceivedAt: rfc3339(e.ReceivedAt),
		UserID: e.UserID, ExternalID: e.ExternalID, OccurredAt: optTime(e.OccurredAt), IsError: e.IsError, Headers: e.Headers, Demo: e.Demo,
		Verified: verifiedEvent(e)}
	if json.Valid(e.Payload) {
		out.Payload = e.Payload
	} else {
		b, _ := json.Marshal(string(e.Payload))
		out.Payload = b
	}
	if len(e.Verification) > 0 {
		out.Verification = e.Verification
	}
	if e.Source == db.SourceAPI {
		out.Method, out.Path, out.ErrorCode, out.ErrorMessage = e.Method, e.Path, e.ErrorCode, e.ErrorMessage
		d := e.DurationMS
		out.DurationMS = &d
		if e.Status > 0 {
			st := e.Status
			out.Status = &st
		}
	}
	return out
}

func (s *Server) listRejected(w http.ResponseWriter, r *http.Request) error {
	before, limit, err := validation.ParsePage(r.URL.Query(), 500)
	if err != nil {
		return err
	}
	if limit == 0 {
		limit = 50
	}
	env := r.URL.Query().Get("env") // a guardrail's link names production
	if env != "" && env != "production" && env != "sandbox" {
		return errBadRequest("env must be production or sandbox")
	}
	rows, next, err := s.db.ListRejected(r.Context(), env, before, limit)
	if err != nil {
		return err
	}
	vm := templates.RejectedVM{Layout: s.page(w, r, "events", "Rejected deliveries")}
	for _, d := range rows {
		vm.Rows = append(vm.Rows, templates.RejectedRow{ID: d.ID, Env: d.Env, ReceivedAt: d.ReceivedAt, Reason: d.Reason, Detail: d.Detail, IP: d.IP,
			RequestID: d.RequestID, BodySize: d.BodySize, KeptBytes: len(d.Body), Body: prettyJSON(d.Body), Headers: sortedHeaders(d.Headers)})
	}
	if next > 0 {
		vm.NextURL = "/events/rejected?cursor=" + strconv.FormatInt(next, 10)
		if env != "" {
			vm.NextURL += "&env=" + env
		}
	}
	return render(w, r, http.StatusOK, templates.RejectedPage(vm))
}

// listPageBytes bounds the payloads one page of GET /api/v1/events holds.
const listPageBytes = 2 << 20

// apiListEvents is GET /api/v1/events.
func (s *Server) apiListEvents(w http.ResponseWriter, r *http.Request) error {
	f, err := events.ParseFilter(r.URL.Query())
	if err != nil {
		return err
	}
	// A page ends early, with a cursor, once its payloads pass listPageBytes: 500 events of
	// 1 MiB each would otherwise be held in memory for one answer.
	f.MaxBytes = listPageBytes
	evs, next, err := s.db.ListEvents(r.Context(), f.EventFilter)
	if err != nil {
		return err
	}
	out := struct {
		Events     []eventJSON `json:"events"`
		NextCursor *string     `json:"next_cursor"`
	}{Events: []eventJSON{}}
	for _, e := range evs {
		out.Events = append(out.Events, toEventJSON(e))
	}
	if next > 0 {
		c := strconv.FormatInt(next, 10)
		out.NextCursor = &c
	}
	return writeJSON(w, http.StatusOK, out)
}

// apiShowEvent is GET /api/v1/events/{id}.
func (s *Server) apiShowEvent(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	e, err := s.db.EventByID(r.Context(), id)
	if errors.Is(err, db.ErrNotFound) {
		return errNoEvent(id)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toEventJSON(e))
}
