// Package web is the HTTP face of the dashboard: the chi router, middleware, one file of handlers
// per resource, and the JSON API.
package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/alerts"
	"github.com/tensfer-golive/dashboard/internal/app"
	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/cluster"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/diskguard"
	"github.com/tensfer-golive/dashboard/internal/environment"
	"github.com/tensfer-golive/dashboard/internal/events"
	"github.com/tensfer-golive/dashboard/internal/launch"
	"github.com/tensfer-golive/dashboard/internal/metrics"
	"github.com/tensfer-golive/dashboard/internal/ratelimit"
	"github.com/tensfer-golive/dashboard/internal/secrets"
)

// Config is what the server needs to know about how it is deployed.
type Config struct {
	PublicURL            *url.URL       // where browsers and Tensfer reach us
	HSTS                 bool           // send Strict-Transport-Security: browsers reach us over https only
	Version              string         // shown in the footer and /healthz
	Demo                 bool           // running with the built-in simulator
	TrustedProxies       []netip.Prefix // whose X-Forwarded-For we believe
	SessionIdle          time.Duration  // a session unused this long ends
	SessionMax           time.Duration  // a session ends this long after login, used or not
	PasswordParams       auth.Params    // argon2id cost (cheap in tests)
	LoginRate            RateLimit      // failed and successful attempts per client IP
	CallbackRate         RateLimit      // public callback beacons per client IP
	FeedBuffer           int            // recent events kept for stream resume (default 4096)
	FeedSubscriberBuffer int            // rows a stream may fall behind before it is dropped (default 256)
	StreamRecheck        time.Duration  // how soon a revoked session or a disabled user loses its live stream (default 5s)
	RetentionDays        int            // events older than this are purged (default 30)
	MaxBodyBytes         int64          // default request body limit
	MaxUploadBytes       int64          // body limit of cohorts and allow-list uploads (default 64 MiB)
	LookupMaxBytes       int64          // a support bundle or API lookup stops, marked truncated, past this (default 16 MiB)
	// PublicBudget bounds the unauthenticated input stored (callbacks, return visits, refused
	// deliveries): bytes and rows a second, all together (default events.DefaultPublicBudget).
	PublicBudget events.PublicBudget
	// Disk sets the disk watermarks (zero: diskguard's defaults); its Dir (the database's
	// directory) and Now (the server's clock) are filled in. Tests inject Space.
	Disk diskguard.Config
	// AllowLoopbackURLs accepts http://localhost URLs in production and lets the Tensfer client
	// reach loopback addresses (demo mode with the built-in simulator, and tests).
	AllowLoopbackURLs bool
	// LoginLockout tunes the per-account soft lockout of sign-ins (zero fields: the defaults in
	// accounts.LockoutPolicy).
	LoginLockout accounts.LockoutPolicy
	// Alerts tunes alert detection and delivery (zero fields: the defaults in alerts.Options).
	Alerts alerts.Options
	// Metrics is the Prometheus registry that the services record into and GET /metrics serves
	// (nil: New makes one, with Version as the build's version).
	Metrics *metrics.Metrics
	// Bus tells every instance what changed: committed events, the rollout, secrets, revoked
	// access (nil: New makes a cluster.LocalBus of its own, closed by Close).
	Bus cluster.Bus
	// Leader says whether this instance runs the schedulers (nil: cluster.Solo, always).
	Leader cluster.Leader
	// Clock is the clock the server and its services read (nil: WithDefaults makes one that
	// reads time.Now); SetClock sets it for all of them.
	Clock *Clock
}

// Clock is the one clock of a dashboard: the server and every service read it; tests set it.
type Clock struct {
	f atomic.Pointer[func() time.Time]
}

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	if f := c.f.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// Set makes the clock read now.
func (c *Clock) Set(now func() time.Time) { c.f.Store(&now) }

// RateLimit is a token bucket: Burst requests at once, refilled at one per Every.
type RateLimit = ratelimit.Rate

