package environment

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/secrets"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// MaxRevealReason bounds the reason given for revealing a key (it goes into the audit log).
const MaxRevealReason = 200

// RevealKey opens one stored key of env for an admin who has re-authenticated, and writes the
// audit row (with the reason) before returning the value. A missing reason is a
// validation.Problem; a key of another environment is db.ErrNotFound.
func (s *Service) RevealKey(ctx context.Context, env string, id int64, reason string, a db.Audit) (db.EnvKey, string, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > MaxRevealReason {
		return db.EnvKey{}, "", validation.Problem(fmt.Sprintf("say why you need the key (up to %d characters); it goes into the audit log", MaxRevealReason))
	}
	k, err := s.cfg.DB.EnvKeyByID(ctx, id)
	if err != nil {
		return db.EnvKey{}, "", err
	}
	if k.Env != env {
		return db.EnvKey{}, "", db.ErrNotFound
	}
	value, err := s.cfg.Box.Open(k.Sealed, secrets.EnvKeyContext(k.Env, k.Kind))
	if err != nil {
		return db.EnvKey{}, "", err
	}
	a.Target = "environment:" + env
	a.After = map[string]any{"key": k.Kind, "last4": k.Last4, "fingerprint": k.Fingerprint, "reason": reason}
	if err := s.cfg.DB.InsertAudit(ctx, a); err != nil {
		return db.EnvKey{}, "", err
	}
	return k, string(value), nil
}

// openKeys decrypts the active keys of an environment.
func (s *Service) openKeys(st State) (map[string]string, error) {
	out := map[string]string{}
	for _, kind := range db.KeyKinds {
		k, ok := st.Active(kind)
		if !ok {
			continue
		}
		v, err := s.cfg.Box.Open(k.Sealed, secrets.EnvKeyContext(st.Env.Name, kind))
		if err != nil {
			return nil, fmt.Errorf("open %s %s: %w", st.Env.Name, kind, err)
		}
		out[kind] = string(v)
	}
	return out, nil
}

// AddWebhookSecret stores secret (a whsec_ value) for env, or generates one when secret is empty
// and returns it (the only time it is available in clear). A malformed or already active secret
// is a validation.Problem.
func (s *Service) AddWebhookSecret(ctx context.Context, env, secret string, expiresIn time.Duration, a db.Audit) (db.WebhookSecret, string, error) {
	if !Valid(env) {
		return db.WebhookSecret{}, "", db.ErrNotFound
	}
	if expiresIn < 0 {
		return db.WebhookSecret{}, "", validation.Problem("expires_in must be a positive duration such as 24h")
	}
	secret = strings.TrimSpace(secret)
	generated := ""
	if secret == "" {
		var err error
		if secret, err = tensfer.GenerateSecret(); err != nil {
			return db.WebhookSecret{}, "", err
		}
		generated = secret
	}
	key, err := tensfer.ParseSecret(secret)
	if err != nil {
		return db.WebhookSecret{}, "", validation.Problem(strings.TrimPrefix(err.Error(), "tensfer: "))
	}
	id := "whs_" + auth.RandomID(9)
	sealed, err := s.cfg.Box.Seal([]byte(secret), secrets.WebhookSecretContext(env, id))
	if err != nil {
		return db.WebhookSecret{}, "", err
	}
	sec := db.WebhookSecret{ID: id, Env: env, Sealed: sealed, Fingerprint: s.cfg.Box.Fingerprint(key)}
	if expiresIn > 0 {
		sec.ExpiresAt = s.cfg.Now().Add(expiresIn)
	}
	sec, err = s.cfg.DB.InsertWebhookSecret(ctx, sec, a)
	s.cfg.SecretsChanged()
	if errors.Is(err, db.ErrConflict) {
		return db.WebhookSecret{}, "", validation.Problem("this signing secret is already active for " + env)
	}
	return sec, generated, err
}

// RetireWebhookSecret stops a signing secret from verifying deliveries, at once. An unknown or
// already retired secret is db.ErrNotFound.
func (s *Service) RetireWebhookSecret(ctx context.Context, env, id string, a db.Audit) error {
	defer s.cfg.SecretsChanged()
	return s.cfg.DB.RetireWebhookSecret(ctx, env, id, a)
}

// AppConfig is what an integrator's app needs to talk to Tensfer in one environment.
type AppConfig struct {
	Env          string      `json:"env"`
	BaseURL      string      `json:"base_url"`
	CallbackURL  string      `json:"callback_url"`
	PublicKey    *string     `json:"public_key"`
	ClientToken  *string     `json:"client_token"`
	SecretKey    *string     `json:"secret_key,omitempty"`
	PreviousKeys []ServedKey `json:"previous_keys"`
	Version      int64       `json:"version"`
}

// ServedKey is a rolled key still served during its overlap.
type ServedKey struct {
	Kind        string `json:"kind"`
	Value       string `json:"value"`
	Last4       string `json:"last4"`
	ServedUntil string `json:"served_until"`
}

// AppConfig returns env's app config at now. The secret key (active or previous) is included only
// when withSecret is set; keys rolled with an overlap are listed under PreviousKeys until they
// stop being served.
func (s *Service) AppConfig(st State, withSecret bool) (AppConfig, error) {
	now := s.cfg.Now()
	out := AppConfig{Env: st.Env.Name, BaseURL: st.Env.BaseURL, CallbackURL: st.Env.CallbackURL, PreviousKeys: []ServedKey{}, Version: st.Env.Version}
	for _, k := range st.Keys {
		if !k.Served(now) || (k.Kind == db.KeySecret && !withSecret) {
			continue
		}
		v, err := s.cfg.Box.Open(k.Sealed, secrets.EnvKeyContext(st.Env.Name, k.Kind))
		if err != nil {
			return out, err
		}
		val := string(v)
		if !k.Active() {
			out.PreviousKeys = append(out.PreviousKeys, ServedKey{Kind: k.Kind, Value: val, Last4: k.Last4, ServedUntil: k.ExpiresAt.UTC().Format(time.RFC3339)})
			continue
		}
		switch k.Kind {
		case db.KeyPublic:
			out.PublicKey = &val
		case db.KeyClientToken:
			out.ClientToken = &val
		case db.KeySecret:
			out.SecretKey = &val
		}
	}
	return out, nil
}
