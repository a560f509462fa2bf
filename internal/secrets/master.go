package secrets

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

const (
	metaKeyCheck  = "master_key_check"
	keyCheckPlain = "tensfer-dashboard master key check"
)

// CheckMasterKey makes sure box's master key is the one this database was sealed with. On a
// fresh database it stores a sealed check value; afterwards it opens that value, so starting with
// the wrong key (or a key file from another install) fails loudly instead of at the first secret.
func CheckMasterKey(ctx context.Context, d *db.DB, box *Box) error {
	sealed, err := d.Meta(ctx, metaKeyCheck)
	if errors.Is(err, db.ErrNotFound) {
		v, err := box.Seal([]byte(keyCheckPlain), checkContext)
		if err != nil {
			return err
		}
		return d.SetMeta(ctx, metaKeyCheck, v)
	}
	if err != nil {
		return err
	}
	pt, err := box.Open(sealed, checkContext)
	if err != nil || string(pt) != keyCheckPlain {
		want, _ := KeyIDOf(sealed)
		return fmt.Errorf("master key %s does not match this database, which was set up with master key %s; start with the right DASHBOARD_MASTER_KEY / master.key", box.KeyID(), want)
	}
	return nil
}

// RotateMasterKey re-encrypts every stored secret (API keys, webhook signing secrets, TOTP seeds,
// the check value) from oldBox's key to newBox's, and recomputes fingerprints (they are keyed by
// the master key), in one transaction. It returns how many values moved; on error nothing changed.
func RotateMasterKey(ctx context.Context, d *db.DB, oldBox, newBox *Box, a db.Audit) (int, error) {
	a.Target = "master_key:" + newBox.KeyID()
	a.Before = map[string]any{"master_key": oldBox.KeyID()}
	return d.RekeyAll(ctx, func(r db.SealedRow) (db.Resealed, error) {
		var sealCtx string
		switch r.Table {
		case "env_keys":
			sealCtx = EnvKeyContext(r.Env, r.Field)
		case "webhook_secrets":
			sealCtx = WebhookSecretContext(r.Env, r.ID)
		case "user_totp":
			id, err := strconv.ParseInt(r.ID, 10, 64)
			if err != nil {
				return db.Resealed{}, err
			}
			sealCtx = TOTPSeedContext(id)
		case "meta":
			sealCtx = checkContext
		default:
			return db.Resealed{}, fmt.Errorf("secrets: no sealing context for table %s", r.Table)
		}
		plain, err := oldBox.Open(r.Sealed, sealCtx)
		if err != nil {
			return db.Resealed{}, err
		}
		fpInput := plain
		if r.Table == "webhook_secrets" {
			// Webhook secrets are fingerprinted by their HMAC key, as they are matched.
			if fpInput, err = tensfer.ParseSecret(string(plain)); err != nil {
				return db.Resealed{}, err
			}
		}
		sealed, err := newBox.Seal(plain, sealCtx)
		if err != nil {
			return db.Resealed{}, err
		}
		out := db.Resealed{Sealed: sealed}
		if r.Table == "env_keys" || r.Table == "webhook_secrets" {
			out.Fingerprint = newBox.Fingerprint(fpInput)
		}
		return out, nil
	}, a)
}
