package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/secrets"
)

// restore replaces the data directory's database with a backup. Run it with the dashboard
// stopped (the data directory's lock says so). Everything is checked on a copy in the data
// directory before anything is replaced: SQLite's integrity_check, exactly the schema this binary
// creates at the backup's version (every table, index, trigger and view by name and definition,
// so a trigger or view a backup brings never runs; an older one is then migrated on the copy),
// and that the master key opens every sealed value. The
// restore is audited in the restored database's own chain. The previous database (and master
// key, when --master-key-file brings another) is kept aside under a timestamped name, and the
// copy is renamed into place, so at any moment the data directory holds either the old database
// or the new one.
func restore(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var st storeFlags
	var from, keyFile string
	f := newFlags("restore", stderr, getenv)
	st.bind(f)
	f.fs.StringVar(&from, "from", "", "backup file to restore, as written by dashboard backup (required)")
	f.fs.StringVar(&keyFile, "master-key-file", "", "the master key the backup was made with (the master.key kept with it); installed in the data directory along with the database")
	if err := st.parse(f, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if from == "" {
		return usageError{"--from FILE is required"}
	}
	if st.url != "" {
		return usageError{pgBackupAdvice("restore", "pg_restore --clean --if-exists --no-owner")}
	}
	dir := st.dir
	envKey, err := masterKeyFromEnv(getenv)
	if err != nil {
		return err
	}
	if envKey != "" && keyFile != "" {
		return usageError{"--master-key-file installs the key in the data directory, but here the master key comes from DASHBOARD_MASTER_KEY(_FILE): set that to the backup's key instead, and leave out --master-key-file"}
	}
	fromStat, err := os.Stat(from)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	if !fromStat.Mode().IsRegular() {
		return usageError{fmt.Sprintf("--from %s is not a file", from)}
	}
	release, err := takeDataDir(dir, "restoring a backup")
	if err != nil {
		return err
	}
	defer release()
	live := filepath.Join(dir, db.FileName)
	if st, err := os.Stat(live); err == nil && os.SameFile(st, fromStat) {
		return usageError{fmt.Sprintf("--from %s is the data directory's own database; give a backup file", from)}
	}
	key, keyDesc, err := restoreKey(dir, envKey, keyFile)
	if err != nil {
		return err
	}
	box, err := secrets.NewBox(key)
	if err != nil {
		return err
	}

	staged, err := stageCopy(from, dir)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			removeDatabaseFiles(staged)
		}
	}()
	refused := func(err error) error {
		return fmt.Errorf("%s was not restored (nothing was changed): %w", from, err)
	}
	fc, err := db.CheckFile(ctx, staged)
	if err != nil {
		return refused(err)
	}
	if fc.Schema > fc.Known {
		return refused(fmt.Errorf("its schema version %d is newer than this dashboard knows (%d), so a newer dashboard made it; restore it with that version or a newer one (dashboard version prints this one's)", fc.Schema, fc.Known))
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	aside, err := asideName(live, stamp)
	if err != nil {
		return err
	}
	_, liveErr := os.Stat(live)
	hasLive := liveErr == nil

	d, err := db.OpenFile(ctx, staged) // applies the migrations an older backup lacks
	if err != nil {
		return refused(err)
	}
	if err := d.CheckSchema(ctx); err != nil { // what those migrations made of it
		d.Close()
		return refused(err)
	}
	n, err := secrets.CheckSealed(ctx, d, box)
	var mismatch *secrets.KeyMismatchError
	if errors.As(err, &mismatch) {
		d.Close()
		return refused(fmt.Errorf("its secrets are sealed with master key %s, but %s is master key %s. %s",
			mismatch.Sealed, keyDesc, mismatch.Given, keyAdvice(from, keyFile, envKey)))
	}
	if err != nil {
		d.Close()
		return refused(err)
	}
	after := map[string]any{"schema_version": fc.Known, "backup_schema_version": fc.Schema, "master_key": box.KeyID(), "sealed_values": n}
	if hasLive {
		after["previous_database"] = filepath.Base(aside)
	}
	err = d.InsertAudit(ctx, db.Audit{Actor: "cli", Action: "backup.restore", Target: "file:" + absPath(from), After: after})
	if err == nil {
		err = d.Checkpoint(ctx)
	}
	if err = errors.Join(err, d.Close()); err != nil {
		return refused(err)
	}
	// The copy must now be one self-contained file: its log was checkpointed and removed at close.
	if st, err := os.Stat(staged + "-wal"); err == nil && st.Size() > 0 {
		return refused(errors.New("its write-ahead log could not be folded into the copy"))
	}
	os.Remove(staged + "-wal")
	os.Remove(staged + "-shm")
	if err := errors.Join(syncPath(staged), chownLikeDir(staged, dir)); err != nil {
		return refused(err)
	}
	keyPath := filepath.Join(dir, secrets.KeyFileName)
	pending := filepath.Join(dir, pendingKeyFile)
	installKey := keyFile != "" && !sameKeyFile(keyPath, key)
	if installKey {
		// The new key goes in as a pending rotation does: if the process dies after the database is
		// in place but before the key is, the next start finds master.key.new opening the database
		// and finishes the job (openData).
		if err := writeKeyFile(pending, key); err != nil {
			return refused(err)
		}
		if err := chownLikeDir(pending, dir); err != nil {
			os.Remove(pending)
			return refused(err)
		}
	}

	fmt.Fprintf(stdout, "checked %s: integrity ok, schema version %d", from, fc.Schema)
	if fc.Schema < fc.Known {
		fmt.Fprintf(stdout, " (migrated to %d)", fc.Known)
	}
	fmt.Fprintf(stdout, ", %d sealed values open with master key %s\n", n, box.KeyID())
	if hasLive {
		if err := setAside(ctx, live, aside); err != nil {
			if installKey {
				os.Remove(pending)
			}
			return fmt.Errorf("keep the previous database aside: %w; nothing was changed", err)
		}
		fmt.Fprintf(stdout, "kept the previous database as %s\n", aside)
	}
	if err := os.Rename(staged, live); err != nil {
		if hasLive {
			return fmt.Errorf("move the restored database into place: %w (the previous one is kept as %s)", err, aside)
		}
		return fmt.Errorf("move the restored database into place: %w", err)
	}
	done = true
	if err := syncPath(dir); err != nil {
		return err
	}
	if installKey {
		if _, err := os.Stat(keyPath); err == nil {
			keyAside, err := asideName(keyPath, stamp)
			if err == nil {
				err = keepCopy(keyPath, keyAside)
			}
			if err != nil {
				return fmt.Errorf("restored %s, but could not keep the previous master key aside (%w); %s holds the restored key and the next start installs it", live, err, pending)
			}
			fmt.Fprintf(stdout, "kept the previous master key as %s\n", keyAside)
		}
		if err := os.Rename(pending, keyPath); err != nil {
			return fmt.Errorf("restored %s, but could not move the master key into place (%w); the next start finishes it from %s", live, err, pending)
		}
		if err := syncPath(dir); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "installed master key %s as %s\n", key.ID, keyPath)
	}
	fmt.Fprintf(stdout, "restored %s from %s; start the dashboard to use it\n", live, from)
	return nil
}

