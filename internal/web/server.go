// Package web is the HTTP face of the dashboard: the chi router, middleware, one file of handlers
// per resource, and the JSON API.
package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"sync"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/feed"
	"github.com/tensfer-golive/dashboard/internal/safehttp"
	"github.com/tensfer-golive/dashboard/internal/secrets"
)

// Config is what the server needs to know about how it is deployed.
type Config struct {
	PublicURL            *url.URL       // where browsers and Tensfer reach us
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
	RetentionDays        int            // events older than this are purged (default 30)
	MaxBodyBytes         int64          // default request body limit
	// AllowLoopbackURLs accepts http://localhost URLs in production and lets the Tensfer client
	// reach loopback addresses (demo mode with the built-in simulator, and tests).
	AllowLoopbackURLs bool
}

// RateLimit is a token bucket: Burst requests at once, refilled at one per Every.
type RateLimit struct {
	Burst int
	Every time.Duration
}

// Server holds every dependency the handlers use. It is built once in main.
type Server struct {
	cfg        Config
	db         *db.DB
	box        *secrets.Box
	log        *slog.Logger
	sessions   *sessionStore
	loginLimit *limiter
	now        func() time.Time

	dummyOnce sync.Once
	dummy     string

	safeHTTP *http.Client // outbound calls to user-configured URLs

	router        http.Handler
	ingester      *db.Ingester
	hub           *feed.Hub[feedRow]
	committed     chan []db.Event
	publisherDone chan struct{}
	closeOnce     sync.Once
	secrets       secretCache
	rejectLimit   *limiter      // storing refused webhook deliveries, per client
	rejectGlobal  *limiter      // storing refused webhook deliveries, all clients together
	callbackLimit *limiter      // public callback ingest, per client
	hashSlots     chan struct{} // bounds concurrent argon2id work
	touchMu       sync.Mutex
	touched       map[string]time.Time
}

// New builds a Server and starts its ingest pipeline. Zero config values get sensible defaults.
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
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	s := &Server{cfg: cfg, db: d, box: box, log: log, now: time.Now}
	s.sessions = &sessionStore{
		db:     d,
		secure: cfg.PublicURL.Scheme == "https",
		idle:   cfg.SessionIdle,
		max:    cfg.SessionMax,
		now:    s.clock,
	}
	s.loginLimit = newLimiter(cfg.LoginRate, s.clock)
	s.safeHTTP = safehttp.NewClient(safehttp.Options{AllowLoopback: cfg.AllowLoopbackURLs, Timeout: 15 * time.Second})
	s.hashSlots = make(chan struct{}, max(1, runtime.NumCPU()))
	s.rejectLimit = newLimiter(RateLimit{Burst: 100, Every: 100 * time.Millisecond}, s.clock)
	s.rejectGlobal = newLimiter(RateLimit{Burst: 500, Every: 20 * time.Millisecond}, s.clock)
	s.callbackLimit = newLimiter(cfg.CallbackRate, s.clock)
	if err := s.startIngest(context.Background()); err != nil {
		return nil, err
	}
	s.router = s.routes()
	return s, nil
}

// SetClock replaces the clock (tests only).
func (s *Server) SetClock(now func() time.Time) { s.now = now }

func (s *Server) clock() time.Time { return s.now() }

// Handler returns the whole HTTP surface with its middleware.
func (s *Server) Handler() http.Handler { return s.router }
