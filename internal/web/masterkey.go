package web

import (
	"context"
	"errors"
	"fmt"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/secrets"
)

const (
	metaKeyCheck   = "master_key_check"
	keyCheckPlain  = "tensfer-dashboard master key check"
	keyCheckSealAD = "meta/master_key_check"
)

// CheckMasterKey makes sure the loaded master key is the one this database was sealed with. On a
// fresh database it stores a sealed check value; afterwards it opens that value, so starting with
// the wrong key (or a key file from another install) fails loudly instead of at the first secret.
func CheckMasterKey(ctx context.Context, d *db.DB, box *secrets.Box) error {
	sealed, err := d.Meta(ctx, metaKeyCheck)
	if errors.Is(err, db.ErrNotFound) {
		v, err := box.Seal([]byte(keyCheckPlain), keyCheckSealAD)
		if err != nil {
			return err
		}
		return d.SetMeta(ctx, metaKeyCheck, v)
	}
	if err != nil {
		return err
	}
	pt, err := box.Open(sealed, keyCheckSealAD)
	if err != nil || string(pt) != keyCheckPlain {
		want, _ := secrets.KeyIDOf(sealed)
		return fmt.Errorf("master key %s does not match this database, which was set up with master key %s; start with the right DASHBOARD_MASTER_KEY / master.key", box.KeyID(), want)
	}
	return nil
}
