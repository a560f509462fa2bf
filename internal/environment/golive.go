package environment

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
)

// Check states of a go-live checklist item. Done, to do and blocked are the states of something
// to do; info is a figure to know (a meter), never done and never counted in the progress.
const (
	CheckDone    = "done"
	CheckTodo    = "todo"
	CheckBlocked = "blocked" // tried and failing, or stopped on purpose: needs attention first
	CheckInfo    = "info"
)

// CheckItem is one step or best practice of the go-live checklist. Key names the step; the
// dashboard links each key to the place where it is fixed.
type CheckItem struct {
	Key    string
	Title  string
	State  string // CheckDone | CheckTodo | CheckBlocked | CheckInfo
	Detail string // what is missing, or a figure when done
	// Used of Max is an info item's meter (e.g. 12 of 100 free calls); Max 0 has none.
	Used, Max int
}

// Signals are the facts the checklist needs from the event log.
type Signals struct {
	ProdWebhookVerified   bool // a verified production webhook from Tensfer (not a test event) arrived
	ErrorRequestIDsLogged int  // failed API calls recorded with a request_id
	ProdAPICalls          int  // production API calls recorded, ever
}

// ChecklistInput is the state the checklist is computed from.
type ChecklistInput struct {
	Sandbox, Production State
	Signals             Signals
	ProdWebhookURL      string // where Tensfer must deliver production webhooks
	Rollout             RolloutFacts
	Now                 time.Time
}

// RolloutFacts are what the checklist needs of the production rollout.
type RolloutFacts struct {
	Stage   int     // 0: not started
	Percent float64 // in production by percentage now
	Killed  bool
	Users   int64 // distinct users sent to production at this stage
}

// FreeProductionCalls is Tensfer's allowance of free production API calls.
const FreeProductionCalls = 100

// Checklist computes Tensfer's go-live steps and best practices from stored state; nothing is
// ticked by hand. It is a pure function.
func Checklist(in ChecklistInput) (steps, practices []CheckItem) {
	sb, pr, sig := in.Sandbox, in.Production, in.Signals
	verified := pr.Verified()
	item := func(key, title string, done bool, todo string) CheckItem {
		c := CheckItem{Key: key, Title: title, State: CheckTodo, Detail: todo}
		if done {
			c.State, c.Detail = CheckDone, ""
		}
		return c
	}

	// 1. Production keys set and verified.
	var missing []string
	for _, kind := range db.KeyKinds {
		if _, ok := pr.Active(kind); !ok {
			missing = append(missing, keyLabels[kind])
		}
	}
	keysTodo, verifyFailed := "", false
	switch {
	case len(missing) > 0:
		keysTodo = fmt.Sprintf("Missing in production: %s.", JoinAnd(missing))
	case !verified:
		keysTodo = "All three keys are set; verify them against Tensfer production."
		if verifyFailed = pr.Env.VerifyOutcome != "" && pr.Env.VerifyOutcome != "ok"; verifyFailed {
			keysTodo = "Last verification failed: " + pr.Env.VerifyDetail
		}
	}
	keys := item("production_keys", "Production API keys set and verified", keysTodo == "", keysTodo)
	if verifyFailed {
		keys.State = CheckBlocked
	}
	steps = append(steps, keys)

	// 2. Callback URL switched to production.
	cbTodo := ""
	switch {
	case pr.Env.CallbackURL == "":
		cbTodo = "Set the production callback URL (where Tensfer sends users back)."
	case pr.Env.CallbackURL == sb.Env.CallbackURL:
		cbTodo = "The production callback URL is still the sandbox one."
	}
	steps = append(steps, item("callback_url", "Callback URL switched to production", cbTodo == "", cbTodo))

	// 3. Production webhook URL defined, and a verified production webhook received.
	hasSecret := pr.HasActiveSecret(in.Now)
	wh := item("webhook", "Production webhook URL registered and a verified webhook received", hasSecret && sig.ProdWebhookVerified, "")
	switch {
	case wh.State == CheckDone:
	case !hasSecret:
		wh.Detail = "Register " + in.ProdWebhookURL + " at Tensfer and add its signing secret here."
	default:
		wh.Detail = "No verified production webhook from Tensfer has arrived yet. Trigger one from Tensfer's dashboard (\"Send test event\" here checks only the dashboard's side)."
	}
	steps = append(steps, wh)

	// 4. Base URL set to production and verified.
	baseTodo := ""
	switch {
	case pr.Env.BaseURL == "":
		baseTodo = "Set the production base URL."
	case pr.Env.BaseURL == sb.Env.BaseURL:
		baseTodo = "The production base URL equals the sandbox one."
	case !verified:
		baseTodo = "Verify the production configuration against Tensfer."
	}
	steps = append(steps, item("base_url", "Base URL points at production and is verified", baseTodo == "", baseTodo))

	// 5. Launch to a subset of users first.
	ro := in.Rollout
	launch := CheckItem{Key: "rollout", Title: "Rollout started for a subset of users, not everyone", State: CheckTodo}
	switch {
	case ro.Killed:
		launch.State = CheckBlocked
		launch.Detail = "The rollout is killed: nobody is sent to production. Bring it back to a stage when the cause is fixed."
	case ro.Stage == 0:
		launch.Detail = "Start the first stage (1 % by default) or add a pilot cohort, then widen stage by stage."
	default:
		launch.State = CheckDone
		launch.Detail = fmt.Sprintf("Stage %d: %s of users by percentage; %d users sent to production so far at this stage.", ro.Stage, strconv.FormatFloat(ro.Percent, 'f', -1, 64)+" %", ro.Users)
	}
	steps = append(steps, launch)

	// Best practices.
	practices = append(practices, item("signing_secret", "Webhook signing secret set", hasSecret, "Without a signing secret anyone could post fake events."))
	logged := CheckItem{Key: "request_ids", Title: "Error request_ids are being logged", State: CheckTodo,
		Detail: "No failed API call with a request_id has been reported yet; report calls to POST /api/v1/api-calls."}
	if sig.ErrorRequestIDsLogged > 0 {
		logged.State, logged.Detail = CheckDone, fmt.Sprintf("%d failed calls with request_ids recorded.", sig.ErrorRequestIDsLogged)
	}
	calls := CheckItem{Key: "free_calls", Title: "Free production API calls used", State: CheckInfo,
		Used: min(sig.ProdAPICalls, FreeProductionCalls), Max: FreeProductionCalls,
		Detail: fmt.Sprintf("%d of the %d free production API calls used.", min(sig.ProdAPICalls, FreeProductionCalls), FreeProductionCalls)}
	if sig.ProdAPICalls >= FreeProductionCalls {
		calls.Detail = fmt.Sprintf("All %d free production calls used (%d recorded).", FreeProductionCalls, sig.ProdAPICalls)
	}
	practices = append(practices, logged, calls)
	return steps, practices
}

// Progress counts the items to do (every state but info) and those done, so "done of total"
// always agrees with the list it is shown over.
func Progress(items []CheckItem) (done, total int) {
	for _, c := range items {
		if c.State == CheckInfo {
			continue
		}
		total++
		if c.State == CheckDone {
			done++
		}
	}
	return done, total
}
