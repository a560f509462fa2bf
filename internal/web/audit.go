package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/web/templates"
)

func auditRows(entries []db.AuditEntry) []templates.AuditRow {
	rows := make([]templates.AuditRow, 0, len(entries))
	for _, e := range entries {
		rows = append(rows, templates.AuditRow{ID: e.ID, At: e.At, Actor: e.Actor, Action: e.Action, Target: e.Target,
			Before: string(e.Before), After: string(e.After), IP: e.IP, RequestID: e.RequestID})
	}
	return rows
}

// auditFilter reads the audit filter and cursor from the query string.
func auditFilter(q url.Values) (db.AuditFilter, error) {
	f := db.AuditFilter{
		Actor:  strings.TrimSpace(q.Get("actor")),
		Action: strings.TrimSpace(q.Get("action")),
		Target: strings.TrimSpace(q.Get("target")),
	}
	if c := q.Get("cursor"); c != "" {
		id, err := strconv.ParseInt(c, 10, 64)
		if err != nil || id <= 0 {
			return f, errBadRequest("cursor %q is not valid; use the next_cursor value of the previous page", c)
		}
		f.BeforeID = id
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			return f, errBadRequest("limit must be a whole number from 1 to 500")
		}
		f.Limit = n
	}
	return f, nil
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) error {
	f, err := auditFilter(r.URL.Query())
	if err != nil {
		return err
	}
	entries, next, err := s.db.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	vm := templates.AuditVM{Layout: s.page(w, r, "audit", "Audit log"), Rows: auditRows(entries),
		Actor: f.Actor, Action: f.Action, Target: f.Target, Filtered: f.Actor != "" || f.Action != "" || f.Target != ""}
	if next > 0 {
		q := r.URL.Query()
		q.Set("cursor", strconv.FormatInt(next, 10))
		vm.NextURL = "/audit?" + q.Encode()
	}
	return render(w, r, http.StatusOK, templates.AuditPage(vm))
}
