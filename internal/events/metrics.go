package events

import (
	"errors"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/metrics"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// observe records how one input ended (see metrics.Metrics.Ingested). A *Refusal is not recorded
// here: it was counted by countRefusal, and the metrics read those counters at scrape time.
func (s *Service) observe(env string, src metrics.Source, start time.Time, res db.IngestResult, err error) {
	m := s.cfg.Metrics
	if m == nil {
		return
	}
	var out metrics.Outcome
	var rej *Rejection
	switch {
	case err == nil && res.Duplicate:
		out = metrics.OutcomeDuplicate
	case err == nil:
		out = metrics.OutcomeStored
	case isRefusal(err):
		return
	case errors.As(err, &rej):
		m.Rejected(env, rej.Reason)
		out = rejectionOutcome(rej.Reason)
	case errors.As(err, new(validation.Errors)):
		out = metrics.OutcomeInvalid
	default:
		out = metrics.OutcomeError
	}
	m.Ingested(env, src, out, time.Since(start))
}

// rejectionOutcome is the ingest outcome of a refused webhook delivery.
func rejectionOutcome(reason string) metrics.Outcome {
	switch reason {
	case db.RejectUnknownEnvironment:
		return metrics.OutcomeRefusedUnknownEnv
	case db.RejectMalformedJSON:
		return metrics.OutcomeRefusedMalformed
	case db.RejectBodyTooLarge:
		return metrics.OutcomeRefusedTooLarge
	}
	return metrics.OutcomeRefusedSignature // the signature, its headers or its timestamp
}

// refusalOutcome is the ingest outcome of a refusal's reason.
func refusalOutcome(reason string) metrics.Outcome {
	switch reason {
	case RefusedRateLimited:
		return metrics.OutcomeRefusedRateLimited
	case RefusedQuota:
		return metrics.OutcomeRefusedQuota
	case RefusedShape:
		return metrics.OutcomeRefusedMalformed
	case RefusedTooLarge:
		return metrics.OutcomeRefusedTooLarge
	case RefusedDiskLow, RefusedDiskCritical:
		return metrics.OutcomeRefusedDisk
	case RefusedWriteFailed:
		return metrics.OutcomeRefusedWriteFailed
	}
	return metrics.OutcomeError
}

// inputSource is the ingest source of an input; ok is false for a refused delivery, whose
// outcome (its rejection) is recorded when it is refused.
func inputSource(input string) (src metrics.Source, ok bool) {
	switch input {
	case InputWebhook:
		return metrics.SourceWebhook, true
	case InputCallback:
		return metrics.SourceCallback, true
	case InputReturn:
		return metrics.SourceReturn, true
	case InputAPICall:
		return metrics.SourceAPICall, true
	}
	return 0, false
}

// metricsState is what the pipeline keeps, for the metrics to read at scrape time.
func (s *Service) metricsState() metrics.IngestState {
	counts := s.refused.report(s.now(), true)
	st := metrics.IngestState{Refusals: make([]metrics.Refusal, 0, len(counts))}
	for _, c := range counts {
		r := metrics.Refusal{Env: c.Env, Input: c.Input, Reason: c.Reason, Total: c.Total, Outcome: refusalOutcome(c.Reason)}
		r.Source, r.Ingest = inputSource(c.Input)
		st.Refusals = append(st.Refusals, r)
	}
	stats := s.ingester.Stats()
	st.Queued, st.CommitFailures = stats.Queued, stats.Failed
	st.StreamSubscribers, st.StreamsDropped = s.hub.Subscribers(), s.hub.Dropped()
	d := s.disk.Status()
	st.Disk = metrics.DiskState{Known: d.Space.Total > 0, Free: d.Space.Free, Size: d.Space.Total, Soft: d.Soft, Hard: d.Hard,
		WritesFailing: d.Failing()}
	return st
}
