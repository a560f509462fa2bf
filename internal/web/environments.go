package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/environment"
	"github.com/tensfer-golive/dashboard/internal/validation"
	"github.com/tensfer-golive/dashboard/web/templates"
)

func (s *Server) publicURL(path string) string {
	return strings.TrimRight(s.cfg.PublicURL.String(), "/") + path
}

// envCard builds the view of one environment for the user's role.
func (s *Server) envCard(st environment.State, role db.Role) templates.EnvCard {
	e := st.Env
	now := s.now()
	c := templates.EnvCard{
		Name: e.Name, Production: e.Name == "production",
		BaseURL: e.BaseURL, CallbackURL: e.CallbackURL, AppURL: e.AppURL, ReplayURL: e.ReplayURL,
		AllowedOrigins: strings.Join(e.AllowedOrigins, "\n"),
		WebhookURL:     s.publicURL("/hooks/" + e.Name),
		ReturnURL:      s.publicURL("/callbacks/" + e.Name + "/return"),
		BeaconURL:      s.publicURL("/callbacks/" + e.Name),
		UpdatedAt:      e.UpdatedAt, UpdatedBy: e.UpdatedBy,
		CanEdit:   role.AtLeast(db.RoleAdmin),
		CanVerify: role.AtLeast(db.RoleOperator),
		Errors:    templates.FieldErrors{},
		Verify: templates.VerifyVM{At: e.VerifiedAt, Outcome: e.VerifyOutcome, Detail: e.VerifyDetail,
			RequestID: e.VerifyRequestID, Stale: st.VerifyStale()},
	}
	if e.Version == 1 {
		c.UpdatedAt = time.Time{}
	}
	for _, kind := range db.KeyKinds {
		row := templates.KeyRow{Kind: kind, Label: environment.KeyLabel(kind)}
		if k, ok := st.Active(kind); ok {
			row.ID, row.Set, row.Last4, row.Fingerprint, row.SetAt, row.SetBy = k.ID, true, k.Last4, k.Fingerprint, k.CreatedAt, k.CreatedBy
		}
		c.Keys = append(c.Keys, row)
	}
	for _, k := range st.Keys {
		if !k.Active() {
			c.History = append(c.History, templates.KeyRow{ID: k.ID, Kind: k.Kind, Label: environment.KeyLabel(k.Kind), Last4: k.Last4, Fingerprint: k.Fingerprint,
				SetAt: k.CreatedAt, SetBy: k.CreatedBy, RetiredAt: k.RetiredAt, ServedUntil: k.ExpiresAt, StillServed: k.Served(now)})
		}
	}
	for _, sec := range st.Secrets {
		c.Secrets = append(c.Secrets, templates.SecretRow{ID: sec.ID, Fingerprint: sec.Fingerprint, CreatedAt: sec.CreatedAt, CreatedBy: sec.CreatedBy,
			ExpiresAt: sec.ExpiresAt, LastMatched: sec.LastMatchedAt, Active: sec.Active(now), RetiredAt: sec.RetiredAt})
	}
	return c
}

// renderEnvironments renders the page; edit, if set, adjusts the card of one environment (to show
// errors with the user's input kept, or a secret shown once).
func (s *Server) renderEnvironments(w http.ResponseWriter, r *http.Request, status int, env string, edit func(*templates.EnvCard)) error {
	u, _ := userFrom(r.Context())
	vm := templates.EnvironmentsVM{Layout: s.page(w, r, "environments", "Environments")}
	states, err := s.envs.LoadAll(r.Context())
	if err != nil {
		return err
	}
	for _, st := range states {
		c := s.envCard(st, u.Role)
		k, text, err := s.envs.BeaconKey(r.Context(), st.Env.Name)
		if err != nil {
			return err
		}
		c.BeaconKeyID, c.BeaconKeySince = k.ID, k.CreatedAt
		if c.CanEdit {
			c.BeaconKey = text
		}
		if st.Env.Name == env && edit != nil {
			edit(&c)
			if len(c.Errors) > 0 {
				formFailed(&vm.Layout, "Not saved", c.Errors)
			}
			if c.NewSecret != "" {
				vm.Layout.FlashKind, vm.Layout.Flash = "ok", "New signing secret for "+env+": copy it under Webhook signing secrets below; it is shown only once."
			}
		}
		vm.Envs = append(vm.Envs, c)
	}
	return render(w, r, status, templates.EnvironmentsPage(vm))
}

