package events

import (
	"net/url"
	"strings"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// Filter is an event filter as a person wrote it (Form, kept to show it back and to build links)
// and as the database takes it.
type Filter struct {
	db.EventFilter
	Form FilterForm
}

// FilterForm holds the filter's fields as given, and Query, the canonical query string of the
// filter alone (no cursor or limit).
type FilterForm struct {
	Env, Source, Type, Status, Since, Until, RequestID string
	Query                                              string
}

// MaxPageSize is the largest page of events one request may ask for.
const MaxPageSize = 500

// ParseFilter reads the event filter shared by the events page, the live stream, the export and
// the API: env, source, type, status (error, or signed), since/until (RFC 3339, or the browser's
// datetime-local form taken as UTC), request_id, and the page's cursor and limit. Bad values are
// a validation.Problem saying what to send.
func ParseFilter(q url.Values) (Filter, error) {
	var f Filter
	vf := FilterForm{Env: q.Get("env"), Source: q.Get("source"), Type: strings.TrimSpace(q.Get("type")),
		Status: q.Get("status"), Since: q.Get("since"), Until: q.Get("until"), RequestID: strings.TrimSpace(q.Get("request_id"))}
	f.Form = vf
	switch vf.Env {
	case "", "sandbox", "production":
	default:
		return f, validation.Problem("env must be sandbox or production")
	}
	switch vf.Source {
	case "", db.SourceWebhook, db.SourceCallback, db.SourceAPI:
	default:
		return f, validation.Problem("source must be webhook, callback or api")
	}
	if len(vf.Type) > 100 {
		return f, validation.Problem("type must be at most 100 characters")
	}
	switch vf.Status {
	case "":
	case "error":
		yes := true
		f.IsError = &yes
	case "signed":
		f.Signed = true // what a guardrail counts: signed webhooks, beacons whose token verified
	default:
		return f, validation.Problem("status must be error, signed or empty")
	}
	var err error
	if f.Since, err = parseTime("since", vf.Since); err != nil {
		return f, err
	}
	if f.Until, err = parseTime("until", vf.Until); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return f, validation.Problem("until must be after since")
	}
	f.Env, f.Source, f.Type, f.RequestID = vf.Env, vf.Source, vf.Type, vf.RequestID
	if f.BeforeID, f.Limit, err = validation.ParsePage(q, MaxPageSize); err != nil {
		return f, err
	}
	enc := url.Values{}
	for k, v := range map[string]string{"env": vf.Env, "source": vf.Source, "type": vf.Type, "status": vf.Status, "since": vf.Since, "until": vf.Until, "request_id": vf.RequestID} {
		if v != "" {
			enc.Set(k, v)
		}
	}
	f.Form.Query = enc.Encode()
	return f, nil
}

func parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, validation.Problem(name + " must be a time such as 2026-11-26T10:00:00Z")
}
