package environment

import (
	"context"
	"errors"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/secrets"
)

// BeaconKeyOverlap is how long a rotated beacon key keeps verifying tokens: as long as a token may
// live (events.BeaconTokenMaxLife), so every token minted before a rotation verifies until it
// expires, and none after that.
const BeaconKeyOverlap = 24 * time.Hour

// BeaconKeyPrefix starts every beacon key, so that one pasted in the wrong place is recognisable.
const BeaconKeyPrefix = "tbk_"

// BeaconKey returns env's current beacon key and its text, generating the environment's first one
// (audited as made by the system) when it has none: every environment has a key to mint beacon
// tokens with from the moment someone looks for it.
func (s *Service) BeaconKey(ctx context.Context, env string) (db.BeaconKey, string, error) {
	if !Valid(env) {
		return db.BeaconKey{}, "", db.ErrNotFound
	}
	for range 2 {
		keys, err := s.cfg.DB.BeaconKeys(ctx, env, s.cfg.Now())
		if err != nil {
			return db.BeaconKey{}, "", err
		}
		if len(keys) > 0 && keys[0].RetiredAt.IsZero() {
			plain, err := s.cfg.Box.Open(keys[0].Sealed, secrets.BeaconKeyContext(env, keys[0].ID))
			return keys[0], string(plain), err
		}
		k, text, err := s.newBeaconKey(ctx, env, 0, db.Audit{Actor: "system", Action: "environment.beacon_key_create"})
		if !errors.Is(err, db.ErrConflict) { // another request made the first key meanwhile: read it
			return k, text, err
		}
	}
	return db.BeaconKey{}, "", errors.New("environment: beacon key: none could be read or made")
}

// RotateBeaconKey replaces env's beacon key with a new one and returns it; the old one keeps
// verifying tokens for BeaconKeyOverlap.
func (s *Service) RotateBeaconKey(ctx context.Context, env string, a db.Audit) (db.BeaconKey, string, error) {
	if !Valid(env) {
		return db.BeaconKey{}, "", db.ErrNotFound
	}
	if _, _, err := s.BeaconKey(ctx, env); err != nil { // rotation needs a key to rotate from
		return db.BeaconKey{}, "", err
	}
	return s.newBeaconKey(ctx, env, BeaconKeyOverlap, a)
}

// newBeaconKey generates and stores a beacon key for env (see db.InsertBeaconKey for overlap).
func (s *Service) newBeaconKey(ctx context.Context, env string, overlap time.Duration, a db.Audit) (db.BeaconKey, string, error) {
	text := BeaconKeyPrefix + auth.RandomID(32)
	k := db.BeaconKey{ID: "bk_" + auth.RandomID(9), Env: env}
	var err error
	if k.Sealed, err = s.cfg.Box.Seal([]byte(text), secrets.BeaconKeyContext(env, k.ID)); err != nil {
		return db.BeaconKey{}, "", err
	}
	k, err = s.cfg.DB.InsertBeaconKey(ctx, k, overlap, a)
	s.cfg.SecretsChanged()
	return k, text, err
}
