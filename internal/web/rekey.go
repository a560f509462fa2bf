package web

import (
	"context"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/secrets"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// RotateMasterKey re-encrypts every stored secret from oldBox's key to newBox's, and recomputes
// fingerprints (they are keyed by the master key), in one transaction.
func RotateMasterKey(ctx context.Context, d *db.DB, oldBox, newBox *secrets.Box, a db.Audit) (int, error) {
	a.Target = "master_key:" + newBox.KeyID()
	a.Before = map[string]any{"master_key": oldBox.KeyID()}
	return d.RekeyAll(ctx, func(r db.SealedRow) (db.Resealed, error) {
		var context, fpInput = "", []byte(nil)
		switch r.Table {
		case "env_keys":
			context = sealContext(r.Env, r.Field)
		case "webhook_secrets":
			context = sealContext(r.Env, "webhook_secret/"+r.ID)
		case "meta":
			context = keyCheckSealAD
		}
		plain, err := oldBox.Open(r.Sealed, context)
		if err != nil {
			return db.Resealed{}, err
		}
		fpInput = plain
		if r.Table == "webhook_secrets" {
			if fpInput, err = tensfer.ParseSecret(string(plain)); err != nil {
				return db.Resealed{}, err
			}
		}
		sealed, err := newBox.Seal(plain, context)
		if err != nil {
			return db.Resealed{}, err
		}
		out := db.Resealed{Sealed: sealed}
		if r.Table != "meta" {
			out.Fingerprint = newBox.Fingerprint(fpInput)
		}
		return out, nil
	}, a)
}
