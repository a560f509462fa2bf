package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// envParam reads and validates the {env} path parameter.
func envParam(r *http.Request) (string, error) {
	env := chi.URLParam(r, "env")
	if env != "sandbox" && env != "production" {
		return "", errNotFound(fmt.Sprintf("there is no environment %q; use sandbox or production", env))
	}
	return env, nil
}

// envState is everything stored about one environment, loaded together.
type envState struct {
	env     db.Environment
	keys    []db.EnvKey // active first, then history
	secrets []db.WebhookSecret
}

func (st envState) active(kind string) (db.EnvKey, bool) {
	for _, k := range st.keys {
		if k.Kind == kind && k.Active() {
			return k, true
		}
	}
	return db.EnvKey{}, false
}

// basis identifies what a verification checked: the base URL and which key rows were active.
// Key row ids change when a key is set or rolled and not when the master key is rotated, so a
// rotation does not make a verification stale.
func (st envState) basis() string {
	parts := []string{st.env.BaseURL}
	for _, kind := range db.KeyKinds {
		k, _ := st.active(kind)
		parts = append(parts, strconv.FormatInt(k.ID, 10))
	}
	return strings.Join(parts, "|")
}

func (s *Server) loadEnv(ctx context.Context, name string) (envState, error) {
	var st envState
	var err error
	if st.env, err = s.db.EnvironmentByName(ctx, name); err != nil {
		return st, err
	}
	if st.keys, err = s.db.ListEnvKeys(ctx, name); err != nil {
		return st, err
	}
	st.secrets, err = s.db.ListWebhookSecrets(ctx, name)
	return st, err
}

func (s *Server) publicURL(path string) string {
	return strings.TrimRight(s.cfg.PublicURL.String(), "/") + path
}