// Server holds every dependency the handlers use. It is built once in main.
type Server struct {
	cfg        Config
	db         *db.DB
	box        *secrets.Box
	log        *slog.Logger
	sessions   *sessionStore
	loginLimit *ratelimit.Limiter
	failures   *failureAudit // audit rows of repeatable failures, counted per window
	now        func() time.Time

	router        chi.Router           // also asked which methods a path allows
	accounts      *accounts.Service    // users, passwords, tokens
	twoFactor     *accounts.TwoFactor  // TOTP enrolment, codes, recovery codes, the login's second step
	events        *events.Service      // ingest, live feed, lookup, replay, signals
	envs          *environment.Service // keys, URLs, secrets, verification, checklist
	rollout       *launch.Service      // the production rollout: decisions, plan, cohorts, guardrails
	alerts        *alerts.Service      // notification channels, alert detection and delivery
	callbackLimit *ratelimit.Limiter   // public callback ingest, per client
	tokenUse      *ratelimit.Throttle[int64]
	tokens        tokenCache
	streamSlots   streamSlots
	refusals      refusalLog            // log lines of refusals anyone can repeat, kept to a fixed rate
	answerSlots   chan struct{}         // large answers being written: bundles, API lookups, exports (at most maxAnswers)
	recheck       signal                // fired when access changed anywhere: live streams check their session at once
	stopFollowing func()                // ends the Bus subscription of access changes
	services      *app.Services         // what New took over, closed by Close
	renderRow     func(db.Event) []byte // an event as its live-feed row
}

// WithDefaults is cfg with every zero value given its default. The composition root calls it
// once and gives the result to both app.Build (through Services) and New, so that they share the
// metrics registry, the Bus, the Leader and the clock.
func (cfg Config) WithDefaults() Config {
	if cfg.PublicURL == nil {
		cfg.PublicURL = &url.URL{Scheme: "http", Host: "127.0.0.1:8080"}
	}
	if cfg.SessionIdle == 0 {
		cfg.SessionIdle = 12 * time.Hour
	}
	if cfg.SessionMax == 0 {
		cfg.SessionMax = 7 * 24 * time.Hour
	}
	if cfg.PasswordParams.KeyLen == 0 {
		cfg.PasswordParams = auth.DefaultParams
	}
	if cfg.LoginRate.Burst == 0 {
		cfg.LoginRate = RateLimit{Burst: 10, Every: 6 * time.Second}
	}
	if cfg.CallbackRate.Burst == 0 {
		cfg.CallbackRate = RateLimit{Burst: 120, Every: 50 * time.Millisecond}
	}
	if cfg.RetentionDays == 0 {
		cfg.RetentionDays = 30
	}
	if cfg.StreamRecheck == 0 {
		cfg.StreamRecheck = 5 * time.Second
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.MaxUploadBytes == 0 {
		cfg.MaxUploadBytes = defaultMaxUpload
	}
	if cfg.LookupMaxBytes == 0 {
		cfg.LookupMaxBytes = defaultAnswerMaxBytes
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New(metrics.BuildInfo{Version: cfg.Version})
	}
	if cfg.Leader == nil {
		cfg.Leader = cluster.Solo{}
	}
	if cfg.Clock == nil {
		cfg.Clock = &Clock{}
	}
	return cfg
}

// Services is what app.Build needs of cfg (after WithDefaults, with a Bus), with the live feed's
// rows rendered by web's row component.
func (cfg Config) Services(log *slog.Logger) app.Config {
	return app.Config{
		PublicURL: cfg.PublicURL, Version: cfg.Version, Demo: cfg.Demo, PasswordParams: cfg.PasswordParams,
		LoginLockout: cfg.LoginLockout, RetentionDays: cfg.RetentionDays, FeedBuffer: cfg.FeedBuffer,
		FeedSubscriberBuffer: cfg.FeedSubscriberBuffer, PublicBudget: cfg.PublicBudget, Disk: cfg.Disk,
		AllowLoopbackURLs: cfg.AllowLoopbackURLs, Alerts: cfg.Alerts, Metrics: cfg.Metrics, Bus: cfg.Bus,
		Leader: cfg.Leader, Now: cfg.Clock.Now, Render: feedRowRenderer(log),
	}
}

// New builds the Server over the services it serves (built by app.Build from cfg.Services) and
// takes them over: Close closes them. cfg is completed by WithDefaults if the caller has not done
// so; its Bus is required (the services were built with it), and stays the caller's to close.
// Call Close after the HTTP server has shut down.
func New(cfg Config, svc *app.Services, d *db.DB, box *secrets.Box, log *slog.Logger) (*Server, error) {
	cfg = cfg.WithDefaults()
	if cfg.Bus == nil {
		return nil, errors.New("web: Config.Bus is required: the services were built with one")
	}
	cfg.Metrics.ReadLeader(cfg.Leader.Leading)
	s := &Server{cfg: cfg, db: d, box: box, log: log, now: cfg.Clock.Now, answerSlots: make(chan struct{}, maxAnswers), renderRow: feedRowRenderer(log)}
	s.loginLimit = ratelimit.New(cfg.LoginRate, s.clock)
	s.callbackLimit = ratelimit.New(cfg.CallbackRate, s.clock)
	s.tokenUse = ratelimit.NewThrottle[int64](time.Minute)
	s.accounts, s.twoFactor, s.events, s.envs, s.rollout, s.alerts = svc.Accounts, svc.TwoFactor, svc.Events, svc.Envs, svc.Rollout, svc.Alerts
	s.services = svc
	svc.OnAccessChanged(s.forgetAccess)
	s.failures = newFailureAudit(s.accounts.AuditSignIn, s.clock)
	s.sessions = &sessionStore{
		db:     d,
		writes: s.accounts,
		secure: cfg.PublicURL.Scheme == "https",
		idle:   cfg.SessionIdle,
		max:    cfg.SessionMax,
		now:    s.clock,
	}
	s.stopFollowing = cfg.Bus.Subscribe(cluster.TopicAccess, func(cluster.Message) { s.forgetAccess() })
	cfg.Metrics.ReadReadiness(func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, status := s.readiness(ctx)
		return status == http.StatusOK
	})
	s.router = s.routes()
	return s, nil
}

