package metrics

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// stateDescs describe the metrics read at scrape time.
type stateDescs struct {
	refusals, queue, commitFailures, subscribers, dropped          *prometheus.Desc
	diskFree, diskSize, diskSoft, diskHard, writesFailing, ready   *prometheus.Desc
	leader                                                         *prometheus.Desc
	stage, stages, ratio, rollState, held, started, reach, checked *prometheus.Desc
	gObserved, gBad, gRatio, gMaxRatio, gMinVolume, gWindow, gHit  *prometheus.Desc
}

func (m *Metrics) defineState() {
	d := &m.st
	d.refusals = m.desc("dashboard_ingest_refusals_total", "counter",
		"Input refused and not stored for a budget, a rate limit, its shape or size, or the disk, by environment, input and reason (the Overview's and /readyz's counters).",
		"env", "input", "reason")
	d.queue = m.desc("dashboard_ingest_queue_length", "gauge", "Submissions waiting for the ingester's writer now.")
	d.commitFailures = m.desc("dashboard_ingest_commit_failures_total", "counter",
		"Group-commit transactions that failed (every input in them was answered with an error, none acknowledged).")
	d.subscribers = m.desc("dashboard_live_stream_subscribers", "gauge", "Live event streams (the Events page's server-sent events) open now.")
	d.dropped = m.desc("dashboard_live_stream_dropped_total", "counter",
		"Live streams dropped for falling behind; the browser reconnects and resumes from its last event.")
	d.diskFree = m.desc("dashboard_disk_free_bytes", "gauge", "Free space on the data directory's filesystem, as last read (at most every 5 s).")
	d.diskSize = m.desc("dashboard_disk_size_bytes", "gauge", "Size of the data directory's filesystem.")
	d.diskSoft = m.desc("dashboard_disk_soft_watermark_bytes", "gauge",
		"Free space below which unauthenticated input is not stored (0: off).")
	d.diskHard = m.desc("dashboard_disk_hard_watermark_bytes", "gauge",
		"Free space below which nothing new is stored and signed webhooks are answered 503 (0: off).")
	d.writesFailing = m.desc("dashboard_storage_writes_failing", "gauge",
		"1 while a write recently failed for want of storage (disk full, I/O error) and none has succeeded since, else 0.")
	d.ready = m.desc("dashboard_ready", "gauge", "1 when /readyz answers ready or degraded, 0 when it answers not_ready.")
	d.leader = m.desc("dashboard_leader", "gauge",
		"1 on the instance that runs the schedulers (retention, guardrails and auto-advance, alerts, the audit head), 0 on the others; always 1 on SQLite.")
	d.stage = m.desc("dashboard_rollout_stage", "gauge", "The rollout's current stage (0: not started).")
	d.stages = m.desc("dashboard_rollout_stages", "gauge", "Stages in the rollout's plan.")
	d.ratio = m.desc("dashboard_rollout_production_ratio", "gauge",
		"Share of users the current stage's percentage sends to production (0 to 1; 0 when killed or not started).")
	d.rollState = m.desc("dashboard_rollout_state", "gauge", "1 for the rollout's current state, 0 for the others.", "state")
	d.held = m.desc("dashboard_rollout_held", "gauge", "1 while a guardrail breach holds the rollout and nobody has acted since, else 0.")
	d.started = m.desc("dashboard_rollout_stage_started_timestamp_seconds", "gauge",
		"When the current stage began, in Unix seconds (absent before the first stage).")
	d.reach = m.desc("dashboard_rollout_reach_users", "gauge",
		"Estimated distinct users decided into production at the current stage.")
	d.checked = m.desc("dashboard_rollout_guardrails_checked_timestamp_seconds", "gauge",
		"When the guardrails were last evaluated, in Unix seconds (every 15 s; absent before the first).")
	d.gObserved = m.desc("dashboard_rollout_guardrail_observations", "gauge",
		"Observations of a guardrail's signal over its window at the last evaluation.", "signal")
	d.gBad = m.desc("dashboard_rollout_guardrail_bad_observations", "gauge",
		"Bad observations (errors) of a guardrail's signal over its window at the last evaluation.", "signal")
	d.gRatio = m.desc("dashboard_rollout_guardrail_error_ratio", "gauge",
		"Bad observations over all of a guardrail's signal at the last evaluation (0 to 1).", "signal")
	d.gMaxRatio = m.desc("dashboard_rollout_guardrail_max_error_ratio", "gauge",
		"The error ratio above which a guardrail breaches.", "signal")
	d.gMinVolume = m.desc("dashboard_rollout_guardrail_min_observations", "gauge",
		"Observations a guardrail needs in its window before it judges.", "signal")
	d.gWindow = m.desc("dashboard_rollout_guardrail_window_seconds", "gauge", "A guardrail's window.", "signal")
	d.gHit = m.desc("dashboard_rollout_guardrail_breached", "gauge",
		"1 when a guardrail breached at the last evaluation, else 0.", "signal")
}

// ingestCollector emits dashboard_ingest_total and what IngestState holds.
type ingestCollector struct{ m *Metrics }

func (c ingestCollector) Describe(ch chan<- *prometheus.Desc) {
	d := &c.m.st
	for _, x := range []*prometheus.Desc{c.m.ingest.total, d.refusals, d.queue, d.commitFailures, d.subscribers, d.dropped,
		d.diskFree, d.diskSize, d.diskSoft, d.diskHard, d.writesFailing} {
		ch <- x
	}
}

