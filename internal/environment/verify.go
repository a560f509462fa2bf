package environment

import (
	"context"
	"fmt"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// Client builds a Tensfer client for st from the stored configuration. It calls out through the
// configured (SSRF-safe) HTTP client, since the base URL is user-configured, and reports each
// call to the Observer.
func (s *Service) Client(st State) (*tensfer.Client, error) {
	keys, err := s.openKeys(st)
	if err != nil {
		return nil, err
	}
	return tensfer.New(tensfer.Config{
		Env: tensfer.Environment(st.Env.Name), BaseURL: st.Env.BaseURL,
		ClientToken: keys[db.KeyClientToken], PublicKey: keys[db.KeyPublic], SecretKey: keys[db.KeySecret],
		HTTPClient: s.cfg.HTTPClient, Timeout: 10 * time.Second, MaxRetries: -1,
		Observer:  s.cfg.Observer,
		UserAgent: s.cfg.UserAgent,
	})
}

// Clients returns a client per environment that has a base URL.
func (s *Service) Clients(ctx context.Context) (map[tensfer.Environment]*tensfer.Client, error) {
	out := map[tensfer.Environment]*tensfer.Client{}
	for _, name := range Names {
		st, err := s.Load(ctx, name)
		if err != nil {
			return nil, err
		}
		if st.Env.BaseURL == "" {
			continue
		}
		c, err := s.Client(st)
		if err != nil {
			return nil, err
		}
		out[tensfer.Environment(name)] = c
	}
	return out, nil
}

// Verify checks every key set for env against Tensfer, in order secret, public, client token,
// and records the first failure (or success) with its request_id and the audit row. An
// environment with nothing to verify yet is a validation.Problem saying what to set.
func (s *Service) Verify(ctx context.Context, env string, a db.Audit) (db.Verification, error) {
	st, err := s.Load(ctx, env)
	if err != nil {
		return db.Verification{}, err
	}
	if st.Env.BaseURL == "" {
		return db.Verification{}, validation.Problem("Set the " + env + " base URL before verifying.")
	}
	if _, ok := st.Active(db.KeySecret); !ok {
		return db.Verification{}, validation.Problem("Set the " + env + " secret API key before verifying.")
	}
	client, err := s.Client(st)
	if err != nil {
		return db.Verification{}, err
	}
	v := db.Verification{Outcome: "ok", Basis: st.Basis()}
	var checked []string
	var account string
	for _, kind := range []string{db.KeySecret, db.KeyPublic, db.KeyClientToken} {
		k, ok := st.Active(kind)
		if !ok {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		cr, err := client.CheckKey(cctx, tensfer.KeyKind(kind))
		cancel()
		if cr.RequestID != "" {
			v.RequestID = cr.RequestID
		}
		if err != nil {
			v.Outcome, v.Detail = describeVerifyError(env, keyLabels[kind], k.Last4, st.Env.BaseURL, err)
			if te, ok := err.(*tensfer.Error); ok && te.RequestID != "" {
				v.RequestID = te.RequestID
			}
			break
		}
		account = cr.AccountName
		checked = append(checked, keyLabels[kind])
	}
	if v.Outcome == "ok" {
		v.Detail = fmt.Sprintf("Tensfer %s accepted the %s", env, JoinAnd(checked))
		if account != "" {
			v.Detail += " for account " + account
		}
		v.Detail += "."
	}
	s.cfg.Metrics.Verified(env, v.Outcome)
	return v, s.cfg.DB.RecordVerification(ctx, env, v, a)
}

// describeVerifyError turns a client error into an outcome and a sentence an operator can act on.
func describeVerifyError(env, label, last4, base string, err error) (string, string) {
	switch {
	case tensfer.IsEnvironmentMismatch(err):
		return "wrong_environment", fmt.Sprintf("Wrong environment: the %s (…%s) or the base URL belongs to the other environment (%v).", label, last4, err)
	case tensfer.IsAuth(err):
		return "wrong_key", fmt.Sprintf("Tensfer rejected the %s %s (…%s): %v.", env, label, last4, err)
	case tensfer.IsUnreachable(err) || tensfer.IsTimeout(err):
		return "unreachable", fmt.Sprintf("Could not reach %s: %v.", base, err)
	}
	return "error", fmt.Sprintf("Tensfer answered with an error for the %s: %v.", label, err)
}

// JoinAnd joins words as a sentence does: "a", "a and b", "a, b and c".
func JoinAnd(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	out := xs[0]
	for _, x := range xs[1 : len(xs)-1] {
		out += ", " + x
	}
	return out + " and " + xs[len(xs)-1]
}
