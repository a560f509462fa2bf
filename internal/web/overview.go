package web

import (
	"net/http"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/environment"
	"github.com/tensfer-golive/dashboard/internal/rollout"
	"github.com/tensfer-golive/dashboard/web/templates"
)

func (s *Server) showOverview(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	u, _ := userFrom(ctx)
	vm := templates.OverviewVM{
		Layout:      s.page(w, r, "overview", "Overview"),
		PublicURL:   s.cfg.PublicURL.String(),
		MasterKeyID: s.box.KeyID(),
		CanSeeAudit: u.Role.AtLeast(db.RoleOperator),
	}
	var err error
	if vm.SchemaV, _, err = s.db.SchemaVersion(ctx); err != nil {
		return err
	}
	users, err := s.db.ListUsers(ctx)
	if err != nil {
		return err
	}
	for _, u := range users {
		if !u.Disabled() {
			vm.Users++
			if u.Role == db.RoleAdmin {
				vm.Admins++
			}
		}
	}
	tokens, err := s.db.ListTokens(ctx)
	if err != nil {
		return err
	}
	for _, t := range tokens {
		if !t.Revoked() {
			vm.ActiveTokens++
		}
	}
	stats, err := s.events.Signals(ctx, s.now().Add(-time.Hour))
	if err != nil {
		return err
	}
	for _, env := range environment.Names {
		st := stats[env]
		vm.Signals = append(vm.Signals, templates.EnvSignals{Env: env, Events: st.Events, Rejected: st.RejectedWebhooks, InitErrors: st.InitErrors, APIErrors: st.APIErrors})
	}
	errs, err := s.events.RecentErrors(ctx, 5)
	if err != nil {
		return err
	}
	for _, e := range errs {
		vm.RecentErrors = append(vm.RecentErrors, eventRow(e))
	}
	steps, _, done, err := s.goLiveChecklist(ctx)
	if err != nil {
		return err
	}
	vm.GoLive = steps
	vm.GoLiveDone, vm.GoLiveTotal = done, len(steps)
	rl := s.rollout.Snapshot().Rollout
	vm.Rollout = templates.RolloutSummary{State: string(rl.State), Stage: rl.Stage, Stages: len(rl.Stages), Percent: rollout.FormatPercent(rl.Percent()),
		Users: s.rollout.Reach(rl.Stage), Held: rl.Held}
	health, err := s.rollout.Health(ctx)
	if err != nil {
		return err
	}
	for _, b := range health.Breaches {
		vm.Rollout.Breached = append(vm.Rollout.Breached, rollout.SignalLabel(b.Guardrail.Signal))
	}
	if vm.CanSeeAudit {
		entries, _, err := s.db.ListAudit(ctx, db.AuditFilter{Limit: 8})
		if err != nil {
			return err
		}
		vm.Recent = auditRows(entries)
	}
	return render(w, r, http.StatusOK, templates.OverviewPage(vm))
}
