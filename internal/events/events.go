// Package events is the event pipeline: verifying and storing inbound webhooks, callback beacons
// and API-call reports (through the database's group-commit ingester, acknowledged only after
// commit), the cache of webhook signing keys, publishing committed events to the live feed,
// lookup, replay to the integrator's backend, retention, and the error signals that the go-live
// checklist, the overview and the rollout's guardrails read.
//
// It is reachable without HTTP: the web handlers parse a request into a Delivery or an input
// and call it, and the dashboard's own test event goes through the same functions in process.
package events

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/cluster"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/diskguard"
	"github.com/tensfer-golive/dashboard/internal/feed"
	"github.com/tensfer-golive/dashboard/internal/metrics"
	"github.com/tensfer-golive/dashboard/internal/ratelimit"
	"github.com/tensfer-golive/dashboard/internal/secrets"
)

// Config is what a Service needs. Zero values get the defaults noted.
type Config struct {
	DB  *db.DB
	Box *secrets.Box
	Log *slog.Logger
	Now func() time.Time
	// Demo is the built-in simulator's mode. Only what the simulator produces is tagged demo:
	// what is stored under WithDemo, and webhooks and callbacks that carry DemoMark in
	// DemoHeader. Anything else (an integrator's API-call report with a real token, say) is not.
	Demo bool
	// Render turns a committed event into the feed row's HTML. It is called once per event, and
	// only while someone watches the live feed.
	Render func(db.Event) []byte
	// HTTPClient sends replays to the user-configured replay URL; it must refuse internal
	// addresses (safehttp).
	HTTPClient           *http.Client
	UserAgent            string // of replays
	FeedBuffer           int    // recent events kept for stream resume (default 4096)
	FeedSubscriberBuffer int    // rows a stream may fall behind before it is dropped (default 256)
	RetentionDays        int    // events older than this are purged (default 30)
	// PublicBudget bounds the bytes and rows of unauthenticated input stored (zero values:
	// DefaultPublicBudget's). Verified beacons and signed refusals get a budget of the same size
	// of their own.
	PublicBudget PublicBudget
	// Disk watches the data directory's free space and failed writes (default: a guard with the
	// watermarks off, which still notices failed writes).
	Disk *diskguard.Guard
	// Metrics records ingest outcomes, latencies and group commits, and reads the pipeline's
	// counters at scrape time (nil: none).
	Metrics *metrics.Metrics
	// Bus carries commits to the live feeds of every instance (TopicEvents) and secret changes to
	// every key cache (TopicSecrets). Nil: this service's own commits and InvalidateSecrets only.
	Bus cluster.Bus
}

// FeedRow is what the live feed carries: the fields its filters look at, and the row rendered
// once when someone is watching, so the HTML is made once per event however many browsers
// watch, and not at all when nobody does (the ring of recent items then holds no payloads).
type FeedRow struct {
	Env        string
	Source     string
	Type       string
	RequestID  string
	ReceivedAt int64 // Unix ms
	IsError    bool
	HTML       []byte // nil when nobody was subscribed at publish time; render from the database then
}

// Service is the event pipeline. Build it with New and stop it with Close.
type Service struct {
	cfg           Config
	demoMark      string // the secret the simulator sends in DemoHeader; "" outside demo mode
	db            *db.DB
	log           *slog.Logger
	ingester      *db.Ingester
	hub           *feed.Hub[FeedRow]
	pubMu         sync.Mutex // publishing to hub: the local commits and those read after a Bus message
	unsubscribe   []func()
	committed     chan []db.Event
	publisherDone chan struct{}
	closeOnce     sync.Once

	keys         keyCache
	touched      *ratelimit.Throttle[string] // recording when a secret last matched
	rejectLimit  *ratelimit.Limiter          // storing refused webhook deliveries, per sender (IPv6 per /48)
	rejectGlobal *ratelimit.Limiter          // storing refused webhook deliveries, all senders together
	quotas       *ratelimit.Quotas           // bytes and rows of unauthenticated input, per environment and input and in all
	// vouched is the separate budget of input that only a key holder can produce (beacons whose
	// token verified, refused deliveries whose signature verified), so that no unauthenticated
	// flood can spend it; beaconUsers bounds each verified user's beacons within it, and
	// signedSeen keeps a signed refusal once a minute per webhook-id (a replayed capture).
	vouched     *ratelimit.Quotas
	beaconUsers *ratelimit.Limiter
	signedSeen  recentIDs
	disk        *diskguard.Guard
	// charged is the bytes drawn from the budgets (both kinds) since start: what the test that
	// holds the charge to the database's real growth compares with.
	charged   atomic.Int64
	refused   refusals                    // input refused and not stored, counted
	writeLog  *ratelimit.Throttle[string] // logging storage failures
	clientsMu sync.Mutex
	clients   map[string]string // sender key -> fingerprint (clientID)
	trends    trendCache        // the Overview's last hourly counts
}

