// Package web is the HTTP face of the dashboard: the chi router, middleware, one file of handlers
// per resource, and the JSON API.
package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/alerts"
	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/cluster"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/diskguard"
	"github.com/tensfer-golive/dashboard/internal/environment"
	"github.com/tensfer-golive/dashboard/internal/events"
	"github.com/tensfer-golive/dashboard/internal/launch"
	"github.com/tensfer-golive/dashboard/internal/metrics"
	"github.com/tensfer-golive/dashboard/internal/ratelimit"
	"github.com/tensfer-golive/dashboard/internal/safehttp"
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
}

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
	refusals      refusalLog    // log lines of refusals anyone can repeat, kept to a fixed rate
	answerSlots   chan struct{} // large answers being written: bundles, API lookups, exports (at most maxAnswers)
	recheck       signal        // fired when access changed anywhere: live streams check their session at once
	stopFollowing func()        // ends the Bus subscription of access changes
	ownBus        *cluster.LocalBus
}

// New builds a Server and the domain services behind it, and starts the ingest pipeline. Zero config values get sensible defaults.
// Call Close after the HTTP server has shut down.
func New(cfg Config, d *db.DB, box *secrets.Box, log *slog.Logger) (*Server, error) {
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
	var ownBus *cluster.LocalBus
	if cfg.Bus == nil {
		ownBus = cluster.NewLocalBus()
		cfg.Bus = ownBus
	}
	if cfg.Leader == nil {
		cfg.Leader = cluster.Solo{}
	}
	cfg.Metrics.ReadLeader(cfg.Leader.Leading)
	s := &Server{cfg: cfg, db: d, box: box, log: log, now: time.Now, answerSlots: make(chan struct{}, maxAnswers), ownBus: ownBus}
	s.loginLimit = ratelimit.New(cfg.LoginRate, s.clock)
	s.callbackLimit = ratelimit.New(cfg.CallbackRate, s.clock)
	s.tokenUse = ratelimit.NewThrottle[int64](time.Minute)
	s.accounts = accounts.New(accounts.Config{DB: d, Params: cfg.PasswordParams, Lockout: cfg.LoginLockout, Now: s.clock,
		DeviceKey: box.DeriveKey("known-device cookie"), Bus: cfg.Bus, ForgetAccess: s.forgetAccess})
	s.failures = newFailureAudit(s.accounts.AuditSignIn, s.clock)
	s.sessions = &sessionStore{
		db:     d,
		writes: s.accounts,
		secure: cfg.PublicURL.Scheme == "https",
		idle:   cfg.SessionIdle,
		max:    cfg.SessionMax,
		now:    s.clock,
	}
	s.twoFactor = accounts.NewTwoFactor(accounts.TwoFactorConfig{DB: d, Box: box, Now: s.clock, Issuer: "Tensfer go-live (" + cfg.PublicURL.Hostname() + ")"})
	// Outbound calls go to user-configured URLs (Tensfer base URLs, replay targets).
	safeHTTP := safehttp.NewClient(safehttp.Options{AllowLoopback: cfg.AllowLoopbackURLs, Timeout: 15 * time.Second})
	userAgent := "tensfer-golive-dashboard/" + cfg.Version
	cfg.Disk.Dir, cfg.Disk.Now = filepath.Dir(d.Path), s.clock
	if d.Postgres() {
		// The data is on PostgreSQL's disk, which this machine's free space says nothing about:
		// PostgreSQL refuses writes itself when full, and that is a failed write (503).
		cfg.Disk.Off = true
	}
	disk := diskguard.New(cfg.Disk)
	var err error
	s.events, err = events.New(context.Background(), events.Config{
		DB: d, Box: box, Log: log, Now: s.clock, Demo: cfg.Demo, Render: s.renderFeedRow,
		HTTPClient: safeHTTP, UserAgent: userAgent, RetentionDays: cfg.RetentionDays,
		FeedBuffer: cfg.FeedBuffer, FeedSubscriberBuffer: cfg.FeedSubscriberBuffer,
		PublicBudget: cfg.PublicBudget, Disk: disk, Metrics: cfg.Metrics, Bus: cfg.Bus,
	})
	if err != nil {
		s.closeBus()
		return nil, err
	}
	s.envs = environment.New(environment.Config{
		DB: d, Box: box, Now: s.clock, HTTPClient: safeHTTP, AllowLoopbackURLs: cfg.AllowLoopbackURLs, UserAgent: userAgent,
		Observer: s.events.ObserveTensferCall, SecretsChanged: s.secretsChanged, Metrics: cfg.Metrics,
	})
	for _, env := range environment.Names { // each environment has a beacon key from the first start
		if _, _, err := s.envs.BeaconKey(context.Background(), env); err != nil {
			s.events.Close()
			s.closeBus()
			return nil, err
		}
	}
	s.rollout, err = launch.New(context.Background(), launch.Config{DB: d, Log: log, Now: s.clock, Figures: s.events.GuardrailFigures, Metrics: cfg.Metrics,
		Bus: cfg.Bus, Leader: cfg.Leader})
	if err != nil {
		s.events.Close()
		s.closeBus()
		return nil, err
	}
	s.alerts, err = alerts.New(context.Background(), alerts.Config{DB: d, Box: box, Log: log, Now: s.clock, HTTPClient: safeHTTP, UserAgent: userAgent,
		PublicURL: cfg.PublicURL.String(), AllowLoopbackURLs: cfg.AllowLoopbackURLs, Disk: disk, RetentionDays: cfg.RetentionDays, Options: cfg.Alerts, Metrics: cfg.Metrics,
		Leader: cfg.Leader})
	if err != nil {
		s.rollout.Close()
		s.events.Close()
		s.closeBus()
		return nil, err
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

// Close stops following the Bus, stops ingest after every acknowledged event is stored and
// published, and ends live streams. Call it after the HTTP server has shut down.
func (s *Server) Close() error {
	if s.stopFollowing != nil {
		s.stopFollowing()
		s.stopFollowing = nil
	}
	s.rollout.Close()
	err := s.events.Close()
	s.closeBus()
	return err
}

// closeBus closes the Bus that New made itself (one given in Config belongs to the caller).
func (s *Server) closeBus() {
	if s.ownBus != nil {
		s.ownBus.Close()
	}
}

// SetClock replaces the clock (tests only).
func (s *Server) SetClock(now func() time.Time) { s.now = now }

func (s *Server) clock() time.Time { return s.now() }

// MetricsHandler serves the Prometheus metrics without authentication, for a listener of its own
// (--metrics-addr) that must not be reachable from the internet.
func (s *Server) MetricsHandler() http.Handler { return s.cfg.Metrics.Handler() }

// Handler returns the whole HTTP surface with its middleware.
func (s *Server) Handler() http.Handler { return s.router }
