package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func openTemp(t *testing.T) (*DB, string) {
	t.Helper()
	open, dir := newStore(t)
	d, err := open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, dir
}

func TestMigrationsApplyOnceAndRefuseNewerSchema(t *testing.T) {
	ctx := context.Background()
	open, _ := newStore(t)
	d, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cur, known, err := d.SchemaVersion(ctx)
	if err != nil || cur != known || known < 1 {
		t.Fatalf("schema %d of %d: %v", cur, known, err)
	}
	if !d.Postgres() {
		var mode, sync string
		d.W.QueryRow("PRAGMA journal_mode").Scan(&mode)
		d.W.QueryRow("PRAGMA synchronous").Scan(&sync)
		if mode != "wal" || sync != "2" {
			t.Fatalf("journal_mode=%s synchronous=%s, want wal and 2 (FULL)", mode, sync)
		}
	}
	d.Close()
	// Reopening applies nothing twice.
	d2, err := open(ctx)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if d2.Postgres() {
		d2.W.ExecContext(ctx, "UPDATE dashboard_schema SET version = ?", known+1)
	} else {
		d2.W.Exec(fmt.Sprintf("PRAGMA user_version = %d", known+1))
	}
	d2.Close()
	_, err = open(ctx)
	if err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("newer schema: %v", err)
	}
}

// TestTxCancelledMidwayReportsTheCancellation: once ctx ends, database/sql rolls the transaction
// back by itself and its Commit says only sql.ErrTxDone; tx must report the cancellation, which
// is how a stop during start-up is told from a failure.
func TestTxCancelledMidwayReportsTheCancellation(t *testing.T) {
	d, _ := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	err := d.tx(ctx, func(tx txer) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO meta (key, value) VALUES ('tx_test', 'x')"); err != nil {
			return err
		}
		cancel()
		if d.Postgres() {
			// The transaction outlives ctx there (see tryTx): tx itself sees the cancellation
			// before COMMIT and rolls back.
			return nil
		}
		// Wait for database/sql's own rollback, so Commit meets a finished transaction.
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := tx.ExecContext(context.Background(), "SELECT 1")
			if errors.Is(err, sql.ErrTxDone) {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("transaction not rolled back 10s after cancel: %v", err)
			}
			time.Sleep(time.Millisecond)
		}
	})
	if !errors.Is(err, context.Canceled) || (!errors.Is(err, sql.ErrTxDone) && !d.Postgres()) {
		t.Fatalf("tx after cancel: %v, want context.Canceled wrapping sql.ErrTxDone", err)
	}
	if _, err := d.Meta(context.Background(), "tx_test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the cancelled transaction's write is stored: %v", err)
	}
}

func TestForeignKeysEnforced(t *testing.T) {
	d, _ := openTemp(t)
	err := d.InsertSession(context.Background(), "abc", Session{UserID: 999})
	if err == nil {
		t.Fatal("session for a missing user was stored")
	}
}

func TestEmailUniqueCaseInsensitive(t *testing.T) {
	d, _ := openTemp(t)
	ctx := context.Background()
	a := Audit{Actor: "test", Action: "user.create"}
	if _, err := d.InsertUser(ctx, User{Email: "A@example.com", Role: RoleViewer, PasswordHash: "x"}, a); err != nil {
		t.Fatal(err)
	}
	if _, err := d.InsertUser(ctx, User{Email: "a@EXAMPLE.com", Role: RoleViewer, PasswordHash: "x"}, a); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate email: %v", err)
	}
	rows, _, _ := d.ListAudit(ctx, AuditFilter{})
	if len(rows) != 1 {
		t.Fatalf("a failed insert left an audit row: %d rows", len(rows))
	}
}

// TestSetupRaceCreatesOneAdmin races two setups with the same link: exactly one wins.
func TestSetupRaceCreatesOneAdmin(t *testing.T) {
	d, _ := openTemp(t)
	ctx := context.Background()
	if err := d.ReplaceSetupToken(ctx, "tok", time.Hour); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = d.CompleteSetup(ctx, "tok", User{Email: fmt.Sprintf("a%d@example.com", i), PasswordHash: "x"}, Audit{Actor: "setup-link", Action: "setup.complete"})
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
		} else if !errors.Is(err, ErrSetupUsed) {
			t.Errorf("unexpected error %v", err)
		}
	}
	if n, _ := d.CountUsers(ctx); wins != 1 || n != 1 {
		t.Fatalf("wins=%d users=%d, want 1 and 1", wins, n)
	}
}

func TestUnknownRoleRefusedByDatabase(t *testing.T) {
	d, _ := openTemp(t)
	_, err := d.InsertUser(context.Background(), User{Email: "a@example.com", Role: "root", PasswordHash: "x"}, Audit{Actor: "t", Action: "user.create"})
	if err == nil {
		t.Fatal("role root stored")
	}
}

// TestSchemaCheckIgnoresPlannerStatistics: ANALYZE (which an operator may run while looking into
// a slow query) adds sqlite_stat tables; they hold data for the query planner, never code, so a
// start must not refuse the database for them, while an added trigger is still refused.
func TestSchemaCheckIgnoresPlannerStatistics(t *testing.T) {
	sqliteOnly(t, "SQLite's ANALYZE tables")
	ctx := context.Background()
	d, _ := openTemp(t)
	if _, err := d.W.ExecContext(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	var stats int
	d.R.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'sqlite_stat%'").Scan(&stats)
	if stats == 0 {
		t.Fatal("ANALYZE made no statistics table: the test proves nothing")
	}
	if err := d.CheckSchema(ctx); err != nil {
		t.Fatalf("after ANALYZE: %v", err)
	}
	if _, err := d.W.ExecContext(ctx, "CREATE TRIGGER promote AFTER INSERT ON sessions BEGIN UPDATE users SET role = 'admin'; END"); err != nil {
		t.Fatal(err)
	}
	var se *SchemaError
	if err := d.CheckSchema(ctx); !errors.As(err, &se) || !strings.Contains(err.Error(), "trigger promote") {
		t.Fatalf("an added trigger: %v", err)
	}
}
