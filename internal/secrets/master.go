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

// RotateMasterKey re-encrypts every stored secret (API keys, webhook signing secrets, beacon keys, TOTP seeds,
// alert channels' URLs and signing secrets, the check value) from oldBox's key to newBox's, and recomputes fingerprints (they are keyed by
// the master key), in one transaction. It returns how many values moved; on error nothing changed.
func RotateMasterKey(ctx context.Context, d *db.DB, oldBox, newBox *Box, a db.Audit) (int, error) {
	a.Target = "master_key:" + newBox.KeyID()
	a.Before = map[string]any{"master_key": oldBox.KeyID()}
	return d.RekeyAll(ctx, func(r db.SealedRow) (db.Resealed, error) {
		sealCtx, err := sealContext(r)
		if err != nil {
			return db.Resealed{}, err
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
		if r.Table == "env_keys" || r.Table == "webhook_secrets" || r.Table == "alert_channels" && r.Field == "url" {
			out.Fingerprint = newBox.Fingerprint(fpInput)
		}
		return out, nil
	}, a)
}

// sealContext is the context a stored value was sealed under.
func sealContext(r db.SealedRow) (string, error) {
	switch r.Table {
	case "env_keys":
		return EnvKeyContext(r.Env, r.Field), nil
	case "webhook_secrets":
		return WebhookSecretContext(r.Env, r.ID), nil
	case "beacon_keys":
		return BeaconKeyContext(r.Env, r.ID), nil
	case "user_totp":
		id, err := strconv.ParseInt(r.ID, 10, 64)
		if err != nil {
			return "", err
		}
		return TOTPSeedContext(id), nil
	case "alert_channels":
		return AlertChannelContext(r.ID, r.Field), nil
	case "meta":
		return checkContext, nil
	}
	return "", fmt.Errorf("secrets: no sealing context for table %s", r.Table)
}

// KeyMismatchError says that a database's values were sealed with another master key than the
// one given.
type KeyMismatchError struct {
	Sealed string // id of the key the database's values were sealed with
	Given  string // id of the key given
}

func (e *KeyMismatchError) Error() string {
	return fmt.Sprintf("secrets: the values are sealed with master key %s, not with master key %s", e.Sealed, e.Given)
}

// CheckSealed opens every value sealed in d with box, without changing anything, and returns how
// many it opened. A value sealed with another key is a *KeyMismatchError; one that does not open
// with the right key (damaged, or moved to another row) is an error naming it.
func CheckSealed(ctx context.Context, d *db.DB, box *Box) (int, error) {
	rows, err := d.ListSealed(ctx)
	if err != nil {
		return 0, err
	}
	for i, r := range rows {
		if id, err := KeyIDOf(r.Sealed); err == nil && id != box.KeyID() {
			return i, &KeyMismatchError{Sealed: id, Given: box.KeyID()}
		}
		sealCtx, err := sealContext(r)
		if err != nil {
			return i, err
		}
		if _, err := box.Open(r.Sealed, sealCtx); err != nil {
			return i, fmt.Errorf("secrets: %s %s does not open: %w", r.Table, r.ID, err)
		}
	}
	return len(rows), nil
}
