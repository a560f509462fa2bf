package events

import (
	"slices"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/metrics"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// TestEveryReasonHasItsLabel: each input, refusal reason and rejection reason the pipeline can
// give is on the metrics' closed lists (else it would be counted as "other"), and each refusal
// of an input is one of that input's ingest outcomes.
func TestEveryReasonHasItsLabel(t *testing.T) {
	inputs := []string{InputCallback, InputReturn, InputRefused, InputWebhook, InputAPICall}
	reasons := []string{RefusedRateLimited, RefusedQuota, RefusedShape, RefusedTooLarge, RefusedDiskLow, RefusedDiskCritical, RefusedWriteFailed}
	rejections := []string{db.RejectMissingHeader, db.RejectTimestampSkew, db.RejectNoMatchingSignature, db.RejectUnknownEnvironment,
		db.RejectMalformedJSON, db.RejectBodyTooLarge, tensfer.ReasonMissingHeader, tensfer.ReasonInvalidTimestamp, tensfer.ReasonTimestampSkew,
		tensfer.ReasonMalformedSignature, tensfer.ReasonNoMatchingSignature, tensfer.ReasonNoActiveSecret}
	for _, in := range inputs {
		if !slices.Contains(metrics.RefusalInputs, in) {
			t.Errorf("input %s is not a label value", in)
		}
		if _, ok := inputSource(in); !ok && in != InputRefused {
			t.Errorf("input %s has no ingest source", in)
		}
	}
	for _, r := range reasons {
		if !slices.Contains(metrics.RefusalReasons, r) {
			t.Errorf("refusal reason %s is not a label value", r)
		}
		if refusalOutcome(r) == metrics.OutcomeError {
			t.Errorf("refusal reason %s has no ingest outcome", r)
		}
	}
	for _, r := range rejections {
		if !slices.Contains(metrics.RejectionReasons, r) {
			t.Errorf("rejection reason %s is not a label value", r)
		}
	}
}
