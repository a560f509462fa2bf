package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/secrets"
)

// pendingKeyFile holds a new master key while a rotation is in progress; see rotateMasterKey.
const pendingKeyFile = secrets.KeyFileName + ".new"

// rotateMasterKey re-encrypts every stored secret under a new master key. Run it with the
// dashboard stopped. With the key in the data directory, the new key is written to
// master.key.new first (fsync'd), the database is re-encrypted in one transaction, then the file
// is renamed over master.key; a crash in between is finished at the next start (openData).
// With the key from DASHBOARD_MASTER_KEY(_FILE), the new key is printed once, on the last line,
// to be put where the old one was.
func rotateMasterKey(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var st storeFlags
	var newKeyFile string
	f := newFlags("rotate-master-key", stderr, getenv)
	st.bind(f)
	f.fs.StringVar(&newKeyFile, "new-key-file", "", "file holding the new key (base64 or hex); default: generate one")
	if err := st.parse(f, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	keyValue, err := masterKeyFromEnv(getenv)
	if err != nil {
		return err
	}
	inDataDir := keyValue == ""
	dir := st.dir
	release, err := takeDataDir(dir, "rotating the master key (the running server would keep sealing with the old key)")
	if err != nil {
		return err
	}
	defer release()
	d, oldBox, _, err := openData(ctx, dir, st.url, keyValue, "")
	if err != nil {
		return err
	}
	defer d.Close()

	var newKey secrets.Key
	if newKeyFile != "" {
		b, err := os.ReadFile(newKeyFile)
		if err != nil {
			return fmt.Errorf("--new-key-file: %w", err)
		}
		if newKey, err = secrets.ParseKey(string(b)); err != nil {
			return fmt.Errorf("--new-key-file: %w", err)
		}
	} else if newKey, err = secrets.GenerateKey(); err != nil {
		return err
	}
	if newKey.ID == oldBox.KeyID() {
		return usageError{"the new master key is the current one; give a different key"}
	}
	newBox, err := secrets.NewBox(newKey)
	if err != nil {
		return err
	}
	pending := filepath.Join(dir, pendingKeyFile)
	if inDataDir {
		if err := writeKeyFile(pending, newKey); err != nil {
			return err
		}
	}
	n, err := secrets.RotateMasterKey(ctx, d, oldBox, newBox, db.Audit{Actor: "cli", Action: "master_key.rotate"})
	if err != nil {
		if inDataDir {
			os.Remove(pending)
		}
		return fmt.Errorf("nothing was changed: %w", err)
	}
	if st.url != "" {
		fmt.Fprintf(stdout, "every instance on %s now needs the new master key %s: give it to each before starting them\n", d.Where(), newKey.ID)
	}
	if inDataDir {
		if err := os.Rename(pending, filepath.Join(dir, secrets.KeyFileName)); err != nil {
			return fmt.Errorf("re-encrypted %d values, but could not move %s into place (the next start finishes it): %w", n, pending, err)
		}
		if err := syncPath(dir); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "re-encrypted %d values from master key %s to %s; %s now holds the new key\n", n, oldBox.KeyID(), newKey.ID, filepath.Join(dir, secrets.KeyFileName))
		return nil
	}
	if newKeyFile != "" {
		fmt.Fprintf(stdout, "re-encrypted %d values from master key %s to %s.\nSet DASHBOARD_MASTER_KEY (or its _FILE) to the key in %s before starting the dashboard.\n", n, oldBox.KeyID(), newKey.ID, newKeyFile)
		return nil
	}
	fmt.Fprintf(stdout, "re-encrypted %d values from master key %s to %s.\nSet DASHBOARD_MASTER_KEY (or its _FILE) to the new key before starting the dashboard; it is shown only once:\n%s\n", n, oldBox.KeyID(), newKey.ID, newKey.Encode())
	return nil
}

func writeKeyFile(path string, k secrets.Key) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.WriteString(k.Encode() + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// syncPath fsyncs a file or a directory (after a rename in it).
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
