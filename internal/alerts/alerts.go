// Package alerts tells the team when something goes wrong in production. It follows the audit log
// for the rollout's and the keys' events (a guardrail trip, the kill switch, a stage advance, a
// failed verification) from a stored cursor, counts bursts of refused webhooks, of initialization
// errors and of ingest refusing writes for want of disk at a steady pace, and delivers each alert
// to the channels admins set up: a Slack-compatible incoming webhook, or a JSON webhook signed
// with Standard Webhooks.
//
// Nothing here sits in the ingest path: detection reads what ingest already stored and counted.
// An alert is stored as one pending delivery per channel in the same transaction that moves the
// detector past its cause, so a restart neither loses nor repeats it; deliveries go through a
// bounded queue to a few workers (a full queue never blocks: the delivery waits in the database
// for the next sweep), are retried with exponential backoff and jitter, and every attempt is
// recorded with its answer. Outbound calls use the SSRF-safe client; a channel's URL and signing
// secret are sealed with the master key and never logged or shown again.
package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/cluster"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/diskguard"
	"github.com/tensfer-golive/dashboard/internal/metrics"
	"github.com/tensfer-golive/dashboard/internal/ratelimit"
	"github.com/tensfer-golive/dashboard/internal/secrets"
)

// Event types: what an alert is about, as channels choose them and payloads name them.
const (
	EventGuardrailTripped = "rollout.guardrail_tripped"  // a guardrail paused the rollout or rolled it back
	EventKilled           = "rollout.killed"             // the kill switch
	EventStageAdvanced    = "rollout.stage_advanced"     // a stage advance, by hand or on schedule
	EventVerifyFailed     = "environment.verify_failed"  // a key failed verification against Tensfer
	EventRefusedWebhooks  = "webhooks.refused_burst"     // a burst of refused webhook deliveries
	EventInitErrors       = "callbacks.init_error_burst" // a burst of initialization_error callbacks
	EventDiskRefusing     = "ingest.disk_refusing"       // ingest refuses writes for want of disk
	EventAuditHead        = "audit.head"                 // the audit chain's head, published to keep a copy outside
	EventCodesLocked      = "auth.second_factor_locked"  // too many wrong two-factor codes locked an account's factor
	EventTest             = "test"                       // the "send test" button
)

// EventInfo describes an event type for people.
type EventInfo struct {
	Type  string
	Label string
	Help  string
}

// Events lists the event types a channel may choose, in the order the page shows them.
var Events = []EventInfo{
	{EventGuardrailTripped, "Guardrail tripped", "a guardrail paused the production rollout or rolled it back"},
	{EventKilled, "Kill switch", "someone killed the production rollout"},
	{EventStageAdvanced, "Stage advanced", "the rollout moved to its next stage, by hand or on schedule"},
	{EventVerifyFailed, "Key verification failed", "Tensfer refused a key, or could not be reached, when an environment was verified"},
	{EventRefusedWebhooks, "Refused webhooks", "a burst of refused webhook deliveries (signature failures usually mean a rotated secret)"},
	{EventInitErrors, "Initialization errors", "a burst of initialization_error callbacks from the integrator's app"},
	{EventDiskRefusing, "Disk space", "ingest refuses writes because the data directory's disk is nearly full (any environment)"},
	{EventAuditHead, "Audit log head", "the audit chain's head (row and hash) at start, every minute it changed and at stop: a copy outside the database that dashboard audit verify --head checks"},
	{EventCodesLocked, "Two-factor locked", "wrong two-factor codes locked an account's second factor: someone who has its password is guessing codes"},
}

// Alert statuses: a burst fires once and is resolved once when it ends; other events only fire.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Alert is what a channel is told: the JSON body a webhook channel receives (Slack gets one line
// made of Title, Text and URL).
type Alert struct {
	ID         string         `json:"id"` // the webhook-id: the same on every attempt
	Type       string         `json:"type"`
	Status     string         `json:"status"` // firing | resolved
	Env        string         `json:"env"`    // sandbox | production | "" for the whole install
	Title      string         `json:"title"`
	Text       string         `json:"text"`
	URL        string         `json:"url"` // the dashboard page to look at
	OccurredAt string         `json:"occurred_at"`
	Data       map[string]any `json:"data"`
}

