package web

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/environment"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

type keyJSON struct {
	Set         bool    `json:"set"`
	Last4       string  `json:"last4"`
	Fingerprint string  `json:"fingerprint"`
	UpdatedAt   *string `json:"updated_at"`
}

type secretJSON struct {
	ID            string  `json:"id"`
	Fingerprint   string  `json:"fingerprint"`
	Active        bool    `json:"active"`
	CreatedAt     string  `json:"created_at"`
	ExpiresAt     *string `json:"expires_at"`
	LastMatchedAt *string `json:"last_matched_at"`
}

type verificationJSON struct {
	Outcome    string  `json:"outcome"`
	Detail     string  `json:"detail"`
	RequestID  string  `json:"request_id"`
	VerifiedAt *string `json:"verified_at"`
	Stale      bool    `json:"stale"`
}

type environmentJSON struct {
	Name           string           `json:"name"`
	BaseURL        string           `json:"base_url"`
	CallbackURL    string           `json:"callback_url"`
	AppURL         string           `json:"app_url"`
	ReplayURL      string           `json:"replay_url"`
	AllowedOrigins []string         `json:"allowed_origins"`
	ClientToken    keyJSON          `json:"client_token"`
	PublicKey      keyJSON          `json:"public_key"`
	SecretKey      keyJSON          `json:"secret_key"`
	WebhookURL     string           `json:"webhook_url"`
	WebhookSecrets []secretJSON     `json:"webhook_secrets"`
	Verification   verificationJSON `json:"verification"`
	Version        int64            `json:"version"`
	UpdatedAt      *string          `json:"updated_at"`
}

func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := rfc3339(t)
	return &s
}

func (s *Server) environmentJSON(st environment.State) environmentJSON {
	now := s.now()
	key := func(kind string) keyJSON {
		k, ok := st.Active(kind)
		if !ok {
			return keyJSON{}
		}
		return keyJSON{Set: true, Last4: k.Last4, Fingerprint: k.Fingerprint, UpdatedAt: optTime(k.CreatedAt)}
	}
	e := st.Env
	out := environmentJSON{
		Name: e.Name, BaseURL: e.BaseURL, CallbackURL: e.CallbackURL, AppURL: e.AppURL, ReplayURL: e.ReplayURL, AllowedOrigins: e.AllowedOrigins,
		ClientToken: key(db.KeyClientToken), PublicKey: key(db.KeyPublic), SecretKey: key(db.KeySecret),
		WebhookURL: s.publicURL("/hooks/" + e.Name), WebhookSecrets: []secretJSON{}, Version: e.Version,
		Verification: verificationJSON{Outcome: e.VerifyOutcome, Detail: e.VerifyDetail, RequestID: e.VerifyRequestID,
			VerifiedAt: optTime(e.VerifiedAt), Stale: st.VerifyStale()},
	}
	if e.Version > 1 {
		out.UpdatedAt = optTime(e.UpdatedAt)
	}
	if out.AllowedOrigins == nil {
		out.AllowedOrigins = []string{}
	}
	for _, sec := range st.Secrets {
		out.WebhookSecrets = append(out.WebhookSecrets, secretJSON{ID: sec.ID, Fingerprint: sec.Fingerprint, Active: sec.Active(now),
			CreatedAt: rfc3339(sec.CreatedAt), ExpiresAt: optTime(sec.ExpiresAt), LastMatchedAt: optTime(sec.LastMatchedAt)})
	}
	return out
}

// apiListEnvironments is GET /api/v1/environments.
func (s *Server) apiListEnvironments(w http.ResponseWriter, r *http.Request) error {
	out := struct {
		Environments []environmentJSON `json:"environments"`
	}{}
	states, err := s.envs.LoadAll(r.Context())
	if err != nil {
		return err
	}
	for _, st := range states {
		out.Environments = append(out.Environments, s.environmentJSON(st))
	}
	return writeJSON(w, http.StatusOK, out)
}

