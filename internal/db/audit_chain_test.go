package db

import (
	"context"
	"strings"
	"testing"
)

// TestAuditChainDetectsEditsAndDeletions: the audit log is append-only by trigger; someone who
// gets past that (editing the file) is caught by the chain, at the first row that changed.
func TestAuditChainDetectsEditsAndDeletions(t *testing.T) {
	ctx := context.Background()
	fill := func(t *testing.T) *DB {
		t.Helper()
		open, _ := newStore(t)
		d, err := open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		// Rows from before the chain began (no stored link), then linked rows.
		for i := 1; i <= 3; i++ {
			if _, err := d.W.ExecContext(ctx, "INSERT INTO audit_log (id, at, actor, action) VALUES (?, 1, 'old', 'legacy')", i); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 6 {
			if err := d.InsertAudit(ctx, Audit{Actor: "user:1 (ana@example.com)", Action: "rollout.advance", Target: "rollout:x", After: map[string]any{"n": i}}); err != nil {
				t.Fatal(err)
			}
		}
		rep, err := d.VerifyAudit(ctx)
		if err != nil || rep.BadID != 0 || rep.Rows != 9 || rep.Unlinked != 3 || len(rep.Head) != 64 {
			t.Fatalf("a sound chain: %+v %v", rep, err)
		}
		for _, trig := range []string{"audit_log_no_update", "audit_log_no_delete"} {
			if _, err := d.W.ExecContext(ctx, dropTrigger(d, trig)); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	tests := []struct {
		name   string
		tamper string
		bad    int64
	}{
		{"an edited row", "UPDATE audit_log SET actor = 'someone else' WHERE id = 6", 6},
		{"an edited row from before the chain", "UPDATE audit_log SET action = 'nothing' WHERE id = 2", 4},
		{"a deleted row", "DELETE FROM audit_log WHERE id = 5", 6},
		{"a removed link", "UPDATE audit_log SET hash = NULL WHERE id = 8", 8},
		{"a rewritten value", "UPDATE audit_log SET after = '{\"n\":99}' WHERE id = 9", 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := fill(t)
			if _, err := d.W.ExecContext(ctx, tt.tamper); err != nil {
				t.Fatal(err)
			}
			rep, err := d.VerifyAudit(ctx)
			if err != nil || rep.BadID != tt.bad {
				t.Fatalf("after %s: %+v %v, want bad row %d", tt.tamper, rep, err, tt.bad)
			}
		})
	}
	// Appending goes on from the stored head.
	d := fill(t)
	if err := d.InsertAudit(ctx, Audit{Actor: "cli", Action: "backup.create"}); err != nil {
		t.Fatal(err)
	}
	if rep, _ := d.VerifyAudit(ctx); rep.BadID != 0 || rep.Rows != 10 {
		t.Fatalf("after appending: %+v", rep)
	}
}

// TestPublishedHeadsCatchTailTruncationAndRewrites: the chain alone cannot see its own tail go,
// nor a chain recomputed after an edit, nor every link removed; a head published before (kept
// outside the database) catches each, naming the head and what happened to it.
func TestPublishedHeadsCatchTailTruncationAndRewrites(t *testing.T) {
	ctx := context.Background()
	const rows = 5100
	fill := func(t *testing.T) (*DB, AuditHead) {
		t.Helper()
		open, _ := newStore(t)
		d, err := open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		err = d.tx(ctx, func(tx txer) error {
			for i := range rows {
				if err := insertAudit(ctx, tx, d.Now(), Audit{Actor: "user:1 (ana@example.com)", Action: "rollout.advance", After: map[string]any{"n": i}}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		head, err := d.AuditHead(ctx)
		if err != nil || head.Seq != rows || len(head.Hash) != 64 {
			t.Fatalf("head %+v %v", head, err)
		}
		if rep, err := d.VerifyAudit(ctx, head); err != nil || rep.BadID != 0 || rep.Heads[0].Problem != "" {
			t.Fatalf("a sound chain with its own head: %+v %v", rep, err)
		}
		for _, trig := range []string{"audit_log_no_update", "audit_log_no_delete"} {
			if _, err := d.W.ExecContext(ctx, dropTrigger(d, trig)); err != nil {
				t.Fatal(err)
			}
		}
		return d, head
	}
	// recompute rewrites every stored link from the rows' content, as someone who edited a row
	// and knows the scheme would.
	recompute := func(t *testing.T, d *DB) {
		t.Helper()
		rs, err := d.R.QueryContext(ctx, "SELECT id, at, actor, action, target, before, after, ip, request_id FROM audit_log ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		var all []auditRow
		for rs.Next() {
			var r auditRow
			if err := rs.Scan(&r.ID, &r.At, &r.Actor, &r.Action, &r.Target, &r.Before, &r.After, &r.IP, &r.RequestID); err != nil {
				t.Fatal(err)
			}
			all = append(all, r)
		}
		rs.Close()
		err = d.tx(ctx, func(tx txer) error {
			prev := ""
			for _, r := range all {
				prev = auditHash(prev, r)
				if _, err := tx.ExecContext(ctx, "UPDATE audit_log SET hash = ? WHERE id = ?", prev, r.ID); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	exec := func(t *testing.T, d *DB, q string, args ...any) {
		t.Helper()
		if _, err := d.W.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name   string
		tamper func(t *testing.T, d *DB)
		want   string
	}{
		{"the last row deleted", func(t *testing.T, d *DB) {
			exec(t, d, "DELETE FROM audit_log WHERE id = ?", rows)
		}, "row 5100 is gone (the log ends at row 5099): rows were deleted"},
		{"the last 5,000 rows deleted", func(t *testing.T, d *DB) {
			exec(t, d, "DELETE FROM audit_log WHERE id > ?", rows-5000)
		}, "row 5100 is gone (the log ends at row 100)"},
		{"the last rows deleted and the log written on", func(t *testing.T, d *DB) {
			exec(t, d, "DELETE FROM audit_log WHERE id > ?", rows-10)
			for range 20 {
				if err := d.InsertAudit(ctx, Audit{Actor: "cli", Action: "backup.create"}); err != nil {
					t.Fatal(err)
				}
			}
		}, "row 5100 stores hash"},
		{"every hash set to NULL", func(t *testing.T, d *DB) {
			exec(t, d, "UPDATE audit_log SET hash = NULL")
		}, "row 5100 stores no hash"},
		{"a row edited and the chain recomputed", func(t *testing.T, d *DB) {
			exec(t, d, "UPDATE audit_log SET actor = 'someone else' WHERE id = 17")
			recompute(t, d)
		}, "row 5100 stores hash"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, head := fill(t)
			tt.tamper(t, d)
			rep, err := d.VerifyAudit(ctx, head)
			if err != nil {
				t.Fatal(err)
			}
			if got := rep.Heads[0].Problem; !strings.Contains(got, tt.want) {
				t.Errorf("head %s: %q, want it to say %q", head, got, tt.want)
			}
		})
	}
}

// dropTrigger is the statement that removes one of the audit log's append-only triggers, as
// someone with write access to the database could.
func dropTrigger(d *DB, name string) string {
	if d.Postgres() {
		return "DROP TRIGGER " + name + " ON audit_log"
	}
	return "DROP TRIGGER " + name
}