// Options tunes detection and delivery. Zero values get the defaults noted; docs/operations.md
// lists them.
type Options struct {
	Every           time.Duration // the audit log is followed and due deliveries swept this often (default 5 s)
	BurstEvery      time.Duration // bursts are counted this often (default 20 s)
	Window          time.Duration // bursts are counted over this window (default 5 min)
	RefusedWebhooks int64         // refused deliveries to one environment in the window that make a burst (default 10)
	InitErrors      int64         // initialization_error callbacks from one environment in the window (default 20)
	Quiet           time.Duration // a burst ends after this long below its threshold: one incident, one alert (default 10 min)
	Attempts        int           // tries per delivery (default 5)
	FirstRetry      time.Duration // the wait after the first failed try, doubled after each (default 40 s: 5 tries over about 10 min)
	AttemptTimeout  time.Duration // one try's time limit (default 10 s)
	QueueSize       int           // deliveries waiting for a worker (default 256)
	Workers         int           // deliveries sent at once (default 2)
	HeadEvery       time.Duration // the audit chain's head is published this often when it changed (default 1 min)
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Every, 5*time.Second)
	def(&o.BurstEvery, 20*time.Second)
	def(&o.Window, 5*time.Minute)
	def(&o.Quiet, 10*time.Minute)
	def(&o.FirstRetry, 40*time.Second)
	def(&o.AttemptTimeout, 10*time.Second)
	def(&o.HeadEvery, time.Minute)
	if o.RefusedWebhooks <= 0 {
		o.RefusedWebhooks = 10
	}
	if o.InitErrors <= 0 {
		o.InitErrors = 20
	}
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 256
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	return o
}

// Config is what a Service needs.
type Config struct {
	DB  *db.DB
	Box *secrets.Box
	Log *slog.Logger
	Now func() time.Time
	// HTTPClient delivers alerts; it must refuse internal addresses (safehttp).
	HTTPClient *http.Client
	UserAgent  string
	// PublicURL is where people open the dashboard: alerts link to its pages.
	PublicURL string
	// AllowLoopbackURLs accepts http://localhost channel URLs (the demo and tests).
	AllowLoopbackURLs bool
	// Disk is the data directory's guard (nil: disk space never alerts).
	Disk *diskguard.Guard
	// Metrics records the published audit head (nil: not recorded).
	Metrics *metrics.Metrics
	// RetentionDays is how long finished deliveries are kept (default 30).
	RetentionDays int
	Options       Options
	// Jitter returns a number in [0, 1) that spreads retries (default: random).
	Jitter func() float64
	// Leader says whether this instance detects and delivers alerts and publishes the audit
	// head (nil: cluster.Solo, always).
	Leader cluster.Leader
}

// Service detects alerts and delivers them. Build it with New; Run does the work until its
// context ends.
type Service struct {
	cfg Config
	opt Options
	db  *db.DB
	log *slog.Logger

	detectMu  sync.Mutex // one detection round at a time
	queue     chan int64
	mu        sync.Mutex
	inflight  map[int64]bool // deliveries queued or being tried
	dropped   atomic.Int64
	dropLog   *ratelimit.Throttle[string]
	lastBurst time.Time // guarded by detectMu

	headMu    sync.Mutex
	published db.AuditHead // the head last published
}

// stateCursor is the alert_state key of the last audit row the detector looked at.
const stateCursor = "audit_cursor"