// New starts the ingester and the publisher that feeds the live stream.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.RetentionDays == 0 {
		cfg.RetentionDays = 30
	}
	if cfg.Render == nil {
		cfg.Render = func(db.Event) []byte { return nil }
	}
	if cfg.PublicBudget.BytesPerSecond <= 0 {
		cfg.PublicBudget.BytesPerSecond = DefaultPublicBudget.BytesPerSecond
	}
	if cfg.PublicBudget.RowsPerSecond <= 0 {
		cfg.PublicBudget.RowsPerSecond = DefaultPublicBudget.RowsPerSecond
	}
	if cfg.Disk == nil {
		cfg.Disk = diskguard.New(diskguard.Config{Off: true, Now: cfg.Now, Space: func(string) (diskguard.Space, error) { return diskguard.Space{}, nil }})
	}
	s := &Service{cfg: cfg, db: cfg.DB, log: cfg.Log, clients: map[string]string{}, disk: cfg.Disk}
	if cfg.Demo {
		s.demoMark = auth.RandomID(24)
	}
	perKey, global := cfg.PublicBudget.Limits()
	s.quotas = ratelimit.NewQuotas(perKey, global, s.now)
	s.vouched = ratelimit.NewQuotas(perKey, global, s.now)
	s.beaconUsers = ratelimit.New(ratelimit.Rate{Burst: 60, Every: time.Second}, s.now)
	s.writeLog = ratelimit.NewThrottle[string](time.Minute)
	s.touched = ratelimit.NewThrottle[string](30 * time.Second)
	s.rejectLimit = ratelimit.New(ratelimit.Rate{Burst: 100, Every: 100 * time.Millisecond}, s.now)
	s.rejectGlobal = ratelimit.New(ratelimit.Rate{Burst: 500, Every: 20 * time.Millisecond}, s.now)
	last, err := s.db.LatestEventID(ctx)
	if err != nil {
		return nil, err
	}
	s.hub = feed.New[FeedRow](feed.Options{StartAfter: last, MaxSubscribers: 500, Buffer: cfg.FeedBuffer, SubscriberBuffer: cfg.FeedSubscriberBuffer})
	s.committed = make(chan []db.Event, 1024)
	opts := db.IngestOptions{OnCommit: func(evs []db.Event) { s.committed <- evs }}
	if cfg.Metrics != nil {
		opts.OnBatch = cfg.Metrics.Committed
	}
	s.ingester = db.NewIngester(s.db, opts)
	cfg.Metrics.ReadIngest(s.metricsState)
	s.publisherDone = make(chan struct{})
	go s.publish()
	s.ingester.Start()
	s.follow()
	return s, nil
}

func (s *Service) now() time.Time { return s.cfg.Now() }

// Hub is the live feed that committed events are published to, in commit order.
func (s *Service) Hub() *feed.Hub[FeedRow] { return s.hub }

// IngestStats reports the ingester's counters (for benchmarks).
func (s *Service) IngestStats() db.IngestStats { return s.ingester.Stats() }

// publish hands committed events to the hub, in commit order, rendered when someone watches.
func (s *Service) publish() {
	defer close(s.publisherDone)
	for evs := range s.committed {
		s.pubMu.Lock()
		if len(evs) > 0 && s.hub.Last() < evs[0].ID-1 {
			// Ids below this commit that the feed lacks were committed by another instance whose
			// Bus message has not come yet (or by nobody: a gap): read them first, or the hub,
			// which takes ids only in increasing order, would never take them.
			ctx, cancel := context.WithTimeout(context.Background(), busReadTimeout)
			s.catchUp(ctx, evs[0].ID-1)
			cancel()
		}
		s.hub.Publish(s.feedItems(evs)...)
		s.pubMu.Unlock()
		if s.cfg.Bus != nil && len(evs) > 0 {
			s.cfg.Bus.Publish(cluster.Message{Topic: cluster.TopicEvents, ID: strconv.FormatInt(evs[len(evs)-1].ID, 10)})
		}
	}
}

// feedItems turns committed events into the feed's items, rendered when someone watches.
func (s *Service) feedItems(evs []db.Event) []feed.Item[FeedRow] {
	watched := s.hub.Subscribers() > 0
	items := make([]feed.Item[FeedRow], 0, len(evs))
	for _, e := range evs {
		row := FeedRow{Env: e.Env, Source: e.Source, Type: e.Type, RequestID: e.RequestID, ReceivedAt: e.ReceivedAt.UnixMilli(), IsError: e.IsError}
		if watched {
			row.HTML = s.cfg.Render(e)
		}
		items = append(items, feed.Item[FeedRow]{ID: e.ID, Value: row})
	}
	return items
}

// submit stores one input durably through the group-commit ingester. input names it for the
// counters (one of the Input* constants). Nothing is written below the hard disk watermark, and a
// write that fails for want of storage is a *Refusal: the sender is told to retry, never that it
// was stored.
func (s *Service) submit(ctx context.Context, input string, in db.EventInput) (db.IngestResult, error) {
	if err := s.checkDisk(in.Env, input, true); err != nil {
		return db.IngestResult{}, err
	}
	in.Demo = in.Demo || isDemo(ctx)
	res, err := s.ingester.Submit(ctx, []db.EventInput{in})
	if err != nil {
		return db.IngestResult{}, s.storageFailed(in.Env, input, err)
	}
	s.disk.WriteSucceeded()
	return res[0], nil
}

// EndStreams closes every live stream so a graceful shutdown does not wait on them; browsers
// reconnect to the next instance with their Last-Event-ID.
func (s *Service) EndStreams() { s.hub.Close() }

// Close stops ingest after every acknowledged event is stored and published, and ends live
// streams. Call it after the HTTP server has shut down.
func (s *Service) Close() error {
	var err error
	s.closeOnce.Do(func() {
		for _, stop := range s.unsubscribe {
			stop()
		}
		err = s.ingester.Close()
		close(s.committed)
		<-s.publisherDone
		s.hub.Close()
	})
	return err
}
