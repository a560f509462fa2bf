// Package app builds the domain services one dashboard serves, in the order they depend on each
// other: accounts, two-factor, the event pipeline, environments, the rollout and alerts, over one
// store, one Bus and one Leader. cmd/dashboard (the composition root) builds them and hands them
// to web.New; web's tests build them the same way, so the wiring exists once.
package app

import (
	"context"
	"log/slog"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"time"

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
	"github.com/tensfer-golive/dashboard/internal/safehttp"
	"github.com/tensfer-golive/dashboard/internal/secrets"
)

// Config is what the services need to know. Metrics, Bus and Leader are required: the caller
// owns them (and closes the Bus after the services).
type Config struct {
	PublicURL            *url.URL
	Version              string
	Demo                 bool
	PasswordParams       auth.Params
	LoginLockout         accounts.LockoutPolicy
	RetentionDays        int
	FeedBuffer           int
	FeedSubscriberBuffer int
	PublicBudget         events.PublicBudget
	Disk                 diskguard.Config
	AllowLoopbackURLs    bool
	Alerts               alerts.Options
	Metrics              *metrics.Metrics
	Bus                  cluster.Bus
	Leader               cluster.Leader
	// Now is the clock every service reads (nil: time.Now).
	Now func() time.Time
	// Render turns a committed event into its live-feed row (web's row component).
	Render func(db.Event) []byte
}

// Services are the domain services of one dashboard.
type Services struct {
	Accounts  *accounts.Service
	TwoFactor *accounts.TwoFactor
	Events    *events.Service
	Envs      *environment.Service
	Rollout   *launch.Service
	Alerts    *alerts.Service

	forgetAccess atomic.Pointer[func()]
}

// OnAccessChanged sets what this instance drops when access changes here (a token revoked, a
// user's sessions ended): web's token cache and its live streams' session check. accounts calls
// it before it tells the Bus, so the caller reads its own change at once. Set it before serving.
func (s *Services) OnAccessChanged(fn func()) { s.forgetAccess.Store(&fn) }

func (s *Services) accessChanged() {
	if fn := s.forgetAccess.Load(); fn != nil {
		(*fn)()
	}
}

// Build builds the services over d and starts the event pipeline; ctx bounds only the reads it
// makes while building (the services keep no context of it). Close stops them.
func Build(ctx context.Context, cfg Config, d *db.DB, box *secrets.Box, log *slog.Logger) (*Services, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Services{}
	s.Accounts = accounts.New(accounts.Config{DB: d, Params: cfg.PasswordParams, Lockout: cfg.LoginLockout, Now: cfg.Now,
		DeviceKey: box.DeriveKey("known-device cookie"), Bus: cfg.Bus, ForgetAccess: s.accessChanged})
	s.TwoFactor = accounts.NewTwoFactor(accounts.TwoFactorConfig{DB: d, Box: box, Now: cfg.Now, Issuer: "Tensfer go-live (" + cfg.PublicURL.Hostname() + ")"})
	// Outbound calls go to user-configured URLs (Tensfer base URLs, replay targets, alert channels).
	safeHTTP := safehttp.NewClient(safehttp.Options{AllowLoopback: cfg.AllowLoopbackURLs, Timeout: 15 * time.Second})
	userAgent := "tensfer-golive-dashboard/" + cfg.Version
	cfg.Disk.Dir, cfg.Disk.Now = filepath.Dir(d.Path), cfg.Now
	if d.Postgres() {
		// The data is on PostgreSQL's disk, which this machine's free space says nothing about:
		// PostgreSQL refuses writes itself when full, and that is a failed write (503).
		cfg.Disk.Off = true
	}
	disk := diskguard.New(cfg.Disk)
	var err error
	s.Events, err = events.New(ctx, events.Config{
		DB: d, Box: box, Log: log, Now: cfg.Now, Demo: cfg.Demo, Render: cfg.Render,
		HTTPClient: safeHTTP, UserAgent: userAgent, RetentionDays: cfg.RetentionDays,
		FeedBuffer: cfg.FeedBuffer, FeedSubscriberBuffer: cfg.FeedSubscriberBuffer,
		PublicBudget: cfg.PublicBudget, Disk: disk, Metrics: cfg.Metrics, Bus: cfg.Bus,
	})
	if err != nil {
		return nil, err
	}
	s.Envs = environment.New(environment.Config{
		DB: d, Box: box, Now: cfg.Now, HTTPClient: safeHTTP, AllowLoopbackURLs: cfg.AllowLoopbackURLs, UserAgent: userAgent,
		Observer: s.Events.ObserveTensferCall, Metrics: cfg.Metrics,
		// After a change to webhook secrets or beacon keys: this instance's key cache forgets them
		// at once, and the Bus tells every instance's.
		SecretsChanged: func() {
			s.Events.InvalidateSecrets()
			cfg.Bus.Publish(cluster.Message{Topic: cluster.TopicSecrets})
		},
	})
	for _, env := range environment.Names { // each environment has a beacon key from the first start
		if _, _, err := s.Envs.BeaconKey(ctx, env); err != nil {
			s.Events.Close()
			return nil, err
		}
	}
	s.Rollout, err = launch.New(ctx, launch.Config{DB: d, Log: log, Now: cfg.Now, Figures: s.Events.GuardrailFigures, Metrics: cfg.Metrics,
		Bus: cfg.Bus, Leader: cfg.Leader})
	if err != nil {
		s.Events.Close()
		return nil, err
	}
	s.Alerts, err = alerts.New(ctx, alerts.Config{DB: d, Box: box, Log: log, Now: cfg.Now, HTTPClient: safeHTTP, UserAgent: userAgent,
		PublicURL: cfg.PublicURL.String(), AllowLoopbackURLs: cfg.AllowLoopbackURLs, Disk: disk, RetentionDays: cfg.RetentionDays, Options: cfg.Alerts, Metrics: cfg.Metrics,
		Leader: cfg.Leader})
	if err != nil {
		s.Rollout.Close()
		s.Events.Close()
		return nil, err
	}
	return s, nil
}

// Close stops following the Bus and stops ingest after every acknowledged event is stored and
// published. Call it after the HTTP server has shut down, before the Bus and the store close.
func (s *Services) Close() error {
	s.Rollout.Close()
	return s.Events.Close()
}
