package web

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/validation"
	"github.com/tensfer-golive/dashboard/web/static"
)

// routes lists every route of the app in one place. Each route states who may call it: public,
// a minimum role for pages (viewer < operator < admin), or a scope for the JSON API.
func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(s.requestID, s.recoverer, s.accessLog, s.securityHeaders, s.limitBody)

	// Operability and assets: no session, no CSRF concerns (read-only).
	r.With(kindOf(kindAPI)).Get("/healthz", s.h(s.showHealth))
	r.With(kindOf(kindAPI)).Get("/readyz", s.h(s.showReady))
	// Prometheus metrics: a bearer token with metrics:read (or the --metrics-addr listener).
	r.With(kindOf(kindAPI), quiet, s.apiToken, s.requireScope(auth.ScopeMetricsRead)).Get("/metrics", s.cfg.Metrics.Handler().ServeHTTP)
	r.Get(static.Prefix+"*", static.Handler().ServeHTTP)

	// Public ingest: Tensfer and the integrator's front end. Never reads the session cookie;
	// webhooks are authenticated by their signature, callbacks by CORS origin and rate limits.
	r.Route("/hooks", func(r chi.Router) {
		r.Use(kindOf(kindIngest))
		r.NotFound(s.h(s.notFound))
		r.MethodNotAllowed(s.h(s.methodNotAllowed))
		r.Post("/{env}", s.h(s.receiveWebhook))
	})
	r.Route("/callbacks", func(r chi.Router) {
		r.Use(kindOf(kindIngest))
		r.NotFound(s.h(s.notFound))
		r.MethodNotAllowed(s.h(s.methodNotAllowed))
		r.Post("/{env}", s.h(s.receiveCallback))
		r.Options("/{env}", s.h(s.preflightCallback))
		r.With(s.pageCSP).Get("/{env}/return", s.h(s.returnCallback))
	})

	// Pages: a session cookie, CSRF protection on every unsafe method.
	r.Group(func(r chi.Router) {
		r.Use(s.pageCSP, s.crossOrigin, s.loadUser)

		r.Get("/login", s.h(s.showLogin))
		r.Post("/login", s.h(s.createSession))
		r.Get("/setup", s.h(s.showSetup))
		r.Post("/setup", s.h(s.completeSetup))
		r.Post("/logout", s.h(s.deleteSession))
		r.Get("/login/two-factor", s.h(s.showLoginCode))
		r.Post("/login/two-factor", s.h(s.verifyLoginCode))

		// Two-factor set-up stays open to a user whom an admin requires to set it up; every other
		// page sends them here first.
		r.Group(func(r chi.Router) {
			r.Use(s.requireRole(db.RoleViewer), s.requireTwoFactor(false))
			r.Get("/settings/account/two-factor", s.h(s.showTwoFactor))
			r.Post("/settings/account/two-factor/setup", s.h(s.beginTwoFactor))
			r.Post("/settings/account/two-factor/confirm", s.h(s.confirmTwoFactor))
			r.Post("/settings/account/two-factor/recovery-codes", s.h(s.regenerateRecoveryCodes))
			r.Post("/settings/account/two-factor/disable", s.h(s.disableTwoFactor))
		})
		r.Group(func(r chi.Router) {
			r.Use(s.requireRole(db.RoleViewer), s.requireTwoFactor(true))
			r.Get("/", s.h(s.showOverview))
			r.Get("/environments", s.h(s.showEnvironments))
			r.Get("/go-live", s.h(s.showGoLive))
			r.Get("/events", s.h(s.showEvents))
			r.Get("/events/stream", s.h(s.streamEvents))
			r.Get("/events/export", s.h(s.exportEvents))
			r.Get("/events/{id}", s.h(s.showEvent))
			r.Get("/lookup", s.h(s.showLookup))
			r.Get("/lookup/bundle", s.h(s.supportBundle))
			r.Get("/rollout", s.h(s.showRollout))
			r.Get("/settings", s.h(s.showSettings))
			r.Get("/settings/account", s.h(s.showAccount))
			r.Post("/settings/account/password", s.h(s.updateOwnPassword))
		})
		r.Group(func(r chi.Router) {
			r.Use(s.requireRole(db.RoleOperator), s.requireTwoFactor(true))
			r.Get("/audit", s.h(s.listAudit))
			r.Post("/environments/{env}/verify", s.h(s.verifyEnvironment))
			r.Post("/environments/{env}/test-event", s.h(s.sendTestEvent))
			r.Post("/events/{id}/reverify", s.h(s.reverifyEvent))
			r.Post("/events/{id}/replay", s.h(s.replayEvent))
			r.Get("/events/replay", s.h(s.confirmReplay))
			r.Post("/events/replay", s.h(s.replayMatching))
			r.Post("/rollout/actions/{action}", s.h(s.actRollout))
		})
		r.Group(func(r chi.Router) {
			r.Use(s.requireRole(db.RoleAdmin), s.requireTwoFactor(true))
			r.Get("/settings/users", s.h(s.listUsers))
			r.Post("/settings/users", s.h(s.createUser))
			r.Post("/settings/users/{id}/role", s.h(s.updateUserRole))
			r.Post("/settings/users/{id}/disable", s.h(s.disableUser))
			r.Post("/settings/users/{id}/enable", s.h(s.enableUser))
			r.Post("/settings/users/{id}/password", s.h(s.resetUserPassword))
			r.Post("/settings/users/{id}/sign-out", s.h(s.signOutUser))
			r.Post("/settings/users/{id}/two-factor/reset", s.h(s.resetUserTwoFactor))
			r.Post("/settings/users/two-factor", s.h(s.updateTwoFactorRequirement))
			r.Get("/settings/tokens", s.h(s.listTokens))
			r.Post("/settings/tokens", s.h(s.createToken))
			r.Post("/settings/tokens/{id}/revoke", s.h(s.revokeToken))
			r.Post("/environments/{env}", s.h(s.updateEnvironmentURLs))
			r.Post("/environments/{env}/keys", s.h(s.setEnvKey))
			r.Post("/environments/{env}/keys/{id}/reveal", s.h(s.revealEnvKey))
			r.Post("/environments/{env}/webhook-secrets", s.h(s.createWebhookSecret))
			r.Post("/environments/{env}/webhook-secrets/{id}/retire", s.h(s.retireWebhookSecret))
			r.Post("/environments/{env}/beacon-key/rotate", s.h(s.rotateBeaconKey))
			r.Get("/events/rejected", s.h(s.listRejected))
			r.Post("/rollout/plan", s.h(s.updateRolloutPlan))
			r.Post("/rollout/cohorts", s.h(s.createCohortForm))
			r.Post("/rollout/cohorts/{id}/delete", s.h(s.deleteCohortForm))
			r.Post("/rollout/cohorts/{id}/import", s.h(s.importMembersForm))
			r.Post("/rollout/cohorts/{id}/edit", s.h(s.editCohortForm))
			r.Post("/rollout/cohorts/{id}/move", s.h(s.moveCohortForm))
			r.Post("/rollout/cohorts/deleted/{id}/restore", s.h(s.restoreCohortForm))
			r.Get("/rollout/cohorts/{id}/members", s.h(s.exportMembers))
			r.Get("/settings/alerts", s.h(s.listAlertChannels))
			r.Post("/settings/alerts", s.h(s.createAlertChannel))
			r.Get("/settings/alerts/{id}", s.h(s.showAlertChannel))
			r.Post("/settings/alerts/{id}", s.h(s.updateAlertChannel))
			r.Post("/settings/alerts/{id}/test", s.h(s.testAlertChannel))
			r.Post("/settings/alerts/{id}/delete", s.h(s.deleteAlertChannel))
		})
	})

	// JSON API: bearer tokens with scopes; never reads the session cookie.
	r.Route("/api/v1", func(r chi.Router) {
		r.Use(kindOf(kindAPI), s.apiToken)
		r.NotFound(s.h(s.apiNotFound))
		r.MethodNotAllowed(s.h(s.methodNotAllowed))
		r.Get("/whoami", s.h(s.showWhoami))
		r.With(s.requireScope(auth.ScopeAdmin)).Get("/audit", s.h(s.apiListAudit))
		r.With(s.requireScope(auth.ScopeEventsRead)).Get("/events", s.h(s.apiListEvents))
		r.With(s.requireScope(auth.ScopeEventsRead)).Get("/events/{id}", s.h(s.apiShowEvent))
		r.With(s.requireScope(auth.ScopeEventsRead)).Get("/lookup/{request_id}", s.h(s.apiLookup))
		r.With(kindOf(kindIngest), s.requireScope(auth.ScopeEventsWrite)).Post("/api-calls", s.h(s.createAPICall))
		r.With(s.requireScope(auth.ScopeConfigRead)).Get("/environments", s.h(s.apiListEnvironments))
		r.With(s.requireScope(auth.ScopeConfigRead)).Get("/environments/{env}", s.h(s.apiShowEnvironment))
		r.With(s.requireScope(auth.ScopeAdmin)).Patch("/environments/{env}", s.h(s.apiUpdateEnvironment))
		r.With(s.requireScope(auth.ScopeConfigRead)).Get("/environments/{env}/config", s.h(s.apiShowConfig))
		r.With(s.requireScope(auth.ScopeAdmin)).Post("/environments/{env}/verify", s.h(s.apiVerifyEnvironment))
		r.With(s.requireScope(auth.ScopeAdmin)).Post("/environments/{env}/webhook-secrets", s.h(s.apiCreateWebhookSecret))
		r.With(s.requireScope(auth.ScopeAdmin)).Delete("/environments/{env}/webhook-secrets/{id}", s.h(s.apiDeleteWebhookSecret))

		r.With(s.requireScope(auth.ScopeRolloutDecide)).Get("/rollout", s.h(s.apiShowRollout))
		r.With(s.requireScope(auth.ScopeAdmin)).Put("/rollout", s.h(s.apiUpdateRollout))
		r.With(s.requireScope(auth.ScopeRolloutWrite)).Post("/rollout/{action}", s.h(s.apiActRollout))
		r.With(s.requireScope(auth.ScopeAdmin)).Post("/rollout/revive", s.h(s.apiReviveRollout))
		r.With(quiet, s.requireScope(auth.ScopeRolloutDecide)).Get("/rollout/decide", s.h(s.apiDecide))
		r.With(quiet, s.requireScope(auth.ScopeRolloutDecide)).Post("/rollout/decide", s.h(s.apiDecideMany))
		r.With(s.requireScope(auth.ScopeRolloutDecide)).Get("/rollout/cohorts", s.h(s.apiListCohorts))
		r.With(s.requireScope(auth.ScopeAdmin)).Post("/rollout/cohorts", s.h(s.apiCreateCohort))
		r.With(s.requireScope(auth.ScopeAdmin)).Put("/rollout/cohorts/order", s.h(s.apiReorderCohorts))
		r.With(s.requireScope(auth.ScopeAdmin)).Get("/rollout/cohorts/deleted", s.h(s.apiListDeletedCohorts))
		r.With(s.requireScope(auth.ScopeAdmin)).Post("/rollout/cohorts/deleted/{id}/restore", s.h(s.apiRestoreCohort))
		r.With(s.requireScope(auth.ScopeAdmin)).Patch("/rollout/cohorts/{id}", s.h(s.apiUpdateCohort))
		r.With(s.requireScope(auth.ScopeAdmin)).Delete("/rollout/cohorts/{id}", s.h(s.apiDeleteCohort))
		r.With(s.requireScope(auth.ScopeAdmin)).Get("/rollout/cohorts/{id}/members", s.h(s.exportMembers))
		r.With(s.requireScope(auth.ScopeAdmin)).Put("/rollout/cohorts/{id}/members", s.h(s.apiImportMembers))

		r.With(s.requireScope(auth.ScopeAdmin)).Get("/alert-channels", s.h(s.apiListAlertChannels))
		r.With(s.requireScope(auth.ScopeAdmin)).Post("/alert-channels", s.h(s.apiCreateAlertChannel))
		r.With(s.requireScope(auth.ScopeAdmin)).Get("/alert-channels/{id}", s.h(s.apiShowAlertChannel))
		r.With(s.requireScope(auth.ScopeAdmin)).Patch("/alert-channels/{id}", s.h(s.apiUpdateAlertChannel))
		r.With(s.requireScope(auth.ScopeAdmin)).Delete("/alert-channels/{id}", s.h(s.apiDeleteAlertChannel))
		r.With(s.requireScope(auth.ScopeAdmin)).Post("/alert-channels/{id}/test", s.h(s.apiTestAlertChannel))
	})

	// OpenFeature Remote Evaluation Protocol: bearer tokens with rollout:decide.
	r.Route("/ofrep/v1", func(r chi.Router) {
		r.Use(kindOf(kindAPI), quiet, s.apiToken, s.requireScope(auth.ScopeRolloutDecide))
		r.NotFound(s.h(s.apiNotFound))
		r.MethodNotAllowed(s.h(s.methodNotAllowed))
		r.Post("/evaluate/flags", s.h(s.ofrepEvaluateFlags))
		r.Post("/evaluate/flags/{key}", s.h(s.ofrepEvaluateFlag))
	})

	// An unknown page reads the session (and nothing else), so a signed-in user keeps the navigation.
	r.NotFound(s.pageCSP(s.loadUser(s.h(s.notFound))).ServeHTTP)
	r.MethodNotAllowed(s.h(s.methodNotAllowed))
	return r
}

// notFound answers any path no route matches.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) error {
	return errNotFound("there is no page at " + r.URL.Path)
}

// methodNotAllowed answers a method the path has no route for, with Allow listing those it has.
func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) error {
	allowed := s.allowedMethods(r)
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	msg := r.Method + " is not allowed on " + validation.Clip(r.URL.Path, 200)
	if len(allowed) > 0 {
		msg += "; use " + strings.Join(allowed, " or ")
	}
	return &httpError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", msg: msg}
}

// allowedMethods asks the router which methods it serves at the request's path.
func (s *Server) allowedMethods(r *http.Request) []string {
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		if s.router.Match(chi.NewRouteContext(), m, path) {
			out = append(out, m)
		}
	}
	return out
}
