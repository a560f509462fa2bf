package web

import (
	"fmt"
	"math"
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
	trends, err := s.events.Trends(ctx)
	if err != nil {
		return err
	}
	for _, env := range environment.Names {
		vm.Signals = append(vm.Signals, envSignals(env, stats[env], trends[env]))
	}
	errs, err := s.events.RecentErrors(ctx, 5)
	if err != nil {
		return err
	}
	for _, e := range errs {
		vm.RecentErrors = append(vm.RecentErrors, eventRow(e))
	}
	if vm.GoLive, _, err = s.goLiveChecklist(ctx); err != nil {
		return err
	}
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

// envSignals maps an environment's last hour and its 24-hour trend to the Overview's card: the
// counts of the last hour, how events and the error rate moved against the hour before, and the
// trend's lines.
func envSignals(env string, st db.EnvStats, t events.Trend) templates.EnvSignals {
	last, prev := t.Last(), t.Previous()
	sig := templates.EnvSignals{Env: env, Events: st.Events, Rejected: st.RejectedWebhooks, InitErrors: st.InitErrors, APIErrors: st.APIErrors,
		EventsChange: eventsChange(last.Events, prev.Events), ErrorRate: "–", Day: t.Total().Events}
	rate, ok := last.ErrorRate()
	if ok {
		sig.ErrorRate, sig.ErrorAlert = formatRate(rate), rate > 0
		if before, had := prev.ErrorRate(); had {
			sig.RateChange = rateChange(rate, before)
		}
	}
	sp := templates.Spark{Events: make([]float64, 0, events.TrendHours), Errors: make([]float64, 0, events.TrendHours)}
	var bad int64
	for _, h := range t.Hours {
		sp.Events = append(sp.Events, float64(h.Events))
		sp.Errors = append(sp.Errors, float64(h.Errors+h.Rejected))
		sp.Peak = max(sp.Peak, h.Events)
		bad += h.Errors + h.Rejected
	}
	sp.Label = fmt.Sprintf("%s over the last 24 hours by hour: %d events, at most %d in an hour; %d errors and refused deliveries", env, sig.Day, sp.Peak, bad)
	sig.Spark = sp
	return sig
}

// eventsChange says how the events of the last hour moved against the hour before: a
// percentage, or "from 0" when there was nothing before. More or fewer events is neither good
// nor bad.
func eventsChange(cur, prev int64) templates.Change {
	pct, ok := events.Change(cur, prev)
	switch {
	case !ok && cur == 0:
		return templates.Change{Arrow: "→", Text: "none", Tone: "flat", Said: "no events in this hour or the hour before"}
	case !ok:
		return templates.Change{Arrow: "↑", Text: "from 0", Tone: "flat", Said: "up from none in the hour before"}
	}
	n := math.Round(math.Abs(pct) * 100)
	c := templates.Change{Arrow: "→", Text: "0 %", Tone: "flat", Said: "no change on the hour before"}
	if n >= 1 {
		c.Text = strconv.FormatFloat(n, 'f', 0, 64) + " %"
		c.Arrow, c.Said = "↑", "up "+c.Text+" on the hour before"
		if pct < 0 {
			c.Arrow, c.Said = "↓", "down "+c.Text+" on the hour before"
		}
	}
	return c
}

// rateChange says how the error rate moved against the hour before, in percentage points: up is
// bad news, down good.
func rateChange(cur, prev float64) templates.Change {
	pts := math.Round((cur-prev)*1000) / 10 // percentage points, one decimal
	if pts == 0 {
		return templates.Change{Arrow: "→", Text: "0 pts", Tone: "flat", Said: "error rate unchanged on the hour before"}
	}
	text := strconv.FormatFloat(math.Abs(pts), 'f', -1, 64) + " pts"
	if pts > 0 {
		return templates.Change{Arrow: "↑", Text: text, Tone: "bad", Said: "error rate up " + text + " on the hour before"}
	}
	return templates.Change{Arrow: "↓", Text: text, Tone: "good", Said: "error rate down " + text + " on the hour before"}
}

// formatRate shows a share as a percentage with at most one decimal: "0 %", "2.5 %", "100 %".
func formatRate(r float64) string {
	return strconv.FormatFloat(math.Round(r*1000)/10, 'f', -1, 64) + " %"
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
