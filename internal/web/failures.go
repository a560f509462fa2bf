package web

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
)

// failureWindow is how long the audit rows of one kind of repeatable failure are counted
// together: a wrong password on a re-check, a refused re-check, a failed sign-in, a wrong code.
const failureWindow = 5 * time.Minute

// failureAudit writes the audit rows of failures an attacker can repeat, counted rather than one
// a try, so no flood of guesses grows the audit log (issue 18): per action, target and reason the
// first failure of a window is written at once (with what it was for, as before), and the rest of
// the window as one row carrying their count when the window is over (flushed by Maintain, and at
// the next such failure). A flood of 1,000 wrong re-checks in a minute writes at most two rows a
// reason. NB: the counts of an instance that crashes before a flush are lost; the first row of
// each window is not.
type failureAudit struct {
	write func(context.Context, db.Audit) error
	now   func() time.Time

	mu   sync.Mutex
	open map[failureKey]*failureCount
}

type failureKey struct{ action, target, reason string }

// failureCount is one window: since when, the failures counted after the first, and the newest
// of them (whose actor, address and request id the count's row carries).
type failureCount struct {
	since time.Time
	count int
	last  db.Audit
}

func newFailureAudit(write func(context.Context, db.Audit) error, now func() time.Time) *failureAudit {
	return &failureAudit{write: write, now: now, open: map[failureKey]*failureCount{}}
}

// record audits a (Target set, After a map with at least "reason") unless a failure with the same
// action, target and reason was written within failureWindow: then it is counted instead.
func (f *failureAudit) record(ctx context.Context, a db.Audit, reason string) error {
	k := failureKey{a.Action, a.Target, reason}
	now := f.now()
	f.mu.Lock()
	w := f.open[k]
	if w != nil && now.Sub(w.since) < failureWindow {
		w.count++
		w.last = a
		f.mu.Unlock()
		return nil
	}
	f.open[k] = &failureCount{since: now}
	f.mu.Unlock()
	if w != nil && w.count > 0 {
		if err := f.write(ctx, w.row()); err != nil {
			return err
		}
	}
	return f.write(ctx, a)
}

// row is the audit row of a window's count: the newest failure's row, with "count" failures like
// it since "counted_since" (the first of the window, written on its own, not included).
func (w *failureCount) row() db.Audit {
	a := w.last
	after := map[string]any{}
	if m, ok := a.After.(map[string]any); ok {
		after = maps.Clone(m)
	}
	after["count"], after["counted_since"] = w.count, w.since.UTC().Format(time.RFC3339)
	a.After, a.RequestID = after, ""
	return a
}

// flush writes the counts of every window that is over at now (all of them when all is set).
func (f *failureAudit) flush(ctx context.Context, all bool) error {
	now := f.now()
	var rows []db.Audit
	f.mu.Lock()
	for k, w := range f.open {
		if all || now.Sub(w.since) >= failureWindow {
			if w.count > 0 {
				rows = append(rows, w.row())
			}
			delete(f.open, k)
		}
	}
	f.mu.Unlock()
	for _, a := range rows {
		if err := f.write(ctx, a); err != nil {
			return err
		}
	}
	return nil
}
