package db

import (
	"context"
	"testing"
)

// TestAuditChainDetectsEditsAndDeletions: the audit log is append-only by trigger; someone who
// gets past that (editing the file) is caught by the chain, at the first row that changed.
func TestAuditChainDetectsEditsAndDeletions(t *testing.T) {
	ctx := context.Background()
	fill := func(t *testing.T) *DB {
		t.Helper()
		d, err := Open(ctx, t.TempDir())
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
			if _, err := d.W.ExecContext(ctx, "DROP TRIGGER "+trig); err != nil {
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
