package web

import (
	"context"
	"fmt"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// notConfiguredError means there is nothing to verify yet; its text says what to set.
type notConfiguredError string

func (e notConfiguredError) Error() string { return string(e) }

// openKeys decrypts the active keys of an environment.
func (s *Server) openKeys(st envState) (map[string]string, error) {
	out := map[string]string{}
	for _, kind := range db.KeyKinds {
		k, ok := st.active(kind)
		if !ok {
			continue
		}
		v, err := s.box.Open(k.Sealed, sealContext(st.env.Name, kind))
		if err != nil {
			return nil, fmt.Errorf("open %s %s: %w", st.env.Name, kind, err)
		}
		out[kind] = string(v)
	}
	return out, nil
}

// tensferClient builds a client for env from the stored configuration. It calls out through the
// SSRF-safe transport, since the base URL is user-configured.
func (s *Server) tensferClient(st envState) (*tensfer.Client, map[string]string, error) {
	keys, err := s.openKeys(st)
	if err != nil {
		return nil, nil, err
	}
	c, err := tensfer.New(tensfer.Config{
		Env: tensfer.Environment(st.env.Name), BaseURL: st.env.BaseURL,
		ClientToken: keys[db.KeyClientToken], PublicKey: keys[db.KeyPublic], SecretKey: keys[db.KeySecret],
		HTTPClient: s.safeHTTP, Timeout: 10 * time.Second, MaxRetries: -1,
		Observer:  s.observeTensferCall,
		UserAgent: "tensfer-golive-dashboard/" + s.cfg.Version,
	})
	return c, keys, err
}

// observeTensferCall logs each of the dashboard's own Tensfer calls with its request_id and
// records it as an API-call event, like the calls integrators report.
func (s *Server) observeTensferCall(ctx context.Context, c tensfer.Call) {
	s.log.LogAttrs(ctx, levelForCall(c), "tensfer call", callAttrs(c)...)
	s.recordOwnCall(ctx, c)
}

// verify checks every key set for env against Tensfer, in order secret, public, client token,
// and records the first failure (or success) with its request_id.
func (s *Server) verify(ctx context.Context, env string, a db.Audit) (db.Verification, error) {
	st, err := s.loadEnv(ctx, env)
	if err != nil {
		return db.Verification{}, err
	}
	if st.env.BaseURL == "" {
		return db.Verification{}, notConfiguredError("Set the " + env + " base URL before verifying.")
	}
	if _, ok := st.active(db.KeySecret); !ok {
		return db.Verification{}, notConfiguredError("Set the " + env + " secret API key before verifying.")
	}
	client, _, err := s.tensferClient(st)
	if err != nil {
		return db.Verification{}, err
	}
	v := db.Verification{Outcome: "ok", Basis: st.basis()}
	var checked []string
	var account string
	for _, kind := range []string{db.KeySecret, db.KeyPublic, db.KeyClientToken} {
		k, ok := st.active(kind)
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
			v.Outcome, v.Detail = describeVerifyError(env, keyLabels[kind], k.Last4, st.env.BaseURL, err)
			if te, ok := err.(*tensfer.Error); ok && te.RequestID != "" {
				v.RequestID = te.RequestID
			}
			break
		}
		account = cr.AccountName
		checked = append(checked, keyLabels[kind])
	}
	if v.Outcome == "ok" {
		v.Detail = fmt.Sprintf("Tensfer %s accepted the %s", env, joinAnd(checked))
		if account != "" {
			v.Detail += " for account " + account
		}
		v.Detail += "."
	}
	return v, s.db.RecordVerification(ctx, env, v, a)
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