// envCard builds the view of one environment for the user's role.
func (s *Server) envCard(st envState, role db.Role) templates.EnvCard {
	e := st.env
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
			RequestID: e.VerifyRequestID, Stale: e.VerifyOutcome != "" && e.VerifyBasis != st.basis()},
	}
	if e.Version == 1 {
		c.UpdatedAt = time.Time{}
	}
	for _, kind := range db.KeyKinds {
		row := templates.KeyRow{Kind: kind, Label: keyLabels[kind]}
		if k, ok := st.active(kind); ok {
			row.ID, row.Set, row.Last4, row.Fingerprint, row.SetAt, row.SetBy = k.ID, true, k.Last4, k.Fingerprint, k.CreatedAt, k.CreatedBy
		}
		c.Keys = append(c.Keys, row)
	}
	for _, k := range st.keys {
		if !k.Active() {
			c.History = append(c.History, templates.KeyRow{ID: k.ID, Kind: k.Kind, Label: keyLabels[k.Kind], Last4: k.Last4, Fingerprint: k.Fingerprint,
				SetAt: k.CreatedAt, SetBy: k.CreatedBy, RetiredAt: k.RetiredAt, ServedUntil: k.ExpiresAt, StillServed: k.Served(now)})
		}
	}
	for _, sec := range st.secrets {
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
	for _, name := range []string{"sandbox", "production"} {
		st, err := s.loadEnv(r.Context(), name)
		if err != nil {
			return err
		}
		c := s.envCard(st, u.Role)
		if name == env && edit != nil {
			edit(&c)
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
	in := envInput{BaseURL: formStr(r, "base_url"), CallbackURL: formStr(r, "callback_url"), AppURL: formStr(r, "app_url"), ReplayURL: formStr(r, "replay_url")}
	if o := formStr(r, "allowed_origins"); o != nil {
		lines := strings.FieldsFunc(*o, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' })
		in.AllowedOrigins = &lines
	}
	change, errs, err := s.validateEnvChange(r.Context(), env, in)
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		return s.renderEnvironments(w, r, http.StatusUnprocessableEntity, env, func(c *templates.EnvCard) {
			c.Errors = errs
			c.BaseURL, c.CallbackURL, c.AppURL, c.AllowedOrigins = r.PostForm.Get("base_url"), r.PostForm.Get("callback_url"), r.PostForm.Get("app_url"), r.PostForm.Get("allowed_origins")
			c.ReplayURL = r.PostForm.Get("replay_url")
		})
	}
	if _, err := s.db.UpdateEnvironment(r.Context(), env, change, s.auditFor(r, "environment.update")); err != nil {
		return err
	}
	setFlash(w, "ok", "Saved the "+env+" URLs.")
	return redirect(w, r, "/environments#env-"+env)
}

// setEnvKey sets or rolls one key of an environment.
func (s *Server) setEnvKey(w http.ResponseWriter, r *http.Request) error {
	env, err := envParam(r)
	if err != nil {
		return err
	}
	kind := r.PostForm.Get("kind")
	if keyLabels[kind] == "" {
		return errBadRequest("kind must be client_token, public_key or secret_key")
	}
	in := envInput{Keys: map[string]string{kind: r.PostForm.Get("value")}}
	if v := r.PostForm.Get("keep_previous"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return errBadRequest("keep_previous must be a duration such as 24h")
		}
		in.KeepPrevious = d
	}
	errs := templates.FieldErrors{}
	if strings.TrimSpace(r.PostForm.Get("value")) == "" {
		errs[kind] = "paste the new " + keyLabels[kind] + " to set it"
	}
	change, verrs, err := s.validateEnvChange(r.Context(), env, in)
	if err != nil {
		return err
	}
	for k, v := range verrs {
		errs[k] = v
	}
	if len(errs) > 0 {
		return s.renderEnvironments(w, r, http.StatusUnprocessableEntity, env, func(c *templates.EnvCard) { c.Errors = errs })
	}
	if _, err := s.db.UpdateEnvironment(r.Context(), env, change, s.auditFor(r, "environment.key_set")); err != nil {
		return err
	}
	setFlash(w, "ok", fmt.Sprintf("Saved the %s %s (…%s). Verify it against Tensfer.", env, keyLabels[kind], change.Keys[0].Last4))
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
	u, _ := userFrom(r.Context())
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if !s.checkPassword(r.Context(), r.PostForm.Get("password"), u.PasswordHash) {
		setFlash(w, "err", "Not revealed: your password was incorrect.")
		return redirect(w, r, "/environments#env-"+env)
	}
	if reason == "" || len(reason) > 200 {
		setFlash(w, "err", "Not revealed: say why you need the key (up to 200 characters); it goes into the audit log.")
		return redirect(w, r, "/environments#env-"+env)
	}
	k, err := s.db.EnvKeyByID(r.Context(), id)
	if err != nil || k.Env != env {
		return errNotFound("no such key")
	}
	value, err := s.box.Open(k.Sealed, sealContext(k.Env, k.Kind))
	if err != nil {
		return err
	}
	a := s.auditFor(r, "environment.key_reveal")
	a.Target = "environment:" + env
	a.After = map[string]any{"key": k.Kind, "last4": k.Last4, "fingerprint": k.Fingerprint, "reason": reason}
	if err := s.db.InsertAudit(r.Context(), a); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return render(w, r, http.StatusOK, templates.RevealPage(templates.RevealVM{
		Layout: s.page(w, r, "environments", "Revealed key"), Env: env, Label: keyLabels[k.Kind],
		Value: string(value), Last4: k.Last4, Reason: reason}))
}

// verifyEnvironment calls Tensfer with the environment's configuration and records the outcome.
func (s *Server) verifyEnvironment(w http.ResponseWriter, r *http.Request) error {
	env, err := envParam(r)
	if err != nil {
		return err
	}
	v, err := s.verify(r.Context(), env, s.auditFor(r, "environment.verify"))
	var nc notConfiguredError
	if errors.As(err, &nc) {
		setFlash(w, "err", string(nc))
		return redirect(w, r, "/environments#env-"+env)
	}
	if err != nil {
		return err
	}
	kind := "ok"
	if v.Outcome != "ok" {
		kind = "err"
	}
	setFlash(w, kind, fmt.Sprintf("Verify %s: %s", env, v.Detail))
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
	sec, generated, err := s.addWebhookSecret(r.Context(), env, strings.TrimSpace(r.PostForm.Get("secret")), expires, s.auditFor(r, "environment.webhook_secret_add"))
	var ve validationError
	if errors.As(err, &ve) {
		return s.renderEnvironments(w, r, http.StatusUnprocessableEntity, env, func(c *templates.EnvCard) { c.Errors = templates.FieldErrors{"secret": string(ve)} })
	}
	if err != nil {
		return err
	}
	if generated != "" {
		w.Header().Set("Cache-Control", "no-store")
		return s.renderEnvironments(w, r, http.StatusCreated, env, func(c *templates.EnvCard) { c.NewSecret = generated })
	}
	setFlash(w, "ok", fmt.Sprintf("Added signing secret %s to %s.", sec.ID, env))
	return redirect(w, r, "/environments#env-"+env)
}

func (s *Server) retireWebhookSecret(w http.ResponseWriter, r *http.Request) error {
	env, err := envParam(r)
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	err = s.retireSecret(r, env, id)
	if errors.Is(err, db.ErrNotFound) {
		setFlash(w, "err", "That secret does not exist or is already retired.")
		return redirect(w, r, "/environments#env-"+env)
	}
	if err != nil {
		return err
	}
	setFlash(w, "ok", "Retired signing secret "+id+".")
	return redirect(w, r, "/environments#env-"+env)
}

// validationError is bad input described for a person.
type validationError string

func (e validationError) Error() string { return string(e) }

// addWebhookSecret stores secret (a whsec_ value) for env, or generates one when secret is empty
// and returns it (the only time it is available in clear).
func (s *Server) addWebhookSecret(ctx context.Context, env, secret string, expiresIn time.Duration, a db.Audit) (db.WebhookSecret, string, error) {
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
		return db.WebhookSecret{}, "", validationError(strings.TrimPrefix(err.Error(), "tensfer: "))
	}
	id := "whs_" + auth.RandomID(9)
	sealed, err := s.box.Seal([]byte(secret), sealContext(env, "webhook_secret/"+id))
	if err != nil {
		return db.WebhookSecret{}, "", err
	}
	sec := db.WebhookSecret{ID: id, Env: env, Sealed: sealed, Fingerprint: s.box.Fingerprint(key)}
	if expiresIn > 0 {
		sec.ExpiresAt = s.now().Add(expiresIn)
	}
	sec, err = s.db.InsertWebhookSecret(ctx, sec, a)
	s.secrets.invalidate()
	if errors.Is(err, db.ErrConflict) {
		return db.WebhookSecret{}, "", validationError("this signing secret is already active for " + env)
	}
	return sec, generated, err
}

// retireSecret stops a signing secret from verifying deliveries, at once.
func (s *Server) retireSecret(r *http.Request, env, id string) error {
	defer s.secrets.invalidate()
	return s.db.RetireWebhookSecret(r.Context(), env, id, s.auditFor(r, "environment.webhook_secret_retire"))
}
