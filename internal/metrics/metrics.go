// Package metrics owns the dashboard's Prometheus registry: every metric's name, help and labels,
// the counters and histograms that domain packages add to as things happen (ingest outcomes and
// latency, group commits, refused webhooks, rollout decisions, key verifications), and the
// collectors that read state the domain packages already keep (refusal counters, the ingester's
// queue, live-stream subscribers, the disk, the rollout and its guardrails) at scrape time.
//
// Domain packages take a *Metrics in their Config and call its methods; a nil *Metrics records
// nothing, so tests and tools that do not care need not build one. The package imports nothing
// of the module: what it reads, it reads through the plain types of this package (IngestState,
// RolloutState), filled in by the package that owns the state.
//
// No label carries free text: every value comes from a closed list (labels.go), so a request
// cannot create a series, and no secret, id, address or request id can reach a label.
package metrics

import (
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// BuildInfo describes the running binary (dashboard_build_info's labels).
type BuildInfo struct {
	Version   string // the short version (a tag, dev-<commit>, or dev)
	Revision  string // the VCS commit, "" when unknown
	GoVersion string // default: runtime.Version()
}

// Def is one metric the package defines, for documentation and its test.
type Def struct {
	Name   string
	Type   string // counter, gauge or histogram
	Labels []string
	Help   string
}

// Metrics is the registry and the metrics recorded into it. Its methods are safe for concurrent
// use, and do nothing on a nil *Metrics.
type Metrics struct {
	reg  *prometheus.Registry
	defs []Def

	ingest        ingestCounts
	ingestSeconds [sourceCount]prometheus.Observer
	commitSeconds prometheus.Histogram
	commitEvents  prometheus.Histogram
	rejections    *prometheus.CounterVec
	verifications *prometheus.CounterVec
	decisions     [decisionCount]prometheus.Counter
	decisionVec   *prometheus.CounterVec
	trips         *prometheus.CounterVec
	auditHead     auditHeadMetrics
	st            stateDescs

	// Where state is read at scrape time (nil until set).
	ingestSrc atomic.Pointer[func() IngestState]
	rollSrc   atomic.Pointer[func() RolloutState]
	readySrc  atomic.Pointer[func() bool]
	leaderSrc atomic.Pointer[func() bool]
}

// Buckets of the latency histograms, in seconds: a durable commit takes a few milliseconds on a
// good disk, and more than a second is an incident.
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// New builds the registry with every metric, the Go runtime and process collectors, and the
// build info.
func New(b BuildInfo) *Metrics {
	if b.GoVersion == "" {
		b.GoVersion = runtime.Version()
	}
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	build := m.gaugeVec("dashboard_build_info", "The running binary: always 1, with its version, VCS revision and Go version as labels.",
		"version", "revision", "goversion")
	build.WithLabelValues(clip(b.Version), clip(b.Revision), clip(b.GoVersion)).Set(1)

	m.ingest.total = m.desc("dashboard_ingest_total", "counter",
		"Inputs received by the ingest pipeline, by environment, source and outcome. Refusals for the budgets, rate limits and disk are the counters of dashboard_ingest_refusals_total, read here too.",
		"env", "source", "outcome")
	ingestSeconds := m.histogramVec("dashboard_ingest_duration_seconds",
		"Time from an input entering the ingest pipeline to its durable answer (verification, queueing and group commit), for inputs stored or found duplicate.",
		latencyBuckets, "source")
	for s := range sourceCount {
		m.ingestSeconds[s] = ingestSeconds.WithLabelValues(s.String())
	}
	m.commitSeconds = m.histogram("dashboard_ingest_commit_duration_seconds",
		"Time one group-commit transaction of the ingester took, fsync included.", latencyBuckets)
	m.commitEvents = m.histogram("dashboard_ingest_commit_events",
		"Inputs written by one group-commit transaction (how many requests shared one fsync).",
		[]float64{1, 2, 4, 8, 16, 32, 64, 128, 256})
	m.rejections = m.counterVec("dashboard_webhook_rejections_total",
		"Webhook deliveries refused, by environment and reason (a signature that does not verify, a malformed body, ...).", "env", "reason")
	m.verifications = m.counterVec("dashboard_key_verifications_total",
		"Verifications of an environment's API keys against Tensfer, by outcome.", "env", "outcome")
	m.decisionVec = m.counterVec("dashboard_rollout_decisions_total",
		"Rollout decisions served (API, OFREP), by the environment decided and the reason.", "env", "reason")
	m.trips = m.counterVec("dashboard_rollout_guardrail_trips_total",
		"Times a guardrail breach paused the rollout or rolled it back, by the signal that breached.", "signal")
	for _, env := range Envs[:2] {
		for _, r := range RejectionReasons {
			m.rejections.WithLabelValues(env, r)
		}
		for _, o := range VerifyOutcomes {
			m.verifications.WithLabelValues(env, o)
		}
	}
	for i, k := range decisionKinds {
		m.decisions[i] = m.decisionVec.WithLabelValues(k.env, k.reason)
	}
	for _, s := range Signals {
		m.trips.WithLabelValues(s)
	}
	m.defineState()
	m.defineAuditHead()
	m.reg.MustRegister(ingestCollector{m}, rolloutCollector{m}, readinessCollector{m})
	return m
}

// Handler serves the registry in the Prometheus text format (or another format the scraper asks
// for). It knows nothing of authentication: the caller decides who reaches it.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Gatherer is the registry, for tests and tools that read it in process.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Defs lists every metric the package defines (the Go runtime's and the process's aside).
func (m *Metrics) Defs() []Def { return m.defs }

// Ingested records how one input ended, and for an input stored or found duplicate how long it
// took. env is bounded to Envs.
//
// NB: refusals for the budgets, rate limits and disk (outcomes refused_rate_limited,
// refused_quota, refused_disk, refused_write_failed and a callback's refused_malformed or
// refused_too_large) are not recorded here: they are read from IngestState.Refusals, the
// counters the pipeline keeps anyway, so that nothing is counted twice.
func (m *Metrics) Ingested(env string, src Source, out Outcome, took time.Duration) {
	if m == nil || src >= sourceCount || out >= outcomeCount {
		return
	}
	m.ingest.add(envIndex(env), src, out, 1)
	if out.Accepted() {
		m.ingestSeconds[src].Observe(took.Seconds())
	}
}

// Committed records one group-commit transaction of events inputs that took took.
func (m *Metrics) Committed(events int, took time.Duration) {
	if m == nil {
		return
	}
	m.commitSeconds.Observe(took.Seconds())
	m.commitEvents.Observe(float64(events))
}

// Rejected records a refused webhook delivery; reason is bounded to RejectionReasons.
func (m *Metrics) Rejected(env, reason string) {
	if m == nil {
		return
	}
	m.rejections.WithLabelValues(Env(env), bound(RejectionReasons, reason)).Inc()
}

// Verified records a verification of env's keys; outcome is bounded to VerifyOutcomes.
func (m *Metrics) Verified(env, outcome string) {
	if m == nil {
		return
	}
	m.verifications.WithLabelValues(Env(env), bound(VerifyOutcomes, outcome)).Inc()
}

// GuardrailTripped records a guardrail breach that paused the rollout or rolled it back.
func (m *Metrics) GuardrailTripped(signal string) {
	if m == nil {
		return
	}
	m.trips.WithLabelValues(bound(Signals, signal)).Inc()
}

// decisionKind is one (environment, reason) a decision can have.
type decisionKind struct{ env, reason string }

// decisionKinds are the decisions the rollout makes (internal/rollout's Decide), each with a
// counter resolved once, so that counting a decision is one atomic add.
var decisionKinds = [...]decisionKind{
	{"production", "percentage"}, {"production", "cohort"}, {"sandbox", "cohort"},
	{"off", "blocked"}, {"off", "killed"}, {"off", "not_started"}, {"off", "default"},
}

const decisionCount = len(decisionKinds)

// Decided counts one rollout decision. It is on the decide hot path: no allocation, no lock, one
// atomic add for every decision the rollout can make.
func (m *Metrics) Decided(env, reason string) {
	if m == nil {
		return
	}
	i := -1
	switch reason {
	case "percentage":
		i = 0
	case "cohort":
		switch env {
		case "production":
			i = 1
		case "sandbox":
			i = 2
		}
	case "blocked":
		i = 3
	case "killed":
		i = 4
	case "not_started":
		i = 5
	case "default":
		i = 6
	}
	if i >= 0 && decisionKinds[i].env == env {
		m.decisions[i].Inc()
		return
	}
	// Not a decision the rollout makes today: counted all the same, within the closed lists.
	m.decisionVec.WithLabelValues(bound(DecisionEnvs, env), bound(DecisionReasons, reason)).Inc()
}

// ReadIngest sets where the ingest pipeline's state is read at scrape time.
func (m *Metrics) ReadIngest(f func() IngestState) {
	if m != nil {
		m.ingestSrc.Store(&f)
	}
}

// ReadRollout sets where the rollout's state is read at scrape time.
func (m *Metrics) ReadRollout(f func() RolloutState) {
	if m != nil {
		m.rollSrc.Store(&f)
	}
}

// ReadReadiness sets the check behind dashboard_ready (the same as /readyz's).
func (m *Metrics) ReadReadiness(f func() bool) {
	if m != nil {
		m.readySrc.Store(&f)
	}
}

// ReadLeader sets the check behind dashboard_leader (cluster.Leader's Leading).
func (m *Metrics) ReadLeader(f func() bool) {
	if m != nil {
		m.leaderSrc.Store(&f)
	}
}

// The constructors below register a metric and record its definition.

func (m *Metrics) define(name, typ, help string, labels []string) {
	m.defs = append(m.defs, Def{Name: name, Type: typ, Labels: labels, Help: help})
}

func (m *Metrics) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	m.define(name, "counter", help, labels)
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	m.reg.MustRegister(v)
	return v
}

func (m *Metrics) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	m.define(name, "gauge", help, labels)
	v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	m.reg.MustRegister(v)
	return v
}

func (m *Metrics) histogram(name, help string, buckets []float64) prometheus.Histogram {
	m.define(name, "histogram", help, nil)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	m.reg.MustRegister(h)
	return h
}

func (m *Metrics) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	m.define(name, "histogram", help, labels)
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	m.reg.MustRegister(v)
	return v
}

// desc defines a metric that a collector of this package emits at scrape time.
func (m *Metrics) desc(name, typ, help string, labels ...string) *prometheus.Desc {
	m.define(name, typ, help, labels)
	return prometheus.NewDesc(name, help, labels, nil)
}

// clip bounds a build-info label (they come from the build, not from requests; still bounded).
func clip(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}
