package web

import (
	"context"
	"fmt"
	"net/url"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// SetupDemo points both environments at the built-in simulator served at simRoot, with the
// simulator's keys and a webhook signing secret each, then verifies them, so a newcomer sees a
// configured, verified dashboard within seconds. On a restart (the simulator gets a new port) only
// the base URL is moved; an environment the user pointed at a non-loopback URL is left alone.
func (s *Server) SetupDemo(ctx context.Context, simRoot string) error {
	keys := tensfer.DefaultSimKeys()
	a := db.Audit{Actor: "demo", Action: "environment.update"}
	for _, env := range tensfer.Environments() {
		name := string(env)
		e, err := s.db.EnvironmentByName(ctx, name)
		if err != nil {
			return err
		}
		if e.BaseURL != "" && !isLoopbackURL(e.BaseURL) {
			continue
		}
		base := tensfer.SimBaseURL(simRoot, env)
		if e.BaseURL != "" {
			// A previous demo run: follow the simulator to its new port.
			change, errs, err := s.validateEnvChange(ctx, name, envInput{BaseURL: &base})
			if err != nil {
				return err
			}
			if len(errs) > 0 {
				return fmt.Errorf("move %s to the simulator refused: %v", name, errs)
			}
			if _, err := s.db.UpdateEnvironment(ctx, name, change, a); err != nil {
				return err
			}
			if _, err := s.verify(ctx, name, db.Audit{Actor: "demo", Action: "environment.verify"}); err != nil {
				return err
			}
			continue
		}
		callback := s.publicURL("/callbacks/" + name + "/return")
		app := simRoot + "/app/" + name
		origins := []string{"http://localhost:3000"}
		k := keys[env]
		change, errs, err := s.validateEnvChange(ctx, name, envInput{
			BaseURL: &base, CallbackURL: &callback, AppURL: &app, AllowedOrigins: &origins,
			Keys: map[string]string{db.KeyClientToken: k.ClientToken, db.KeyPublic: k.PublicKey, db.KeySecret: k.SecretKey},
		})
		if err != nil {
			return err
		}
		if len(errs) > 0 {
			return fmt.Errorf("demo configuration of %s refused: %v", name, errs)
		}
		if _, err := s.db.UpdateEnvironment(ctx, name, change, a); err != nil {
			return err
		}
		if _, _, err := s.addWebhookSecret(ctx, name, "", 0, db.Audit{Actor: "demo", Action: "environment.webhook_secret_add"}); err != nil {
			return err
		}
		if _, err := s.verify(ctx, name, db.Audit{Actor: "demo", Action: "environment.verify"}); err != nil {
			return err
		}
	}
	return nil
}

func isLoopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && isLoopbackHost(u.Hostname())
}

// WebhookKeys returns env's active signing keys, for the demo simulator to sign with (read at
// each delivery, so a rotation in the UI takes effect).
func (s *Server) WebhookKeys(env tensfer.Environment) [][]byte {
	_, keys, err := s.activeWebhookKeys(context.Background(), string(env))
	if err != nil {
		s.log.Warn("demo: webhook keys", "env", string(env), "error", err)
		return nil
	}
	return keys
}

// TensferClients returns a Tensfer client per environment built from the stored configuration,
// whose calls are recorded as API-call events like the dashboard's own.
func (s *Server) TensferClients(ctx context.Context) (map[tensfer.Environment]*tensfer.Client, error) {
	out := map[tensfer.Environment]*tensfer.Client{}
	for _, env := range tensfer.Environments() {
		st, err := s.loadEnv(ctx, string(env))
		if err != nil {
			return nil, err
		}
		if st.env.BaseURL == "" {
			continue
		}
		c, _, err := s.tensferClient(st)
		if err != nil {
			return nil, err
		}
		out[env] = c
	}
	return out, nil
}