// restoreKey is the master key a restore checks the backup with, and how to name it in a
// message. It never generates a key: a data directory without one needs the backup's.
func restoreKey(dir, envKey, keyFile string) (secrets.Key, string, error) {
	switch {
	case envKey != "":
		k, _, err := secrets.LoadKey("", envKey, "")
		return k, "DASHBOARD_MASTER_KEY", err
	case keyFile != "":
		k, _, err := secrets.LoadKey("", "", keyFile)
		if err != nil {
			return k, "", fmt.Errorf("--master-key-file: %w", err)
		}
		return k, "--master-key-file " + keyFile, nil
	}
	path := filepath.Join(dir, secrets.KeyFileName)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return secrets.Key{}, "", usageError{fmt.Sprintf("%s holds no master key, and a backup's secrets open only with the key it was made with: give the master.key kept with the backup with --master-key-file FILE (or set DASHBOARD_MASTER_KEY)", dir)}
	}
	k, _, err := secrets.LoadKey("", "", path)
	return k, path, err
}

// keyAdvice says how to give the key a backup was made with.
func keyAdvice(from, keyFile, envKey string) string {
	switch {
	case envKey != "":
		return "Set DASHBOARD_MASTER_KEY (or DASHBOARD_MASTER_KEY_FILE) to the key that was in use when the backup was made, and run restore again"
	case keyFile != "":
		return "Give the master.key that was in use when the backup was made"
	}
	return "Restore the master.key kept with that backup too: dashboard restore --from " + from + " --master-key-file PATH/TO/ITS/master.key"
}

