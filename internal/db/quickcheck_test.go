package db

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenRefusesADamagedDatabase: a database whose pages are damaged is refused at start with
// what to do, instead of starting, answering ready and failing requests.
func TestOpenRefusesADamagedDatabase(t *testing.T) {
	sqliteOnly(t, "damaged pages of the SQLite file")
	dir := t.TempDir()
	ctx := context.Background()
	d, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 { // enough rows for several pages of the audit table and its indexes
		if err := d.InsertAudit(ctx, Audit{Actor: "test", Action: "fill", Target: strings.Repeat("x", 200) + string(rune('a'+i%26))}); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	garbage := []byte(strings.Repeat("\xde\xad\xbe\xef", 1024))
	for off := int64(4096 * 3); off+int64(len(garbage)) < st.Size(); off += 4096 * 4 {
		if _, err := f.WriteAt(garbage, off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	_, err = Open(ctx, dir)
	if err == nil || !strings.Contains(err.Error(), "restore it from a backup") {
		t.Fatalf("a damaged database opened: %v", err)
	}
	// A sound one still opens.
	if d, err := Open(ctx, t.TempDir()); err != nil {
		t.Fatalf("a fresh database: %v", err)
	} else {
		d.Close()
	}
}
