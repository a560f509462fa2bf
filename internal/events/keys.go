package events

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tensfer-golive/dashboard/internal/secrets"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// keyCache keeps each environment's active webhook keys in memory so verifying a delivery reads
// no database row; any change to secrets drops it, and it expires after a few seconds so an
// expiry time passing is noticed.
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

// InvalidateSecrets drops the cached signing keys; call it after any change to webhook secrets.
func (s *Service) InvalidateSecrets() {
	c := &s.keys
	c.mu.Lock()
	c.entries = nil
	c.gen++
	c.mu.Unlock()
}

// ActiveWebhookKeys returns the HMAC keys (and their secret ids, in the same order) that verify
// env's deliveries now.
func (s *Service) ActiveWebhookKeys(ctx context.Context, env string) ([]string, [][]byte, error) {
	now := s.now()
	c := &s.keys
	c.mu.Lock()
	e, ok := c.entries[env]
	gen := c.gen
	c.mu.Unlock()
	if ok && now.Sub(e.loaded) < keyCacheTTL && now.Sub(e.loaded) >= 0 {
		return e.ids, e.keys, nil
	}
	all, err := s.db.ListWebhookSecrets(ctx, env)
	if err != nil {
		return nil, nil, err
	}
	e = cachedKeys{loaded: now}
	for _, sec := range all {
		if !sec.Active(now) {
			continue
		}
		plain, err := s.cfg.Box.Open(sec.Sealed, secrets.WebhookSecretContext(env, sec.ID))
		if err != nil {
			return nil, nil, fmt.Errorf("open webhook secret %s: %w", sec.ID, err)
		}
		key, err := tensfer.ParseSecret(string(plain))
		if err != nil {
			return nil, nil, fmt.Errorf("webhook secret %s: %w", sec.ID, err)
		}
		e.ids, e.keys = append(e.ids, sec.ID), append(e.keys, key)
	}
	c.mu.Lock()
	if c.gen == gen { // no change to the secrets while this list was read
		if c.entries == nil {
			c.entries = map[string]cachedKeys{}
		}
		c.entries[env] = e
	}
	c.mu.Unlock()
	return e.ids, e.keys, nil
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

// touchSender records that a sender delivered a verified webhook, at most once a minute per
// sender (the guardrails count refusals only from such senders).
func (s *Service) touchSender(client string, now time.Time) {
	if client == "" {
		return
	}
	s.clientsMu.Lock()
	s.known[client] = true
	s.clientsMu.Unlock()
	if !s.senders.Due(client, now) {
		return
	}
	if err := s.db.TouchWebhookSender(context.Background(), client, now); err != nil {
		s.log.Warn("record webhook sender", "error", err)
	}
}

// knownSender reports whether a sender has delivered a verified webhook (Tensfer's own addresses).
func (s *Service) knownSender(client string) bool {
	s.clientsMu.Lock()
	defer s.clientsMu.Unlock()
	return s.known[client]
}