func (s *Server) showEnvironments(w http.ResponseWriter, r *http.Request) error {
	return s.renderEnvironments(w, r, http.StatusOK, "", nil)
}

func formStr(r *http.Request, name string) *string {
	if _, ok := r.PostForm[name]; !ok {
		return nil
	}
	v := r.PostForm.Get(name)
	return &v
}

// updateEnvironmentURLs saves the URL fields of one environment from the form.
func (s *Server) updateEnvironmentURLs(w http.ResponseWriter, r *http.Request) error {
	env, err := envParam(r)
	if err != nil {
		return err
	}
	in := environment.Input{BaseURL: formStr(r, "base_url"), CallbackURL: formStr(r, "callback_url"), AppURL: formStr(r, "app_url"), ReplayURL: formStr(r, "replay_url")}
	if o := formStr(r, "allowed_origins"); o != nil {
		lines := strings.FieldsFunc(*o, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' })
		in.AllowedOrigins = &lines
	}
	if in.BaseURL == nil && in.CallbackURL == nil && in.AppURL == nil && in.ReplayURL == nil && in.AllowedOrigins == nil {
		// Not the form (another Content-Type, or no fields): saying "saved" would be a lie.
		return errBadRequest("send the environment form's fields (base_url, callback_url, app_url, replay_url, allowed_origins) as application/x-www-form-urlencoded")
	}
	_, err = s.envs.Update(r.Context(), env, in, s.auditFor(r, "environment.update"))
	var errs validation.Errors
	if errors.As(err, &errs) {
		return s.renderEnvironments(w, r, http.StatusUnprocessableEntity, env, func(c *templates.EnvCard) {
			c.Errors = templates.FieldErrors(errs)
			c.BaseURL, c.CallbackURL, c.AppURL, c.AllowedOrigins = r.PostForm.Get("base_url"), r.PostForm.Get("callback_url"), r.PostForm.Get("app_url"), r.PostForm.Get("allowed_origins")
			c.ReplayURL = r.PostForm.Get("replay_url")
		})
	}
	if errors.Is(err, environment.ErrUnchanged) {
		setFlash(w, r, "info", "Nothing to save: the "+env+" URLs were already these.")
		return redirect(w, r, "/environments#env-"+env)
	}
	if err != nil && !errors.Is(err, environment.ErrNothingToChange) {
		return err
	}
	setFlash(w, r, "ok", "Saved the "+env+" URLs.")
	return redirect(w, r, "/environments#env-"+env)
}

// setEnvKey sets or rolls one key of an environment.
func (s *Server) setEnvKey(w http.ResponseWriter, r *http.Request) error {
	env, err := envParam(r)
	if err != nil {
		return err
	}
	kind := r.PostForm.Get("kind")
	label := environment.KeyLabel(kind)
	if label == "" {
		return errBadRequest("kind must be client_token, public_key or secret_key")
	}
	in := environment.Input{Keys: map[string]string{kind: r.PostForm.Get("value")}}
	if v := r.PostForm.Get("keep_previous"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return errBadRequest("keep_previous must be a duration such as 24h")
		}
		in.KeepPrevious = d
	}
	var change db.EnvChange
	errs := validation.Errors{}
	if strings.TrimSpace(r.PostForm.Get("value")) == "" {
		errs[kind] = "paste the new " + label + " to set it"
	} else {
		change, err = s.envs.Update(r.Context(), env, in, s.auditFor(r, "environment.key_set"))
		if !errors.As(err, &errs) && err != nil {
			return err
		}
	}
	if len(errs) > 0 {
		return s.renderEnvironments(w, r, http.StatusUnprocessableEntity, env, func(c *templates.EnvCard) { c.Errors = templates.FieldErrors(errs) })
	}
	setFlash(w, r, "ok", fmt.Sprintf("Saved the %s %s (…%s). Verify it against Tensfer.", env, label, change.Keys[0].Last4))
	return redirect(w, r, "/environments#env-"+env)
}

