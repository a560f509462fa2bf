package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tensfer-golive/dashboard/internal/auditdiff"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/validation"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// auditRows maps audit entries to rows with their change as a field-by-field diff.
func auditRows(entries []db.AuditEntry) []templates.AuditRow {
	rows := make([]templates.AuditRow, 0, len(entries))
	for _, e := range entries {
		rows = append(rows, templates.AuditRow{ID: e.ID, At: e.At, Actor: e.Actor, Action: e.Action, Target: e.Target,
			Changes: changesOf(e), IP: e.IP, RequestID: e.RequestID})
	}
	return rows
}

// changesOf is an audit entry's before and after as the fields that differ, secrets as
// fingerprints or markers (auditdiff.Diff).
func changesOf(e db.AuditEntry) []templates.ChangeVM {
	diff := auditdiff.Diff(e.Before, e.After)
	out := make([]templates.ChangeVM, 0, len(diff))
	for _, c := range diff {
		out = append(out, templates.ChangeVM{Field: c.Field, Kind: string(c.Kind), Before: c.Before, After: c.After, Secret: c.Secret})
	}
	return out
}

// auditFilter reads the audit filter and cursor from the query string.
func auditFilter(q url.Values) (db.AuditFilter, error) {
	f := db.AuditFilter{
		Actor:  strings.TrimSpace(q.Get("actor")),
		Action: strings.TrimSpace(q.Get("action")),
		Target: strings.TrimSpace(q.Get("target")),
	}
	var err error
	f.BeforeID, f.Limit, err = validation.ParsePage(q, 500)
	if err != nil {
		return f, err
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