// Alerts is the alert service (main runs its loop: detection and delivery).
func (s *Server) Alerts() *alerts.Service { return s.alerts }

// Rollout is the running production rollout (main runs its loop for guardrails and auto-advance).
func (s *Server) Rollout() *launch.Service { return s.rollout }

// Events is the event pipeline the server feeds (for the demo's wiring in main).
func (s *Server) Events() *events.Service { return s.events }

// Environments is the environment service the server uses (for the demo's wiring in main).
func (s *Server) Environments() *environment.Service { return s.envs }

// EndStreams closes every live stream so a graceful shutdown does not wait on them; browsers
// reconnect to the next instance with their Last-Event-ID. Register it with
// http.Server.RegisterOnShutdown.
func (s *Server) EndStreams() { s.events.EndStreams() }

// Close stops following the Bus and closes the services (ingest stops after every
// acknowledged event is stored and published; live streams end). Call it after the HTTP server
// has shut down.
func (s *Server) Close() error {
	if s.stopFollowing != nil {
		s.stopFollowing()
		s.stopFollowing = nil
	}
	return s.services.Close()
}

// SetClock replaces the clock (tests only).
func (s *Server) SetClock(now func() time.Time) { s.cfg.Clock.Set(now) }

func (s *Server) clock() time.Time { return s.now() }

// MetricsHandler serves the Prometheus metrics without authentication, for a listener of its own
// (--metrics-addr) that must not be reachable from the internet.
func (s *Server) MetricsHandler() http.Handler { return s.cfg.Metrics.Handler() }

// Handler returns the whole HTTP surface with its middleware.
func (s *Server) Handler() http.Handler { return s.router }
