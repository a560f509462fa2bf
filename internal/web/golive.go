package web

import (
	"context"
	"fmt"
	"net/http"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// Check states of a go-live checklist item.
const (
	checkDone = "done"
	checkTodo = "todo"
	checkNA   = "na" // the capability that measures it is not available yet
)

// goLiveSignals are the facts the checklist needs from the event log.
type goLiveSignals struct {
	ProdWebhookVerified   bool
	ErrorRequestIDsLogged int
	ProdAPICalls          int
}

// goLiveChecklist computes Tensfer's go-live steps and best practices from stored state; nothing
// is ticked by hand.
func (s *Server) goLiveChecklist(ctx context.Context) (steps, practices []templates.CheckItem, err error) {
	sb, err := s.loadEnv(ctx, "sandbox")
	if err != nil {
		return nil, nil, err
	}
	pr, err := s.loadEnv(ctx, "production")
	if err != nil {
		return nil, nil, err
	}
	sig, err := s.eventSignals(ctx)
	if err != nil {
		return nil, nil, err
	}
	verified := pr.env.VerifyOutcome == "ok" && pr.env.VerifyBasis == pr.basis()
	item := func(key, title string, done bool, todo, fix, fixLabel string) templates.CheckItem {
		c := templates.CheckItem{Key: key, Title: title, State: checkTodo, Detail: todo, FixURL: fix, FixLabel: fixLabel}
		if done {
			c.State, c.Detail = checkDone, ""
		}
		return c
	}

	// 1. Production keys set and verified.
	var missing []string
	for _, kind := range db.KeyKinds {
		if _, ok := pr.active(kind); !ok {
			missing = append(missing, keyLabels[kind])
		}
	}
	keysTodo := ""
	switch {
	case len(missing) > 0:
		keysTodo = fmt.Sprintf("Missing in production: %s.", joinAnd(missing))
	case !verified:
		keysTodo = "All three keys are set; verify them against Tensfer production."
		if pr.env.VerifyOutcome != "" && pr.env.VerifyOutcome != "ok" {
			keysTodo = "Last verification failed: " + pr.env.VerifyDetail
		}
	}
	steps = append(steps, item("production_keys", "Production API keys set and verified", keysTodo == "", keysTodo, "/environments#env-production", "Set keys"))

	// 2. Callback URL switched to production.
	cbTodo := ""
	switch {
	case pr.env.CallbackURL == "":
		cbTodo = "Set the production callback URL (where Tensfer sends users back)."
	case pr.env.CallbackURL == sb.env.CallbackURL:
		cbTodo = "The production callback URL is still the sandbox one."
	}
	steps = append(steps, item("callback_url", "Callback URL switched to production", cbTodo == "", cbTodo, "/environments#env-production", "Set callback URL"))

	// 3. Production webhook URL defined, and a verified production webhook received.
	hasSecret := false
	for _, sec := range pr.secrets {
		hasSecret = hasSecret || sec.Active(s.now())
	}
	wh := item("webhook", "Production webhook URL registered and a verified webhook received", hasSecret && sig.ProdWebhookVerified, "", "/environments#env-production", "Webhook settings")
	switch {
	case wh.State == checkDone:
	case !hasSecret:
		wh.Detail = "Register " + s.publicURL("/hooks/production") + " at Tensfer and add its signing secret here."
	default:
		wh.Detail = "No verified production webhook from Tensfer has arrived yet. Trigger one from Tensfer's dashboard (\"Send test event\" here checks only the dashboard's side)."
	}
	steps = append(steps, wh)

	// 4. Base URL set to production and verified.
	baseTodo := ""
	switch {
	case pr.env.BaseURL == "":
		baseTodo = "Set the production base URL."
	case pr.env.BaseURL == sb.env.BaseURL:
		baseTodo = "The production base URL equals the sandbox one."
	case !verified:
		baseTodo = "Verify the production configuration against Tensfer."
	}
	steps = append(steps, item("base_url", "Base URL points at production and is verified", baseTodo == "", baseTodo, "/environments#env-production", "Set base URL"))

	// 5. Launch to a subset of users first.
	steps = append(steps, templates.CheckItem{Key: "rollout", Title: "Rollout started for a subset of users, not everyone", State: checkNA,
		Detail: "The rollout is not available yet in this version.", FixURL: "/rollout", FixLabel: "Rollout"})

	// Best practices.
	practices = append(practices, item("signing_secret", "Webhook signing secret set", hasSecret, "Without a signing secret anyone could post fake events.", "/environments#env-production", "Add secret"))
	logged := templates.CheckItem{Key: "request_ids", Title: "Error request_ids are being logged", State: checkTodo,
		Detail: "No failed API call with a request_id has been reported yet; report calls to POST /api/v1/api-calls.", FixURL: "/events", FixLabel: "Events"}
	if sig.ErrorRequestIDsLogged > 0 {
		logged.State, logged.Detail = checkDone, fmt.Sprintf("%d failed calls with request_ids recorded.", sig.ErrorRequestIDsLogged)
	}
	calls := templates.CheckItem{Key: "free_calls", Title: "Free production API calls used", State: checkDone,
		Detail: fmt.Sprintf("%d of the 100 free production API calls used.", min(sig.ProdAPICalls, 100))}
	if sig.ProdAPICalls >= 100 {
		calls.Detail = fmt.Sprintf("All 100 free production calls used (%d recorded).", sig.ProdAPICalls)
	}
	practices = append(practices, logged, calls)
	return steps, practices, nil
}

func joinAnd(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	out := xs[0]
	for _, x := range xs[1 : len(xs)-1] {
		out += ", " + x
	}
	return out + " and " + xs[len(xs)-1]
}

// progress counts done items among the measurable ones.
func progress(items []templates.CheckItem) (done, total int) {
	for _, c := range items {
		if c.State == checkNA {
			continue
		}
		total++
		if c.State == checkDone {
			done++
		}
	}
	return done, total
}

func (s *Server) showGoLive(w http.ResponseWriter, r *http.Request) error {
	steps, practices, err := s.goLiveChecklist(r.Context())
	if err != nil {
		return err
	}
	vm := templates.GoLiveVM{Layout: s.page(w, r, "go-live", "Go-live"), Steps: steps, Practices: practices}
	vm.Done, vm.Total = progress(steps)
	return render(w, r, http.StatusOK, templates.GoLivePage(vm))
}

// eventSignals measures the go-live items that depend on traffic.
func (s *Server) eventSignals(ctx context.Context) (goLiveSignals, error) {
	var sig goLiveSignals
	// A webhook from Tensfer, not the dashboard's own test event (which never crosses the public
	// URL): look at the latest few.
	hooks, _, err := s.db.ListEvents(ctx, db.EventFilter{Env: "production", Source: db.SourceWebhook, Limit: 50})
	if err != nil {
		return sig, err
	}
	for _, e := range hooks {
		sig.ProdWebhookVerified = sig.ProdWebhookVerified || e.Type != testEventType
	}
	// Failed calls with request_ids: 5xx and timeouts (error signals) and reported 4xx.
	yes := true
	errs, _, err := s.db.ListEvents(ctx, db.EventFilter{Source: db.SourceAPI, IsError: &yes, Limit: 100})
	if err != nil {
		return sig, err
	}
	calls, _, err := s.db.ListEvents(ctx, db.EventFilter{Source: db.SourceAPI, Type: "api.error", Limit: 100})
	if err != nil {
		return sig, err
	}
	seen := map[int64]bool{}
	for _, e := range append(errs, calls...) {
		if e.RequestID != "" && !seen[e.ID] {
			seen[e.ID] = true
			sig.ErrorRequestIDsLogged++
		}
	}
	n, err := s.db.CountProductionAPICalls(ctx)
	sig.ProdAPICalls = int(n)
	return sig, err
}