// sameKeyFile reports whether the key file at path holds k.
func sameKeyFile(path string, k secrets.Key) bool {
	cur, _, err := secrets.LoadKey("", "", path)
	return err == nil && cur.ID == k.ID
}

// stageCopy copies a backup (and a write-ahead log beside it, if any) to a new file in dir, where
// it can be checked and then renamed over the live database.
func stageCopy(from, dir string) (string, error) {
	f, err := os.CreateTemp(dir, db.FileName+".restore-*")
	if err != nil {
		return "", fmt.Errorf("copy the backup into %s: %w", dir, err)
	}
	staged := f.Name()
	err = copyTo(f, from)
	if st, statErr := os.Stat(from + "-wal"); err == nil && statErr == nil && st.Size() > 0 {
		err = copyFile(from+"-wal", staged+"-wal")
	}
	if err != nil {
		removeDatabaseFiles(staged)
		return "", fmt.Errorf("copy the backup into %s: %w", dir, err)
	}
	return staged, nil
}

// setAside keeps the database at live under the name aside, with its write-ahead log if one is
// left, and leaves live alone as long as it can: first the log is folded into the file (when the
// database still opens), then the file is linked (or copied) to aside, then a log that could not
// be folded in moves along with it. A log left beside the live name would otherwise be replayed
// into the database renamed over it.
func setAside(ctx context.Context, live, aside string) error {
	if st, err := os.Stat(live + "-wal"); err == nil && st.Size() > 0 {
		// NB: a database too damaged to open keeps its log; both move aside together below.
		_ = db.CheckpointFile(ctx, live)
	}
	if err := keepCopy(live, aside); err != nil {
		return err
	}
	if st, err := os.Stat(live + "-wal"); err == nil && st.Size() > 0 {
		if err := os.Rename(live+"-wal", aside+"-wal"); err != nil {
			os.Remove(aside)
			return err
		}
	}
	os.Remove(live + "-wal")
	os.Remove(live + "-shm")
	return syncPath(filepath.Dir(live))
}

// keepCopy makes aside a second name of path (a hard link), or a copy where links are not
// supported.
func keepCopy(path, aside string) error {
	if err := os.Link(path, aside); err == nil {
		return nil
	}
	return copyFile(path, aside)
}

// asideName is path with a ".before-restore-STAMP" suffix that no file has yet.
func asideName(path, stamp string) (string, error) {
	base := path + ".before-restore-" + stamp
	for i := 1; i < 100; i++ {
		name := base
		if i > 1 {
			name += "-" + strconv.Itoa(i)
		}
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			return name, nil
		}
	}
	return "", fmt.Errorf("too many files named %s*; move some away", base)
}

// removeDatabaseFiles removes a database file and its journal files.
func removeDatabaseFiles(path string) {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		os.Remove(path + suffix)
	}
}

// copyFile copies src to a new file dst (mode 0600), fsync'd.
func copyFile(src, dst string) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := copyTo(f, src); err != nil {
		os.Remove(dst)
		return err
	}
	return nil
}

// copyTo copies src into f, syncs and closes f.
func copyTo(f *os.File, src string) error {
	in, err := os.Open(src)
	if err != nil {
		f.Close()
		return err
	}
	defer in.Close()
	if _, err := io.Copy(f, in); err != nil {
		f.Close()
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
