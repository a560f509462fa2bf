// Package environment owns the configuration of the two Tensfer environments: the URL, origin
// and key rules (each checked against the other environment, for the classic go-live mistakes),
// sealing and revealing keys, webhook signing secrets, verifying keys against Tensfer, the app
// config integrators read, and the go-live checklist as a pure function of stored state.
//
// It knows nothing of HTTP or templates: functions take plain input and return plain results,
// with bad input as validation.Errors (field by field) or validation.Problem.
package environment

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/metrics"
	"github.com/tensfer-golive/dashboard/internal/secrets"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// Names lists the environments, sandbox first.
var Names = []string{string(tensfer.Sandbox), string(tensfer.Production)}

// Valid reports whether name is sandbox or production.
func Valid(name string) bool { return tensfer.Environment(name).Valid() }

// Other returns the environment that is not name.
func Other(name string) string {
	if name == string(tensfer.Production) {
		return string(tensfer.Sandbox)
	}
	return string(tensfer.Production)
}

// KeyLabel is how a person calls a key kind ("secret API key").
func KeyLabel(kind string) string { return keyLabels[kind] }

var keyLabels = map[string]string{
	db.KeyClientToken: "client token",
	db.KeyPublic:      "public API key",
	db.KeySecret:      "secret API key",
}

// Config is what a Service needs. Observer and SecretsChanged connect it to the event pipeline
// without this package importing it.
type Config struct {
	DB  *db.DB
	Box *secrets.Box
	Now func() time.Time
	// HTTPClient makes the Tensfer calls of Verify; it must refuse internal addresses (the base
	// URL is user-configured), i.e. come from safehttp.
	HTTPClient *http.Client
	// AllowLoopbackURLs accepts http://localhost URLs in production (the demo's simulator, tests).
	AllowLoopbackURLs bool
	UserAgent         string
	// Observer sees each of the dashboard's own Tensfer calls (to log and record them).
	Observer func(context.Context, tensfer.Call)
	// SecretsChanged is called after a webhook signing secret is added or retired.
	SecretsChanged func()
	// Metrics counts verification outcomes (nil: none).
	Metrics *metrics.Metrics
}

// Service applies the environment rules to the database.
type Service struct{ cfg Config }

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SecretsChanged == nil {
		cfg.SecretsChanged = func() {}
	}
	return &Service{cfg: cfg}
}

// State is everything stored about one environment, loaded together.
type State struct {
	Env     db.Environment
	Keys    []db.EnvKey // active first, then history
	Secrets []db.WebhookSecret
}

// Active returns the active key of kind, if one is set.
func (st State) Active(kind string) (db.EnvKey, bool) {
	for _, k := range st.Keys {
		if k.Kind == kind && k.Active() {
			return k, true
		}
	}
	return db.EnvKey{}, false
}

// Basis identifies what a verification checked: the base URL and which key rows were active.
// Key row ids change when a key is set or rolled and not when the master key is rotated, so a
// rotation does not make a verification stale.
func (st State) Basis() string {
	parts := []string{st.Env.BaseURL}
	for _, kind := range db.KeyKinds {
		k, _ := st.Active(kind)
		parts = append(parts, strconv.FormatInt(k.ID, 10))
	}
	return strings.Join(parts, "|")
}

// Verified reports whether the last verification succeeded against what is configured now.
func (st State) Verified() bool {
	return st.Env.VerifyOutcome == "ok" && st.Env.VerifyBasis == st.Basis()
}

// VerifyStale reports whether a verification was recorded for another configuration.
func (st State) VerifyStale() bool {
	return st.Env.VerifyOutcome != "" && st.Env.VerifyBasis != st.Basis()
}

// HasActiveSecret reports whether a webhook signing secret verifies deliveries at now.
func (st State) HasActiveSecret(now time.Time) bool {
	for _, sec := range st.Secrets {
		if sec.Active(now) {
			return true
		}
	}
	return false
}

// Load reads one environment with its keys and webhook secrets. An unknown name is
// db.ErrNotFound.
func (s *Service) Load(ctx context.Context, name string) (State, error) {
	var st State
	if !Valid(name) {
		return st, db.ErrNotFound
	}
	var err error
	if st.Env, err = s.cfg.DB.EnvironmentByName(ctx, name); err != nil {
		return st, err
	}
	if st.Keys, err = s.cfg.DB.ListEnvKeys(ctx, name); err != nil {
		return st, err
	}
	st.Secrets, err = s.cfg.DB.ListWebhookSecrets(ctx, name)
	return st, err
}

// LoadAll reads both environments, sandbox first.
func (s *Service) LoadAll(ctx context.Context) ([]State, error) {
	out := make([]State, 0, len(Names))
	for _, name := range Names {
		st, err := s.Load(ctx, name)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// ErrNothingToChange is Update's answer to an input that names no field.
var ErrNothingToChange = errors.New("environment: nothing to change")

// ErrUnchanged is Update's answer to an input whose every value is the one already set: nothing
// is written and nothing audited (saving a form untouched leaves no trace).
var ErrUnchanged = errors.New("environment: every value is the one already set")

// Update validates in against the rules and the other environment and, when every field is
// valid, applies it in one transaction with the audit row. Invalid input returns
// validation.Errors and changes nothing; an input with nothing to change is a validation.Problem.
func (s *Service) Update(ctx context.Context, env string, in Input, a db.Audit) (db.EnvChange, error) {
	change, errs, err := s.Validate(ctx, env, in)
	if err != nil {
		return change, err
	}
	if err := errs.Err(); err != nil {
		return change, err
	}
	if change.Empty() {
		return change, ErrNothingToChange
	}
	_, err = s.cfg.DB.UpdateEnvironment(ctx, env, change, a)
	if errors.Is(err, db.ErrUnchanged) {
		return change, ErrUnchanged
	}
	return change, err
}

// OriginAllowed reports whether a browser page at origin may post callbacks to env.
func (s *Service) OriginAllowed(ctx context.Context, env, origin string) (bool, error) {
	e, err := s.cfg.DB.EnvironmentByName(ctx, env)
	if err != nil {
		return false, err
	}
	origin = strings.ToLower(origin)
	for _, o := range e.AllowedOrigins {
		if o == origin {
			return true, nil
		}
	}
	return false, nil
}
