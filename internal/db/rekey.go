package db

import (
	"context"
	"fmt"
)

// SealedRow is one value sealed with the master key, as RekeyAll hands it out.
type SealedRow struct {
	Table  string // env_keys | webhook_secrets | beacon_keys | user_totp | alert_channels | meta
	ID     string // the row's id (the user id for user_totp)
	Env    string
	Field  string // key kind for env_keys; url or secret for alert_channels
	Sealed string
}

// Resealed is a row's value sealed again under the new key, with its new fingerprint (empty
// for rows that have none).
type Resealed struct {
	Sealed      string
	Fingerprint string
}

// RekeyAll re-encrypts every sealed value in one transaction: fn opens a row with the old key and
// seals it with the new one. Either every value moves to the new key or none does.
func (d *DB) RekeyAll(ctx context.Context, fn func(SealedRow) (Resealed, error), a Audit) (int, error) {
	n := 0
	err := d.tx(ctx, func(tx txer) error {
		rows, err := sealedRows(ctx, tx)
		if err != nil {
			return err
		}
		for _, r := range rows {
			out, err := fn(r)
			if err != nil {
				return fmt.Errorf("%s %s: %w", r.Table, r.ID, err)
			}
			switch r.Table {
			case "env_keys":
				_, err = tx.ExecContext(ctx, "UPDATE env_keys SET sealed = ?, fingerprint = ? WHERE id = ?", out.Sealed, out.Fingerprint, r.ID)
			case "webhook_secrets":
				_, err = tx.ExecContext(ctx, "UPDATE webhook_secrets SET sealed = ?, fingerprint = ? WHERE id = ?", out.Sealed, out.Fingerprint, r.ID)
			case "beacon_keys":
				_, err = tx.ExecContext(ctx, "UPDATE beacon_keys SET sealed = ? WHERE id = ?", out.Sealed, r.ID)
			case "user_totp":
				_, err = tx.ExecContext(ctx, "UPDATE user_totp SET sealed = ? WHERE user_id = ?", out.Sealed, r.ID)
			case "alert_channels":
				if r.Field == "url" {
					_, err = tx.ExecContext(ctx, "UPDATE alert_channels SET url_sealed = ?, url_fingerprint = ? WHERE id = ?", out.Sealed, out.Fingerprint, r.ID)
				} else {
					_, err = tx.ExecContext(ctx, "UPDATE alert_channels SET secret_sealed = ? WHERE id = ?", out.Sealed, r.ID)
				}
			case "meta":
				_, err = tx.ExecContext(ctx, "UPDATE meta SET value = ? WHERE key = ?", out.Sealed, r.ID)
			}
			if err != nil {
				return err
			}
			n++
		}
		a.After = map[string]any{"values_resealed": n}
		return insertAudit(ctx, tx, d.Now(), a)
	})
	if err != nil {
		return 0, fmt.Errorf("db: rekey: %w", err)
	}
	return n, nil
}

// ListSealed returns every value sealed with the master key (restore opens them all with the key
// it is about to install, before replacing anything).
func (d *DB) ListSealed(ctx context.Context) ([]SealedRow, error) {
	rows, err := sealedRows(ctx, d.R)
	if err != nil {
		return nil, fmt.Errorf("db: list sealed values: %w", err)
	}
	return rows, nil
}

func sealedRows(ctx context.Context, q querier) ([]SealedRow, error) {
	var rows []SealedRow
	collect := func(query, table string) error {
		rs, err := q.QueryContext(ctx, query)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			r := SealedRow{Table: table}
			if err := rs.Scan(&r.ID, &r.Env, &r.Field, &r.Sealed); err != nil {
				return err
			}
			rows = append(rows, r)
		}
		return rs.Err()
	}
	for _, c := range []struct{ query, table string }{
		{"SELECT CAST(id AS TEXT), env, kind, sealed FROM env_keys", "env_keys"},
		{"SELECT id, env, '', sealed FROM webhook_secrets", "webhook_secrets"},
		{"SELECT id, env, '', sealed FROM beacon_keys", "beacon_keys"},
		{"SELECT CAST(user_id AS TEXT), '', '', sealed FROM user_totp", "user_totp"},
		{"SELECT id, '', 'url', url_sealed FROM alert_channels", "alert_channels"},
		{"SELECT id, '', 'secret', secret_sealed FROM alert_channels WHERE secret_sealed != ''", "alert_channels"},
		{"SELECT key, '', '', value FROM meta WHERE key = 'master_key_check'", "meta"},
	} {
		if err := collect(c.query, c.table); err != nil {
			return nil, err
		}
	}
	return rows, nil
}