// apiShowEnvironment is GET /api/v1/environments/{env}: keys as {set, last4, fingerprint}.
func (s *Server) apiShowEnvironment(w http.ResponseWriter, r *http.Request) error {
	env, err := envParam(r)
	if err != nil {
		return err
	}
	st, err := s.envs.Load(r.Context(), env)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.environmentJSON(st))
}

// fieldsError is a 422 whose body lists the message for each field.
type fieldsError struct {
	Error struct {
		Code      string            `json:"code"`
		Message   string            `json:"message"`
		RequestID string            `json:"request_id"`
		Fields    map[string]string `json:"fields"`
	} `json:"error"`
}

func writeFieldErrors(w http.ResponseWriter, r *http.Request, fields map[string]string) error {
	var out fieldsError
	out.Error.Code = "validation_failed"
	out.Error.Message = fieldsSentence(fields)
	out.Error.RequestID = requestIDFrom(r.Context())
	out.Error.Fields = fields
	return writeJSON(w, http.StatusUnprocessableEntity, out)
}

type patchEnvironment struct {
	BaseURL        *string   `json:"base_url"`
	CallbackURL    *string   `json:"callback_url"`
	AppURL         *string   `json:"app_url"`
	ReplayURL      *string   `json:"replay_url"`
	AllowedOrigins *[]string `json:"allowed_origins"`
	ClientToken    *string   `json:"client_token"`
	PublicKey      *string   `json:"public_key"`
	SecretKey      *string   `json:"secret_key"`
	KeepPrevious   *string   `json:"keep_previous"`
}

// apiUpdateEnvironment is PATCH /api/v1/environments/{env}: any of the URL fields and keys
// (write-only). Nothing is stored unless every field is valid.
func (s *Server) apiUpdateEnvironment(w http.ResponseWriter, r *http.Request) error {
	env, err := envParam(r)
	if err != nil {
		return err
	}
	var p patchEnvironment
	if err := decodeJSON(r, &p); err != nil {
		return err
	}
	in := environment.Input{BaseURL: p.BaseURL, CallbackURL: p.CallbackURL, AppURL: p.AppURL, ReplayURL: p.ReplayURL, AllowedOrigins: p.AllowedOrigins, Keys: map[string]string{}}
	fields := validation.Errors{}
	for kind, v := range map[string]*string{db.KeyClientToken: p.ClientToken, db.KeyPublic: p.PublicKey, db.KeySecret: p.SecretKey} {
		if v == nil {
			continue
		}
		if strings.TrimSpace(*v) == "" {
			fields[kind] = environment.KeyLabel(kind) + " cannot be cleared; roll it to a new value instead"
			continue
		}
		in.Keys[kind] = *v
	}
	if p.KeepPrevious != nil {
		d, err := time.ParseDuration(*p.KeepPrevious)
		if err != nil {
			fields["keep_previous"] = "keep_previous must be a duration such as 24h"
		}
		in.KeepPrevious = d
	}
	if len(fields) > 0 {
		// Report every problem at once: the edge's and the rules'.
		_, errs, err := s.envs.Validate(r.Context(), env, in)
		if err != nil {
			return err
		}
		for k, v := range errs {
			fields[k] = v
		}
		return writeFieldErrors(w, r, fields)
	}
	_, err = s.envs.Update(r.Context(), env, in, s.auditFor(r, "environment.update"))
	if errors.Is(err, environment.ErrUnchanged) {
		err = nil // idempotent: the same values again answer the same state, unaudited
	}
	if errors.Is(err, environment.ErrNothingToChange) {
		return errBadRequest("nothing to change; send any of base_url, callback_url, app_url, replay_url, allowed_origins, client_token, public_key, secret_key")
	}
	if err != nil {
		return err
	}
	st, err := s.envs.Load(r.Context(), env)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.environmentJSON(st))
}