// revealEnvKey shows one stored key after the admin types their password again and says why.
// The answer is not cached and the reveal is audited.
func (s *Server) revealEnvKey(w http.ResponseWriter, r *http.Request) error {
	env, err := envParam(r)
	if err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if msg := s.reauth(r, "environment.key_reveal"); msg != "" {
		setFlash(w, r, "err", "Not revealed: "+msg+".")
		return redirect(w, r, "/environments")
	}
	k, value, err := s.envs.RevealKey(r.Context(), env, id, r.PostForm.Get("reason"), s.auditFor(r, "environment.key_reveal"))
	var problem validation.Problem
	switch {
	case errors.As(err, &problem):
		setFlash(w, r, "err", "Not revealed: "+string(problem)+".")
		return redirect(w, r, "/environments")
	case errors.Is(err, db.ErrNotFound):
		return errNotFound("no such key")
	case err != nil:
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return render(w, r, http.StatusOK, templates.RevealPage(templates.RevealVM{
		Layout: s.page(w, r, "environments", "Revealed key"), Env: env, Label: environment.KeyLabel(k.Kind),
		Value: value, Last4: k.Last4, Reason: strings.TrimSpace(r.PostForm.Get("reason"))}))
}

// verifyEnvironment calls Tensfer with the environment's configuration and records the outcome.
func (s *Server) verifyEnvironment(w http.ResponseWriter, r *http.Request) error {
	env, err := envParam(r)
	if err != nil {
		return err
	}
	v, err := s.envs.Verify(r.Context(), env, s.auditFor(r, "environment.verify"))
	if done, err := flashProblem(w, r, err, "/environments#env-"+env); done {
		return err
	}
	kind := "ok"
	if v.Outcome != "ok" {
		kind = "err"
	}
	setFlash(w, r, kind, fmt.Sprintf("Verify %s: %s", env, v.Detail))
	return redirect(w, r, "/environments#env-"+env)
}

// createWebhookSecret generates a signing secret (shown once) or adds the one pasted from Tensfer.
func (s *Server) createWebhookSecret(w http.ResponseWriter, r *http.Request) error {
	env, err := envParam(r)
	if err != nil {
		return err
	}
	var expires time.Duration
	if v := r.PostForm.Get("expires_in"); v != "" {
		if expires, err = time.ParseDuration(v); err != nil || expires <= 0 {
			return errBadRequest("expires_in must be a positive duration such as 24h")
		}
	}
	sec, generated, err := s.envs.AddWebhookSecret(r.Context(), env, r.PostForm.Get("secret"), expires, s.auditFor(r, "environment.webhook_secret_add"))
	var problem validation.Problem
	if errors.As(err, &problem) {
		return s.renderEnvironments(w, r, http.StatusUnprocessableEntity, env, func(c *templates.EnvCard) { c.Errors = templates.FieldErrors{"secret": string(problem)} })
	}
	if err != nil {
		return err
	}
	if generated != "" {
		w.Header().Set("Cache-Control", "no-store")
		return s.renderEnvironments(w, r, http.StatusCreated, env, func(c *templates.EnvCard) { c.NewSecret = generated })
	}
	setFlash(w, r, "ok", fmt.Sprintf("Added signing secret %s to %s.", sec.ID, env))
	return redirect(w, r, "/environments#env-"+env)
}

// rotateBeaconKey replaces an environment's beacon key; tokens minted with the old one keep
// verifying for environment.BeaconKeyOverlap.
func (s *Server) rotateBeaconKey(w http.ResponseWriter, r *http.Request) error {
	env, err := envParam(r)
	if err != nil {
		return err
	}
	k, _, err := s.envs.RotateBeaconKey(r.Context(), env, s.auditFor(r, "environment.beacon_key_rotate"))
	if err != nil {
		return err
	}
	setFlash(w, r, "ok", fmt.Sprintf("New beacon key %s for %s: mint tokens with it from now on; tokens minted with the old key verify for %s more.",
		k.ID, env, environment.BeaconKeyOverlap))
	return redirect(w, r, "/environments#env-"+env)
}

func (s *Server) retireWebhookSecret(w http.ResponseWriter, r *http.Request) error {
	env, err := envParam(r)
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	err = s.envs.RetireWebhookSecret(r.Context(), env, id, s.auditFor(r, "environment.webhook_secret_retire"))
	if errors.Is(err, db.ErrNotFound) {
		setFlash(w, r, "err", "That secret does not exist or is already retired.")
		return redirect(w, r, "/environments#env-"+env)
	}
	if err != nil {
		return err
	}
	setFlash(w, r, "ok", "Retired signing secret "+id+".")
	return redirect(w, r, "/environments#env-"+env)
}