func (c ingestCollector) Collect(ch chan<- prometheus.Metric) {
	m, d := c.m, &c.m.st
	src := m.ingestSrc.Load()
	var st IngestState
	if src != nil {
		st = (*src)()
	}
	var cells [3][sourceCount][outcomeCount]float64
	for e := range cells {
		for s := range sourceCount {
			for o := range outcomeCount {
				cells[e][s][o] = float64(m.ingest.n[e][s][o].Load())
			}
		}
	}
	type refusalKey struct{ env, input, reason string }
	refused := map[refusalKey]float64{}
	for _, r := range st.Refusals {
		env := Env(r.Env)
		refused[refusalKey{env, bound(RefusalInputs, r.Input), bound(RefusalReasons, r.Reason)}] += float64(r.Total)
		if r.Ingest && r.Source < sourceCount && r.Outcome < outcomeCount {
			cells[envIndex(env)][r.Source][r.Outcome] += float64(r.Total)
		}
	}
	for e, env := range Envs {
		for s := range sourceCount {
			for o := range outcomeCount {
				v := cells[e][s][o]
				if v == 0 && (e == 2 || !slices.Contains(possibleOutcomes[s], o)) {
					continue
				}
				ch <- prometheus.MustNewConstMetric(m.ingest.total, prometheus.CounterValue, v, env, s.String(), o.String())
			}
		}
	}
	for k, v := range refused {
		ch <- prometheus.MustNewConstMetric(d.refusals, prometheus.CounterValue, v, k.env, k.input, k.reason)
	}
	if src == nil {
		return
	}
	gauge := func(desc *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v)
	}
	gauge(d.queue, float64(st.Queued))
	ch <- prometheus.MustNewConstMetric(d.commitFailures, prometheus.CounterValue, float64(st.CommitFailures))
	gauge(d.subscribers, float64(st.StreamSubscribers))
	ch <- prometheus.MustNewConstMetric(d.dropped, prometheus.CounterValue, float64(st.StreamsDropped))
	if st.Disk.Known {
		gauge(d.diskFree, float64(st.Disk.Free))
		gauge(d.diskSize, float64(st.Disk.Size))
		gauge(d.diskSoft, float64(st.Disk.Soft))
		gauge(d.diskHard, float64(st.Disk.Hard))
	}
	gauge(d.writesFailing, b2f(st.Disk.WritesFailing))
}

// rolloutCollector emits what RolloutState holds.
type rolloutCollector struct{ m *Metrics }

func (c rolloutCollector) Describe(ch chan<- *prometheus.Desc) {
	d := &c.m.st
	for _, x := range []*prometheus.Desc{d.stage, d.stages, d.ratio, d.rollState, d.held, d.started, d.reach, d.checked,
		d.gObserved, d.gBad, d.gRatio, d.gMaxRatio, d.gMinVolume, d.gWindow, d.gHit} {
		ch <- x
	}
}

func (c rolloutCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.m.rollSrc.Load()
	if src == nil {
		return
	}
	d, r := &c.m.st, (*src)()
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	gauge(d.stage, float64(r.Stage))
	gauge(d.stages, float64(r.Stages))
	gauge(d.ratio, r.ProductionRatio)
	for _, s := range RolloutStates {
		gauge(d.rollState, b2f(r.State == s), s)
	}
	gauge(d.held, b2f(r.Held))
	if !r.StageStartedAt.IsZero() {
		gauge(d.started, float64(r.StageStartedAt.UnixMilli())/1000)
	}
	gauge(d.reach, float64(r.Reach))
	if r.GuardrailsCheckedAt.IsZero() {
		return
	}
	gauge(d.checked, float64(r.GuardrailsCheckedAt.UnixMilli())/1000)
	seen := map[string]bool{}
	for _, g := range r.Guardrails {
		sig := bound(Signals, g.Signal)
		if seen[sig] { // one guardrail per signal; a duplicate series would fail the scrape
			continue
		}
		seen[sig] = true
		ratio := 0.0
		if g.Total > 0 {
			ratio = float64(g.Bad) / float64(g.Total)
		}
		gauge(d.gObserved, float64(g.Total), sig)
		gauge(d.gBad, float64(g.Bad), sig)
		gauge(d.gRatio, ratio, sig)
		gauge(d.gMaxRatio, g.MaxRatio, sig)
		gauge(d.gMinVolume, float64(g.MinVolume), sig)
		gauge(d.gWindow, g.Window.Seconds(), sig)
		gauge(d.gHit, b2f(g.Breached), sig)
	}
}

// readinessCollector emits dashboard_ready and dashboard_leader.
type readinessCollector struct{ m *Metrics }

func (c readinessCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.m.st.ready
	ch <- c.m.st.leader
}

func (c readinessCollector) Collect(ch chan<- prometheus.Metric) {
	if ready := c.m.readySrc.Load(); ready != nil {
		ch <- prometheus.MustNewConstMetric(c.m.st.ready, prometheus.GaugeValue, b2f((*ready)()))
	}
	if leading := c.m.leaderSrc.Load(); leading != nil {
		ch <- prometheus.MustNewConstMetric(c.m.st.leader, prometheus.GaugeValue, b2f((*leading)()))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
