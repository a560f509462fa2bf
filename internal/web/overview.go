package web

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/diskguard"
	"github.com/tensfer-golive/dashboard/internal/environment"
	"github.com/tensfer-golive/dashboard/internal/events"
	"github.com/tensfer-golive/dashboard/internal/ratelimit"
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
	vm.Ingest = ingestPanel(s.events.Health())
	return render(w, r, http.StatusOK, templates.OverviewPage(vm))
}

// ingestPanel maps the state of ingest to the Overview's panel.
func ingestPanel(h events.IngestHealth) templates.IngestPanel {
	perKey, global := h.Budget.Limits()
	rate := func(l ratelimit.Limits) string {
		return fmt.Sprintf("%s and %s rows a second", diskguard.FormatBytes(uint64(l.Bytes.PerSecond)), strconv.FormatFloat(l.Rows.PerSecond, 'f', -1, 64))
	}
	mark := func(n uint64) string {
		if n == 0 {
			return "0B (off)"
		}
		return diskguard.FormatBytes(n)
	}
	p := templates.IngestPanel{Budget: rate(global) + " in all", PerSource: rate(perKey), DiskLevel: h.Disk.Level.String(),
		SoftMark: mark(h.Disk.Soft), HardMark: mark(h.Disk.Hard), WriteFailure: h.Disk.WriteFailure}
	switch {
	case h.Disk.ReadError != "":
		p.DiskFree = "unknown: " + h.Disk.ReadError
	case h.Disk.Space.Total == 0:
		p.DiskFree = "unknown"
	default:
		p.DiskFree = diskguard.FormatBytes(h.Disk.Space.Free) + " of " + diskguard.FormatBytes(h.Disk.Space.Total)
	}
	for _, c := range h.Refusals {
		p.Refusals = append(p.Refusals, templates.RefusalRow{Env: c.Env, Input: events.InputLabel(c.Input), Reason: events.ReasonLabel(c.Reason), Count: c.LastHour})
	}
	return p
}
