package events

import (
	"context"
	"strconv"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// The audit rows of what the pipeline did for someone: a replay, a test event, an export, a
// support bundle. The caller's a says who (actor, address, request id) and names the action;
// these fill in what was done, so the web handlers write no audit row of their own.

// AuditReplay records the replay of webhook e to t and what came back (at).
func (s *Service) AuditReplay(ctx context.Context, a db.Audit, e db.Event, t ReplayTarget, at db.ReplayAttempt) error {
	a.Target = "event:" + strconv.FormatInt(e.ID, 10)
	a.After = map[string]any{"target": t.URL, "status": at.Status, "error": at.Error}
	return s.db.InsertAudit(ctx, a)
}

// AuditBulkReplay records a bulk replay of env's webhooks matching filter (the page's query) to
// t: how many were sent, accepted and failed.
func (s *Service) AuditBulkReplay(ctx context.Context, a db.Audit, env string, t ReplayTarget, filter string, sent, ok, failed int) error {
	a.Target = "events:" + env
	a.After = map[string]any{"target": t.URL, "filter": filter, "sent": sent, "ok": ok, "failed": failed}
	return s.db.InsertAudit(ctx, a)
}

// AuditTestEvent records a test webhook sent to env: the answer's status and its request_id.
func (s *Service) AuditTestEvent(ctx context.Context, a db.Audit, env string, status int, requestID string) error {
	a.Target = "environment:" + env
	a.After = map[string]any{"status": status, "request_id": requestID}
	return s.db.InsertAudit(ctx, a)
}

// AuditExport records an export of events: its format, how many events it held and the filter
// (the request's query).
func (s *Service) AuditExport(ctx context.Context, a db.Audit, format string, n int, filter string) error {
	a.After = map[string]any{"format": format, "events": n, "filter": filter}
	return s.db.InsertAudit(ctx, a)
}

// AuditSupportBundle records that a support bundle of q is being taken (before it is sent).
func (s *Service) AuditSupportBundle(ctx context.Context, a db.Audit, q string) error {
	a.Target = "lookup:" + validation.Clip(q, 200)
	return s.db.InsertAudit(ctx, a)
}