// apiShowConfig is GET /api/v1/environments/{env}/config: what an app needs to talk to Tensfer.
// The secret key is included only for tokens with secrets:read, and that read is audited. Keys
// rolled with an overlap are listed under previous_keys until they stop being served. ETag and
// If-None-Match let apps poll cheaply.
func (s *Server) apiShowConfig(w http.ResponseWriter, r *http.Request) error {
	env, err := envParam(r)
	if err != nil {
		return err
	}
	st, err := s.envs.Load(r.Context(), env)
	if err != nil {
		return err
	}
	t, _ := tokenFrom(r.Context())
	withSecret := auth.HasScope(t.Scopes, auth.ScopeSecretsRead)
	out, err := s.envs.AppConfig(st, withSecret)
	if err != nil {
		return err
	}
	body, err := json.Marshal(out)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "private, no-cache")
	if withSecret {
		w.Header().Set("Cache-Control", "no-store") // never written to a cache on disk
	}
	w.Header().Set("Vary", "Authorization")
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if withSecret && out.SecretKey != nil {
		if err := s.envs.AuditSecretRead(r.Context(), st, s.auditFor(r, "environment.secret_read")); err != nil {
			return err
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(append(body, '\n'))
	return err
}

func etagMatches(header, etag string) bool {
	for _, c := range strings.Split(header, ",") {
		c = strings.TrimPrefix(strings.TrimSpace(c), "W/")
		if c == etag || c == "*" {
			return true
		}
	}
	return false
}

// apiCreateWebhookSecret is POST /api/v1/environments/{env}/webhook-secrets: {"secret":"whsec_.."}
// adds that secret; an empty body generates one and returns it once.
func (s *Server) apiCreateWebhookSecret(w http.ResponseWriter, r *http.Request) error {
	env, err := envParam(r)
	if err != nil {
		return err
	}
	var in struct {
		Secret    string `json:"secret"`
		ExpiresIn string `json:"expires_in"`
	}
	if err := decodeOptionalJSON(r, &in); err != nil {
		return err
	}
	var expires time.Duration
	if in.ExpiresIn != "" {
		if expires, err = time.ParseDuration(in.ExpiresIn); err != nil || expires <= 0 {
			return writeFieldErrors(w, r, map[string]string{"expires_in": "expires_in must be a positive duration such as 168h"})
		}
	}
	sec, generated, err := s.envs.AddWebhookSecret(r.Context(), env, in.Secret, expires, s.auditFor(r, "environment.webhook_secret_add"))
	var problem validation.Problem
	if errors.As(err, &problem) {
		return writeFieldErrors(w, r, map[string]string{"secret": string(problem)})
	}
	if err != nil {
		return err
	}
	out := map[string]any{"id": sec.ID, "fingerprint": sec.Fingerprint, "expires_at": optTime(sec.ExpiresAt)}
	if generated != "" {
		out["secret"] = generated
	}
	return writeJSON(w, http.StatusCreated, out)
}

// apiDeleteWebhookSecret is DELETE /api/v1/environments/{env}/webhook-secrets/{id}: retires it.
func (s *Server) apiDeleteWebhookSecret(w http.ResponseWriter, r *http.Request) error {
	env, err := envParam(r)
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	err = s.envs.RetireWebhookSecret(r.Context(), env, id, s.auditFor(r, "environment.webhook_secret_retire"))
	if errors.Is(err, db.ErrNotFound) {
		return errNotFound(fmt.Sprintf("no active webhook secret %q in %s", id, env))
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// apiVerifyEnvironment is POST /api/v1/environments/{env}/verify.
func (s *Server) apiVerifyEnvironment(w http.ResponseWriter, r *http.Request) error {
	env, err := envParam(r)
	if err != nil {
		return err
	}
	v, err := s.envs.Verify(r.Context(), env, s.auditFor(r, "environment.verify"))
	var problem validation.Problem
	if errors.As(err, &problem) {
		return &httpError{status: http.StatusConflict, code: "not_configured", msg: string(problem)}
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, verificationJSON{Outcome: v.Outcome, Detail: v.Detail, RequestID: v.RequestID, VerifiedAt: optTime(s.now())})
}
