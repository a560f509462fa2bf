package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// IngestState is what the ingest pipeline already keeps, read at scrape time.
type IngestState struct {
	// Refusals are the pipeline's counters of input refused and not stored, since the start.
	Refusals []Refusal
	// Queued is how many submissions wait for the ingester's writer now.
	Queued int64
	// CommitFailures counts group-commit transactions that failed.
	CommitFailures uint64
	// StreamSubscribers is how many live streams are open now; StreamsDropped how many were
	// dropped for falling behind.
	StreamSubscribers int
	StreamsDropped    uint64
	Disk              DiskState
}

// Refusal is one counter of refused input: Env (bounded to Envs), Input (RefusalInputs) and
// Reason (RefusalReasons), Total since the start.
type Refusal struct {
	Env, Input, Reason string
	Total              int64
	// Ingest says the refusal was an input's outcome, counted in dashboard_ingest_total as Source
	// and Outcome; it is false for a refused webhook delivery that was not kept (the delivery's
	// outcome, its rejection, is counted already).
	Ingest  bool
	Source  Source
	Outcome Outcome
}

// DiskState is the data directory's filesystem as the disk guard last read it.
type DiskState struct {
	Known         bool   // a reading of free space succeeded
	Free, Size    uint64 // bytes
	Soft, Hard    uint64 // the watermarks, in bytes on this filesystem (0: off)
	WritesFailing bool   // a write failed for want of storage recently, and none succeeded since
}

// RolloutState is the rollout as it is now, read at scrape time.
type RolloutState struct {
	State           string // one of RolloutStates
	Stage, Stages   int    // the current stage (0: not started) and how many the plan has
	ProductionRatio float64
	Held            bool      // a guardrail stopped it and nobody has acted since
	StageStartedAt  time.Time // zero before the first stage
	Reach           int64     // estimated distinct users decided into production at this stage
	// Guardrails are the verdicts of the guardrails' last evaluation, at GuardrailsCheckedAt
	// (zero before the first).
	Guardrails          []GuardrailState
	GuardrailsCheckedAt time.Time
}

// GuardrailState is one guardrail and what it saw over its window.
type GuardrailState struct {
	Signal     string // one of Signals
	Bad, Total int64
	MaxRatio   float64
	MinVolume  int64
	Window     time.Duration
	Breached   bool
}

// ingestCounts are the outcomes recorded by Ingested: one atomic counter per environment,
// source and outcome.
type ingestCounts struct {
	total *prometheus.Desc
	n     [3][sourceCount][outcomeCount]atomic.Uint64
}

func envIndex(env string) int {
	switch env {
	case "sandbox":
		return 0
	case "production":
		return 1
	}
	return 2
}

func (c *ingestCounts) add(env int, s Source, o Outcome, n uint64) { c.n[env][s][o].Add(n) }

// possibleOutcomes are the outcomes each source can have in a real environment: their series are
// exported from the start (at 0), so that rate() and increase() see the first ones. Others
// (errors, env "other") appear when they first happen.
var possibleOutcomes = [sourceCount][]Outcome{
	SourceWebhook: {OutcomeStored, OutcomeDuplicate, OutcomeRefusedSignature, OutcomeRefusedMalformed, OutcomeRefusedTooLarge,
		OutcomeRefusedDisk, OutcomeRefusedWriteFailed},
	SourceCallback: {OutcomeStored, OutcomeDuplicate, OutcomeRefusedMalformed, OutcomeRefusedTooLarge, OutcomeRefusedRateLimited,
		OutcomeRefusedQuota, OutcomeRefusedDisk, OutcomeRefusedWriteFailed},
	SourceReturn:  {OutcomeStored, OutcomeDuplicate, OutcomeRefusedRateLimited, OutcomeRefusedQuota, OutcomeRefusedDisk, OutcomeRefusedWriteFailed},
	SourceAPICall: {OutcomeStored, OutcomeInvalid, OutcomeRefusedDisk, OutcomeRefusedWriteFailed},
}
