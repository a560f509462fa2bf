package events

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tensfer-golive/dashboard/internal/secrets"
)

// Beacon tokens: a beacon from the integrator's front end counts toward a guardrail only when it
// carries a token that the integrator's backend minted for that user with the environment's
// beacon key, so that nobody without the key can move the rollout with beacons.
//
// A token is "v1.<expiry>.<mac>": expiry is Unix seconds, mac is the unpadded base64url
// HMAC-SHA256, under the beacon key (its text, "tbk_…", as bytes), of "v1.<env>.<user_id>.<expiry>".
// docs/tensfer.md has minting examples in Go, Node and Python.

// BeaconTokenMaxLife is the longest a beacon token may live: one with an expiry further ahead is
// not verified. A rotated beacon key keeps verifying as long (environment.BeaconKeyOverlap), so
// a token minted just before a rotation still verifies until it expires.
const BeaconTokenMaxLife = 24 * time.Hour

// beaconTokenSkew is the clock difference tolerated between the integrator's backend and us.
const beaconTokenSkew = time.Minute

// maxBeaconToken bounds a token as read: "v1." + 20 digits + "." + 43 characters, with room.
const maxBeaconToken = 128

// MintBeaconToken returns the token for userID in env, valid until expiry, under key (a beacon
// key's text). It is what the integrator's backend computes; the dashboard uses it in tests and
// in the demo.
func MintBeaconToken(key, env, userID string, expiry time.Time) string {
	exp := strconv.FormatInt(expiry.Unix(), 10)
	return "v1." + exp + "." + base64.RawURLEncoding.EncodeToString(beaconMAC([]byte(key), env, userID, exp))
}

func beaconMAC(key []byte, env, userID, exp string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("v1." + env + "." + userID + "." + exp))
	return m.Sum(nil)
}

// TokenError says why a beacon token did not verify, for the beacon's sender and the feed.
type TokenError struct{ Reason string }

func (e *TokenError) Error() string { return "beacon token " + e.Reason }

// checkBeaconToken verifies token for userID in env at now against keys (the texts of the
// environment's beacon keys that verify now), and returns the index of the key that matched.
func checkBeaconToken(keys [][]byte, env, userID, token string, now time.Time) (int, time.Time, error) {
	if len(token) > maxBeaconToken {
		return -1, time.Time{}, &TokenError{"is too long"}
	}
	version, rest, ok1 := strings.Cut(token, ".")
	exp, mac, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || version != "v1" {
		return -1, time.Time{}, &TokenError{`is not in the form v1.<expiry>.<mac>`}
	}
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || secs <= 0 || exp[0] == '+' || exp[0] == '0' {
		return -1, time.Time{}, &TokenError{"expiry is not Unix seconds"}
	}
	expiry := time.Unix(secs, 0)
	switch {
	case !now.Before(expiry.Add(beaconTokenSkew)):
		return -1, expiry, &TokenError{"has expired"}
	case expiry.After(now.Add(BeaconTokenMaxLife + beaconTokenSkew)):
		return -1, expiry, &TokenError{fmt.Sprintf("expires more than %s ahead", BeaconTokenMaxLife)}
	case userID == "":
		return -1, expiry, &TokenError{"needs the beacon's user_id"}
	case len(userID) > beaconFieldMax:
		return -1, expiry, &TokenError{fmt.Sprintf("cannot vouch for a user_id over %d bytes", beaconFieldMax)}
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || len(got) != sha256.Size {
		return -1, expiry, &TokenError{"mac is not unpadded base64url HMAC-SHA256"}
	}
	for i, k := range keys {
		if hmac.Equal(got, beaconMAC(k, env, userID, exp)) {
			return i, expiry, nil
		}
	}
	if len(keys) == 0 {
		return -1, expiry, &TokenError{"cannot be checked: the environment has no beacon key yet (see Environments)"}
	}
	return -1, expiry, &TokenError{"does not match the user_id with any beacon key of this environment"}
}

// beaconKeys returns the texts (and ids) of env's beacon keys that verify now, cached like the
// webhook keys and dropped by InvalidateSecrets.
func (s *Service) beaconKeys(ctx context.Context, env string) ([]string, [][]byte, error) {
	return s.keys.load(s.now(), "beacon:"+env, func() ([]string, [][]byte, error) {
		now := s.now()
		all, err := s.db.BeaconKeys(ctx, env, now)
		if err != nil {
			return nil, nil, err
		}
		var ids []string
		var keys [][]byte
		for _, k := range all {
			plain, err := s.cfg.Box.Open(k.Sealed, secrets.BeaconKeyContext(env, k.ID))
			if err != nil {
				return nil, nil, fmt.Errorf("open beacon key %s: %w", k.ID, err)
			}
			ids, keys = append(ids, k.ID), append(keys, plain)
		}
		return ids, keys, nil
	})
}
