package events

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tensfer-golive/dashboard/internal/secrets"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// keyCache keeps each environment's webhook keys (active, and lately retired) and beacon keys in
// memory so verifying a delivery or a beacon reads no database row; any change to secrets drops
// it, and it expires after a few seconds so an expiry time passing is noticed.
type keyCache struct {
	mu      sync.Mutex
	gen     uint64 // bumped by invalidate; a load started before it is not cached
	entries map[string]cachedKeys
}

type cachedKeys struct {
	ids    []string
	keys   [][]byte
	loaded time.Time
}

const keyCacheTTL = 5 * time.Second

// InvalidateSecrets drops the cached keys; call it after any change to webhook secrets or beacon
// keys.
func (s *Service) InvalidateSecrets() {
	c := &s.keys
	c.mu.Lock()
	c.entries = nil
	c.gen++
	c.mu.Unlock()
}

// load returns the cached ids and keys under name, or reads them with read when they are
// missing or older than keyCacheTTL. A read started before an invalidation is not cached.
func (c *keyCache) load(now time.Time, name string, read func() ([]string, [][]byte, error)) ([]string, [][]byte, error) {
	c.mu.Lock()
	e, ok := c.entries[name]
	gen := c.gen
	c.mu.Unlock()
	if ok && now.Sub(e.loaded) < keyCacheTTL && now.Sub(e.loaded) >= 0 {
		return e.ids, e.keys, nil
	}
	ids, keys, err := read()
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	if c.gen == gen { // no change to the secrets while this list was read
		if c.entries == nil {
			c.entries = map[string]cachedKeys{}
		}
		c.entries[name] = cachedKeys{ids: ids, keys: keys, loaded: now}
	}
	c.mu.Unlock()
	return ids, keys, nil
}

// RetiredSecretGrace is how long after a webhook secret is retired (or expires) a delivery still
// signed with it counts toward the rejected-webhooks guardrail: Tensfer signing with a secret we
// no longer accept is exactly the failure that guardrail is for. The delivery is refused either way.
const RetiredSecretGrace = 7 * 24 * time.Hour

// ActiveWebhookKeys returns the HMAC keys (and their secret ids, in the same order) that verify
// env's deliveries now.
func (s *Service) ActiveWebhookKeys(ctx context.Context, env string) ([]string, [][]byte, error) {
	return s.webhookKeys(ctx, env, false)
}

// webhookKeys returns env's active webhook keys, or (retired set) those retired or expired
// within RetiredSecretGrace.
func (s *Service) webhookKeys(ctx context.Context, env string, retired bool) ([]string, [][]byte, error) {
	name := "webhook:" + env
	if retired {
		name = "retired:" + env
	}
	now := s.now()
	return s.keys.load(now, name, func() ([]string, [][]byte, error) {
		all, err := s.db.ListWebhookSecrets(ctx, env)
		if err != nil {
			return nil, nil, err
		}
		var ids []string
		var keys [][]byte
		for _, sec := range all {
			if sec.Active(now) == retired {
				continue
			}
			if ended := sec.RetiredAt; retired {
				if ended.IsZero() || (!sec.ExpiresAt.IsZero() && sec.ExpiresAt.Before(ended)) {
					ended = sec.ExpiresAt
				}
				if now.Sub(ended) > RetiredSecretGrace {
					continue
				}
			}
			plain, err := s.cfg.Box.Open(sec.Sealed, secrets.WebhookSecretContext(env, sec.ID))
			if err != nil {
				return nil, nil, fmt.Errorf("open webhook secret %s: %w", sec.ID, err)
			}
			key, err := tensfer.ParseSecret(string(plain))
			if err != nil {
				return nil, nil, fmt.Errorf("webhook secret %s: %w", sec.ID, err)
			}
			ids, keys = append(ids, sec.ID), append(keys, key)
		}
		return ids, keys, nil
	})
}

// WebhookKeys returns env's active signing keys or nil, logging a failure: for the demo's
// simulator, which signs with them (read at each delivery, so a rotation in the UI takes effect).
func (s *Service) WebhookKeys(env tensfer.Environment) [][]byte {
	_, keys, err := s.ActiveWebhookKeys(context.Background(), string(env))
	if err != nil {
		s.log.Warn("webhook keys", "env", string(env), "error", err)
		return nil
	}
	return keys
}

// touchSecret records when a secret last matched, at most every 30 seconds per secret.
func (s *Service) touchSecret(id string, now time.Time) {
	if !s.touched.Due(id, now) {
		return
	}
	if err := s.db.TouchWebhookSecret(context.Background(), id, now); err != nil {
		s.log.Warn("record webhook secret use", "secret_id", id, "error", err)
	}
}
