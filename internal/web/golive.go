package web

import (
	"context"
	"net/http"

	"github.com/tensfer-golive/dashboard/internal/environment"
	"github.com/tensfer-golive/dashboard/internal/rollout"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// checkFix says where each go-live item is fixed in the dashboard.
var checkFix = map[string]struct{ url, label string }{
	"production_keys": {"/environments#env-production", "Set keys"},
	"callback_url":    {"/environments#env-production", "Set callback URL"},
	"webhook":         {"/environments#env-production", "Webhook settings"},
	"base_url":        {"/environments#env-production", "Set base URL"},
	"rollout":         {"/rollout", "Open the rollout"},
	"signing_secret":  {"/environments#env-production", "Add secret"},
	"request_ids":     {"/events", "Events"},
}

// goLiveChecklist gathers the state the checklist is computed from and maps the steps and the
// best practices to views, each with its progress counted over the items it lists.
func (s *Server) goLiveChecklist(ctx context.Context) (steps, practices templates.Checklist, err error) {
	sb, err := s.envs.Load(ctx, "sandbox")
	if err != nil {
		return steps, practices, err
	}
	pr, err := s.envs.Load(ctx, "production")
	if err != nil {
		return steps, practices, err
	}
	facts, err := s.events.GoLiveFacts(ctx)
	if err != nil {
		return steps, practices, err
	}
	rl := s.rollout.Snapshot().Rollout
	ro := environment.RolloutFacts{Stage: rl.Stage, Percent: rl.Percent(), Killed: rl.State == rollout.Killed, Users: s.rollout.Reach(rl.Stage)}
	st, pt := environment.Checklist(environment.ChecklistInput{Sandbox: sb, Production: pr, Signals: environment.Signals(facts),
		ProdWebhookURL: s.publicURL("/hooks/production"), Rollout: ro, Now: s.now()})
	return checklistView(st), checklistView(pt), nil
}

// checklistView maps checklist items to the view, with the progress over those same items.
func checklistView(items []environment.CheckItem) templates.Checklist {
	out := templates.Checklist{Items: make([]templates.CheckItem, 0, len(items))}
	out.Done, out.Total = environment.Progress(items)
	for _, c := range items {
		fix := checkFix[c.Key]
		out.Items = append(out.Items, templates.CheckItem{Key: c.Key, Title: c.Title, State: c.State, Detail: c.Detail,
			FixURL: fix.url, FixLabel: fix.label, Used: c.Used, Max: c.Max})
	}
	return out
}

func (s *Server) showGoLive(w http.ResponseWriter, r *http.Request) error {
	steps, practices, err := s.goLiveChecklist(r.Context())
	if err != nil {
		return err
	}
	vm := templates.GoLiveVM{Layout: s.page(w, r, "go-live", "Go-live"), Steps: steps, Practices: practices}
	return render(w, r, http.StatusOK, templates.GoLivePage(vm))
}
