package metrics

import "slices"

// Every label of every metric takes its values from a closed list below: a value from outside
// that is not on its list is counted as "other" (environments) or dropped to the list's catch-all,
// so no request can create a label value, and no free text (a path, an id, an address) can reach
// a label. docs/operations.md lists these values.

// Other is the label value of anything not on a label's list.
const Other = "other"

// Envs are the environment label values. A request naming any other environment (a path such as
// /hooks/anything) is counted as "other".
var Envs = []string{"sandbox", "production", Other}

// Env bounds an environment name to Envs.
func Env(env string) string {
	if env == "sandbox" || env == "production" {
		return env
	}
	return Other
}

// Source is where ingested input came from.
type Source uint8

// The sources of ingested input.
const (
	SourceWebhook  Source = iota // POST /hooks/{env}
	SourceCallback               // POST /callbacks/{env}
	SourceReturn                 // GET /callbacks/{env}/return
	SourceAPICall                // POST /api/v1/api-calls, and the dashboard's own Tensfer calls
	sourceCount
)

var sourceNames = [sourceCount]string{"webhook", "callback", "return", "api_call"}

func (s Source) String() string { return sourceNames[s] }

// Outcome is how one ingested input ended.
type Outcome uint8

// The outcomes of ingest.
const (
	OutcomeStored             Outcome = iota // durably committed
	OutcomeDuplicate                         // already stored (same webhook-id or event_id); nothing new written
	OutcomeRefusedSignature                  // a webhook whose signature, its headers or its timestamp did not verify
	OutcomeRefusedMalformed                  // not the JSON the input must be
	OutcomeRefusedTooLarge                   // a body over its limit
	OutcomeRefusedUnknownEnv                 // a webhook to an environment that does not exist
	OutcomeRefusedRateLimited                // the sender is over its own rate limit
	OutcomeRefusedQuota                      // over the budget of unauthenticated input
	OutcomeRefusedDisk                       // below a disk watermark
	OutcomeRefusedWriteFailed                // the database could not write (disk full, I/O error)
	OutcomeInvalid                           // an API-call report that failed validation
	OutcomeError                             // anything else (an internal error)
	outcomeCount
)

var outcomeNames = [outcomeCount]string{"stored", "duplicate", "refused_signature", "refused_malformed", "refused_too_large",
	"refused_unknown_env", "refused_rate_limited", "refused_quota", "refused_disk", "refused_write_failed", "invalid", "error"}

func (o Outcome) String() string { return outcomeNames[o] }

// Accepted reports whether the input was acknowledged as stored (new or a duplicate).
func (o Outcome) Accepted() bool { return o == OutcomeStored || o == OutcomeDuplicate }

// RefusalInputs are the input label values of the public-ingest refusal counters
// (internal/events' Input* constants).
var RefusalInputs = []string{"callback", "return", "refused_delivery", "webhook", "api_call"}

// RefusalReasons are their reason label values (internal/events' Refused* constants).
var RefusalReasons = []string{"rate_limited", "quota", "shape", "too_large", "disk_low", "disk_critical", "write_failed"}

// RejectionReasons are the reasons a webhook delivery is refused (the db.Reject* and
// tensfer.Reason* codes).
var RejectionReasons = []string{"missing_header", "invalid_timestamp", "timestamp_skew", "malformed_signature",
	"no_matching_signature", "no_active_secret", "unknown_environment", "malformed_json", "body_too_large"}

// VerifyOutcomes are the outcomes of verifying an environment's keys against Tensfer.
var VerifyOutcomes = []string{"ok", "wrong_environment", "wrong_key", "unreachable", "error"}

// DecisionEnvs and DecisionReasons are the label values of a rollout decision.
var (
	DecisionEnvs    = []string{"production", "sandbox", "off"}
	DecisionReasons = []string{"blocked", "cohort", "killed", "percentage", "not_started", "default"}
)

// RolloutStates are the rollout's states.
var RolloutStates = []string{"active", "paused", "killed"}

// Signals are the error signals the rollout's guardrails watch.
var Signals = []string{"init_errors", "api_errors", "rejected_webhooks", "verify_failures"}

// bound returns v when it is on list, else Other.
func bound(list []string, v string) string {
	if slices.Contains(list, v) {
		return v
	}
	return Other
}