// New builds the service. On a database that has never had one, the detector starts at the
// newest audit row: what happened before is not news.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Leader == nil {
		cfg.Leader = cluster.Solo{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Jitter == nil {
		cfg.Jitter = rand.Float64
	}
	if cfg.RetentionDays <= 0 {
		cfg.RetentionDays = 30
	}
	opt := cfg.Options.withDefaults()
	s := &Service{cfg: cfg, opt: opt, db: cfg.DB, log: cfg.Log, queue: make(chan int64, opt.QueueSize),
		inflight: map[int64]bool{}, dropLog: ratelimit.NewThrottle[string](time.Minute)}
	st, err := s.db.AlertState(ctx, stateCursor)
	if err != nil {
		return nil, err
	}
	if _, ok := st[stateCursor]; !ok {
		id, err := s.db.LatestAuditID(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := s.db.EnqueueAlerts(ctx, nil, map[string]string{stateCursor: strconv.FormatInt(id, 10)}); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Service) now() time.Time { return s.cfg.Now() }

// Dropped is how many deliveries found the queue full since start (each waited in the database
// for the next sweep instead).
func (s *Service) Dropped() int64 { return s.dropped.Load() }

// Run follows the audit log and sweeps due deliveries every Every, counts bursts every
// BurstEvery, and delivers with Workers workers, until ctx ends. A delivery cut short by the end
// is not counted as an attempt: it is tried again after the restart. Only the leading instance
// (cluster.Leader) detects and sweeps; the others' workers stay idle.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for range s.opt.Workers {
		wg.Go(func() { s.work(ctx) })
	}
	t := time.NewTicker(s.opt.Every)
	defer t.Stop()
	for {
		if s.cfg.Leader.Leading() {
			if err := s.Detect(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("alerts: detect", "error", err)
			}
			if err := s.sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("alerts: sweep due deliveries", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Detect is one round of detection: the audit log since the cursor, and bursts when BurstEvery
// has passed since they were last counted.
func (s *Service) Detect(ctx context.Context) error {
	if err := s.FollowAudit(ctx); err != nil {
		return err
	}
	s.detectMu.Lock()
	due := s.lastBurst.IsZero() || s.now().Sub(s.lastBurst) >= s.opt.BurstEvery
	s.detectMu.Unlock()
	if !due {
		return nil
	}
	return s.CheckBursts(ctx)
}

// record fans alerts out to the channels that want them, stores the deliveries and the detector's
// state in one transaction, and queues the deliveries.
func (s *Service) record(ctx context.Context, alerts []Alert, state map[string]string) error {
	var ds []db.AlertDelivery
	if len(alerts) > 0 {
		chs, err := s.db.ListAlertChannels(ctx)
		if err != nil {
			return err
		}
		for _, a := range alerts {
			for _, ch := range chs {
				if wants(ch, a) {
					d, err := s.delivery(ch.ID, a, s.opt.Attempts)
					if err != nil {
						return err
					}
					ds = append(ds, d)
				}
			}
		}
	}
	if len(ds) == 0 && len(state) == 0 {
		return nil
	}
	ids, err := s.db.EnqueueAlerts(ctx, ds, state)
	if err != nil {
		return err
	}
	for i, id := range ids {
		s.log.Info("alert queued", "type", ds[i].Type, "env", ds[i].Env, "status", ds[i].Status, "channel_id", ds[i].ChannelID, "delivery_id", id)
	}
	s.enqueue(ids...)
	return nil
}

// wants reports whether ch takes a: enabled, the event chosen, and the environment chosen (an
// alert about the whole install goes to every channel that chose its event).
func wants(ch db.AlertChannel, a Alert) bool {
	if !ch.Enabled || !slices.Contains(ch.Events, a.Type) {
		return false
	}
	return a.Env == "" || slices.Contains(ch.Envs, a.Env)
}

// delivery makes a's delivery to one channel, with its own message id.
func (s *Service) delivery(channelID string, a Alert, attempts int) (db.AlertDelivery, error) {
	a.ID = "msg_" + auth.RandomID(12)
	if a.Data == nil {
		a.Data = map[string]any{}
	}
	body, err := json.Marshal(a)
	if err != nil {
		return db.AlertDelivery{}, err
	}
	return db.AlertDelivery{ChannelID: channelID, MsgID: a.ID, Type: a.Type, Env: a.Env, Status: a.Status, Title: a.Title,
		Payload: body, MaxAttempts: attempts}, nil
}

// PurgeOld deletes finished deliveries older than the retention window, with their attempts.
func (s *Service) PurgeOld(ctx context.Context) (int64, error) {
	return s.db.PurgeAlertDeliveries(ctx, s.now().AddDate(0, 0, -s.cfg.RetentionDays), 500)
}

// link is the dashboard page at path, for an alert's URL.
func (s *Service) link(path string) string {
	return strings.TrimRight(s.cfg.PublicURL, "/") + path
}

// Rules says in words when bursts alert and how deliveries are retried, with the options in
// force, for the page.
func (s *Service) Rules() (bursts, retries string) {
	o := s.opt
	bursts = fmt.Sprintf("%d refused webhooks (requests without webhook headers aside) or %d initialization errors in %s, per environment, counted every %s. One alert when a burst begins, one resolved message once it has stayed below for %s.",
		o.RefusedWebhooks, o.InitErrors, fmtDuration(o.Window), fmtDuration(o.BurstEvery), fmtDuration(o.Quiet))
	retries = fmt.Sprintf("Through the SSRF-safe client, up to %d tries of %s each: at once, then after %s, doubling each time (±20 %%). Any 2xx answer is delivered; a longer Retry-After is honoured.",
		o.Attempts, fmtDuration(o.AttemptTimeout), fmtDuration(o.FirstRetry))
	return bursts, retries
}
