package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/launch"
	"github.com/tensfer-golive/dashboard/internal/rollout"
	"github.com/tensfer-golive/dashboard/internal/validation"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// showRollout is GET /rollout: state, plan, guardrails, cohorts, a user check, the next stage's
// preview and the history, with controls by role.
func (s *Server) showRollout(w http.ResponseWriter, r *http.Request) error {
	vm, err := s.rolloutVM(w, r, nil)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if user := strings.TrimSpace(q.Get("user")); user != "" {
		if len(user) > rollout.MaxIDBytes {
			return errBadRequest("the user id must be at most %d bytes", rollout.MaxIDBytes)
		}
		attrs, err := parseAttrLines(q.Get("attrs"))
		if err != nil {
			return err
		}
		vm.CheckUser, vm.CheckAttrs = user, q.Get("attrs")
		vm.Check = checkVM(s.rollout.Check(rollout.User{ID: user, Attributes: attrs}))
	}
	return render(w, r, http.StatusOK, templates.RolloutPage(vm))
}

// parseAttrLines reads "key=value" lines of the check form.
func parseAttrLines(text string) (map[string]string, error) {
	attrs := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		// Names in the canonical form decisions use (trimmed, NFC), as the API reads them.
		name, err := rollout.Canonical(k)
		if !ok || err != nil || name == "" {
			return nil, errBadRequest("attributes are key=value lines of UTF-8 text, e.g. country=SE (got %q)", validation.Clip(line, 60))
		}
		attrs[name] = strings.TrimSpace(v)
	}
	return attrs, nil
}

// checkVM says a decision in words.
func checkVM(d rollout.Decision) *templates.CheckVM {
	why := map[rollout.Reason]string{
		rollout.ReasonBlocked:    "blocked by the cohort " + strconv.Quote(d.Cohort) + ", which comes first",
		rollout.ReasonCohort:     "in the cohort " + strconv.Quote(d.Cohort),
		rollout.ReasonKilled:     "the rollout is killed: nobody goes to production",
		rollout.ReasonPercentage: fmt.Sprintf("bucket %d is inside the stage's percentage", d.Bucket),
		rollout.ReasonNotStarted: "the rollout has not started, and no cohort matches",
		rollout.ReasonDefault:    fmt.Sprintf("bucket %d is outside the stage's percentage, and no cohort matches", d.Bucket),
	}[d.Reason]
	if d.Reason == rollout.ReasonKilled && d.Cohort != "" {
		why = "in the cohort " + strconv.Quote(d.Cohort) + ", but the rollout is killed: nobody goes to production"
	}
	return &templates.CheckVM{UserID: d.UserID, Env: string(d.Env), Reason: string(d.Reason), Why: why, Bucket: d.Bucket}
}

// rolloutVM builds the page; errs, if set, keep a failed form's messages.
func (s *Server) rolloutVM(w http.ResponseWriter, r *http.Request, errs validation.Errors) (templates.RolloutVM, error) {
	ctx := r.Context()
	u, _ := userFrom(ctx)
	snap := s.rollout.Snapshot()
	rl := snap.Rollout
	vm := templates.RolloutVM{Layout: s.page(w, r, "rollout", "Rollout"), Key: rl.Key, State: string(rl.State), Stage: rl.Stage,
		Percent: rollout.FormatPercent(rl.Percent()), Version: snap.Version(), Held: rl.Held, StartedAt: rl.StageStartedAt,
		AutoAdvance: rl.AutoAdvance, AdvanceWithoutVolume: rl.AdvanceWithoutVolume, OnBreach: rl.OnBreach, Reach: s.rollout.Reach(rl.Stage),
		CanOperate: u.Role.AtLeast(db.RoleOperator), CanAdmin: u.Role.AtLeast(db.RoleAdmin), Errors: templates.FieldErrors(errs)}
	if vm.Errors == nil {
		vm.Errors = templates.FieldErrors{}
	}
	var plan []string
	for i, st := range rl.Stages {
		sv := templates.StageVM{N: i + 1, Percent: rollout.FormatPercent(st.Percent), Status: "next", Reach: s.rollout.Reach(i + 1)}
		if st.MinSoak > 0 {
			sv.Soak = rollout.FormatDuration(st.MinSoak)
		}
		switch {
		case i+1 < rl.Stage:
			sv.Status = "done"
		case i+1 == rl.Stage:
			sv.Status = "current"
		}
		vm.Stages = append(vm.Stages, sv)
		plan = append(plan, strconv.FormatFloat(st.Percent, 'f', -1, 64)+" "+rollout.FormatDuration(st.MinSoak))
	}
	vm.PlanText, vm.PlanTag = strings.Join(plan, "\n"), launch.PlanTag(rl)
	h, err := s.rollout.Health(ctx)
	if err != nil {
		return vm, err
	}
	vm.NextAdvance, vm.AdvanceWhy = h.NextAdvance, h.Why
	for _, st := range h.Statuses {
		gv := guardrailVM(st, s.now())
		if gv.Trend, err = s.rollout.Trend(ctx, st.Guardrail, 8); err != nil {
			return vm, err
		}
		vm.Guardrails = append(vm.Guardrails, gv)
	}
	cohorts, err := s.rollout.Cohorts(ctx)
	if err != nil {
		return vm, err
	}
	for i, c := range cohorts {
		cv := templates.CohortVM{ID: c.ID, Name: c.Name, Env: c.Env, Kind: c.Kind, Size: c.Size, First: i == 0, Last: i == len(cohorts)-1, Version: c.Version}
		if c.Kind == "list" {
			cv.Summary = "allow-list of " + templates.Thousands(int64(c.Size)) + " users"
			if c.Size == 1 {
				cv.Summary = "allow-list of 1 user"
			}
		} else {
			var rules []rollout.Rule
			_ = json.Unmarshal(c.Rules, &rules)
			parts := make([]string, 0, len(rules))
			for _, ru := range rules {
				parts = append(parts, formatRuleLine(ru))
			}
			cv.Summary = c.Match + ": " + strings.Join(parts, "; ")
			cv.Match, cv.RulesText = c.Match, strings.Join(parts, "\n")
		}
		vm.Cohorts = append(vm.Cohorts, cv)
	}
	ids, err := s.db.RecentUserIDs(ctx, 500)
	if err != nil {
		return vm, err
	}
	if len(ids) > 0 {
		users := make([]rollout.User, 0, len(ids))
		for _, id := range ids {
			users = append(users, rollout.User{ID: id})
		}
		if now, next, pct, ok := s.rollout.Preview(users); ok {
			vm.Preview = &templates.PreviewVM{Users: len(users), Now: now, Next: next, NextPercent: rollout.FormatPercent(pct)}
		}
	}
	entries, err := s.rolloutHistory(r)
	if err != nil {
		return vm, err
	}
	vm.History = entries
	return vm, nil
}

// guardrailVM shows a guardrail's verdict with its figures, and links to the events that made
// them: production's events of that signal over the guardrail's window (verifications are in
// the audit log, refused deliveries on their own page).
func guardrailVM(st rollout.Status, now time.Time) templates.GuardrailVM {
	g, f := st.Guardrail, st.Figures
	gv := templates.GuardrailVM{Signal: string(g.Signal), Label: rollout.SignalLabel(g.Signal), Bad: f.Bad, Total: f.Total,
		Rate: fmt.Sprintf("%.1f %%", 100*f.Rate()), Limit: fmt.Sprintf("%.1f %%", 100*g.MaxRate), MinVolume: g.MinVolume,
		Window: rollout.FormatDuration(g.Window), Status: "ok", MaxRate: g.MaxRate,
		FormRate: strconv.FormatFloat(g.MaxRate*100, 'f', -1, 64), FormVolume: strconv.FormatInt(g.MinVolume, 10), FormWindow: rollout.FormatDuration(g.Window)}
	switch {
	case st.Breached:
		gv.Status = "breached"
	case !st.Judged:
		gv.Status = "low_volume"
	}
	gv.Events = signalEventsURL(g.Signal, now.Add(-g.Window), now)
	return gv
}

// signalEventsURL is where the events behind a guardrail's figure over [since, until) are listed.
func signalEventsURL(sig rollout.Signal, since, until time.Time) string {
	q := url.Values{"env": {"production"}, "since": {since.UTC().Truncate(time.Second).Format(time.RFC3339)},
		"until": {until.UTC().Truncate(time.Second).Add(time.Second).Format(time.RFC3339)}}
	switch sig {
	case rollout.SignalInitErrors:
		q.Set("source", "callback")
		q.Set("type", "initialization_error")
		q.Set("status", "signed") // only beacons whose token verified count
	case rollout.SignalRejectedWebhooks:
		return "/events/rejected?" + url.Values{"env": {"production"}}.Encode()
	case rollout.SignalAPIErrors:
		q.Set("source", "api")
		q.Set("status", "error")
	case rollout.SignalVerifyFailures:
		return "/audit?" + url.Values{"action": {"environment.verify"}, "target": {"environment:production"}}.Encode()
	}
	return "/events?" + q.Encode()
}

// rolloutHistory lists the latest changes to the rollout and its cohorts as diffs; a deletion
// that can still be undone carries its undo.
func (s *Server) rolloutHistory(r *http.Request) ([]templates.HistoryVM, error) {
	dels, err := s.rollout.DeletedCohorts(r.Context())
	if err != nil {
		return nil, err
	}
	undo := map[int64]string{}
	for _, d := range dels {
		undo[d.ID] = d.Name
	}
	var all []db.AuditEntry
	for _, prefix := range []string{"rollout.", "cohort."} {
		es, _, err := s.db.ListAudit(r.Context(), db.AuditFilter{Action: prefix, Limit: 20})
		if err != nil {
			return nil, err
		}
		all = append(all, es...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID > all[j].ID })
	out := make([]templates.HistoryVM, 0, min(len(all), 20))
	for _, e := range all[:min(len(all), 20)] {
		h := templates.HistoryVM{At: e.At, Actor: e.Actor, Action: e.Action, Changes: changesOf(e)}
		if e.Action == "cohort.delete" {
			var after struct {
				Deletion int64 `json:"deletion"`
			}
			if json.Unmarshal(e.After, &after) == nil {
				if name, ok := undo[after.Deletion]; ok {
					h.UndoID, h.UndoName = after.Deletion, name
					delete(undo, after.Deletion)
				}
			}
		}
		out = append(out, h)
	}
	// A deletion stays undoable for db.KeepDeletedCohorts, however many changes came after it:
	// the ones older than the rows above are listed after them.
	for _, d := range dels {
		if _, notShown := undo[d.ID]; !notShown {
			continue
		}
		out = append(out, templates.HistoryVM{At: d.DeletedAt, Actor: d.DeletedBy, Action: "cohort.delete", UndoID: d.ID, UndoName: d.Name,
			Changes: []templates.ChangeVM{{Field: "name", Kind: "removed", Before: d.Name}, {Field: "environment", Kind: "removed", Before: d.Env}}})
	}
	return out, nil
}

// rolloutRedirect answers a rollout form: a problem or a stale version becomes an error flash.
func (s *Server) rolloutRedirect(w http.ResponseWriter, r *http.Request, err error, ok string) error {
	if errors.Is(err, launch.ErrStale) {
		err = validation.Problem("The rollout changed while you were looking at it; nothing was done. Check the page again.")
	}
	if done, err := flashProblem(w, r, err, "/rollout"); done {
		return err
	}
	setFlash(w, r, "ok", ok)
	return redirect(w, r, "/rollout")
}

// cohortRedirect is rolloutRedirect for a change to one cohort or to the order: a stale version
// means that cohort (or the order) changed, not the rollout.
func (s *Server) cohortRedirect(w http.ResponseWriter, r *http.Request, err error, ok string) error {
	switch {
	case errors.Is(err, launch.ErrStale):
		err = validation.Problem("That cohort, or the order of the cohorts, changed while you were looking at it; nothing was done. Check it again.")
	case errors.Is(err, db.ErrNotFound):
		err = validation.Problem("That cohort does not exist any more.")
	}
	return s.rolloutRedirect(w, r, err, ok)
}

func formVersion(r *http.Request) int64 {
	v, _ := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	return v
}

// actRollout is POST /rollout/actions/{action}: operators advance, pause, resume, roll back and
// kill (kill after typing "kill"); leaving killed is an admin's, after their password. The
// narrowing actions work from a stale page: a kill and a pause are made against whatever is
// current, a rollback against the stage the page showed (refused only when that moved).
// Advancing, resuming or reviving while a guardrail is breached first shows the breached
// guardrails with their figures, and happens only when that confirmation is posted back
// (override_guardrails=1).
func (s *Server) actRollout(w http.ResponseWriter, r *http.Request) error {
	act, ok := launch.ParseAction(chiParam(r, "action"))
	if !ok {
		return errNotFound("there is no rollout action " + strconv.Quote(chiParam(r, "action")))
	}
	u, _ := userFrom(r.Context())
	stage, expect := 0, formVersion(r)
	switch act {
	case launch.Kill:
		if strings.TrimSpace(strings.ToLower(r.PostFormValue("confirm"))) != "kill" {
			return s.rolloutForm(w, r, validation.Errors{"confirm": "type kill to confirm"}, nil)
		}
		expect = 0 // whatever happened since the page was loaded, the kill applies to it
	case launch.Revive:
		if !u.Role.AtLeast(db.RoleAdmin) {
			return errForbidden("leaving killed needs the admin role; you are " + string(u.Role))
		}
		if msg := s.reauth(r, "rollout.revive"); msg != "" {
			seen, _ := strconv.Atoi(r.PostFormValue("stage"))
			return s.rolloutForm(w, r, validation.Errors{"password": msg}, func(vm *templates.RolloutVM) { vm.ReviveStage = seen })
		}
		var err error
		if stage, err = strconv.Atoi(r.PostFormValue("stage")); err != nil {
			return errBadRequest("stage must be a number")
		}
	case launch.Rollback:
		stage, _ = strconv.Atoi(r.PostFormValue("stage")) // the stage the page showed; 0: not sent
	}
	override := r.PostFormValue("override_guardrails") == "1"
	rl, err := s.rollout.Act(r.Context(), act, stage, expect, override, s.auditFor(r, "rollout."+string(act)))
	var breached *launch.BreachedError
	if errors.As(err, &breached) {
		if act == launch.Revive {
			return s.confirmFormOverride(w, r, "revive", breached, func(vm *templates.RolloutVM) { vm.ReviveStage = stage })
		}
		return s.confirmOverride(w, r, act, breached)
	}
	var moved *launch.StageMovedError
	if errors.As(err, &moved) {
		err = validation.Problem("Not rolled back: " + moved.Error() + ".")
	}
	msg := fmt.Sprintf("Done: the rollout is %s at %s.", rl.State, rollout.FormatPercent(rl.Percent()))
	if act == launch.Kill {
		if err != nil && s.rollout.Snapshot().Rollout.State == rollout.Killed {
			err = nil // killed by someone else meanwhile: what the kill asked for holds
		}
		if err == nil {
			msg = "Killed. " + s.killConfirmation()
		}
	}
	if override && err == nil {
		msg += " Guardrails were breached; the override is in the audit log."
	}
	return s.rolloutRedirect(w, r, err, msg)
}

// confirmOverride answers an advance or a resume refused for breached guardrails: the page again
// (409), naming each breached guardrail with its figures, and a form that posts the action again
// with override_guardrails=1.
func (s *Server) confirmOverride(w http.ResponseWriter, r *http.Request, act launch.Action, be *launch.BreachedError) error {
	vm, err := s.rolloutVM(w, r, nil)
	if err != nil {
		return err
	}
	label := map[launch.Action]string{launch.Advance: "Advance", launch.Resume: "Resume"}[act]
	vm.Breach = s.breachVM(be)
	vm.Breach.Action, vm.Breach.Label, vm.Breach.Version = string(act), label, vm.Version
	vm.Layout.FlashKind, vm.Layout.Flash = "err", "Not done: "+be.Error()+". Confirm below to go on anyway."
	return render(w, r, http.StatusConflict, templates.RolloutPage(vm))
}

// confirmFormOverride answers a form refused for breached guardrails (a revive, or a cohort
// change that can send more users to production): the page again (409) with that form open, its
// input kept (keep), the breached guardrails named in it, and override_guardrails=1 in it, so
// that submitting it again (with the password) goes ahead.
func (s *Server) confirmFormOverride(w http.ResponseWriter, r *http.Request, form string, be *launch.BreachedError, keep func(*templates.RolloutVM)) error {
	vm, err := s.rolloutVM(w, r, validation.Errors{"form": form})
	if err != nil {
		return err
	}
	if keep != nil {
		keep(&vm)
	}
	vm.Breach = s.breachVM(be)
	vm.Breach.Form = form
	vm.Layout.FlashKind, vm.Layout.Flash = "err", "Not done: "+be.Error()+". Submit the form again to go on anyway."
	return render(w, r, http.StatusConflict, templates.RolloutPage(vm))
}

// breachVM names the breached guardrails with their figures.
func (s *Server) breachVM(be *launch.BreachedError) *templates.BreachVM {
	bv := &templates.BreachVM{}
	for _, st := range be.Breaches {
		bv.Breaches = append(bv.Breaches, guardrailVM(st, s.now()))
	}
	return bv
}

// formOverride reads a form's confirmation of a change while guardrails are breached.
func formOverride(r *http.Request) launch.Overriding {
	return launch.Overriding(r.PostFormValue("override_guardrails") == "1")
}

// killConfirmation checks, right after a kill, that decisions changed: the recent users all go
// off now.
func (s *Server) killConfirmation() string {
	snap := s.rollout.Snapshot()
	prod := 0
	users := []string{"any-user"}
	for _, c := range snap.Cohorts {
		users = append(users, c.UserIDs[:min(len(c.UserIDs), 50)]...)
	}
	for _, id := range users {
		if snap.Decide(rollout.User{ID: id}).Env == rollout.Production {
			prod++
		}
	}
	if prod == 0 {
		return fmt.Sprintf("Decisions changed at once (version %d): nobody is sent to production.", snap.Version())
	}
	return fmt.Sprintf("Warning: %d checked users still decide production; reload and check.", prod)
}

// rolloutForm re-renders the page with a form's errors (422); keep puts the form's input back.
func (s *Server) rolloutForm(w http.ResponseWriter, r *http.Request, errs validation.Errors, keep func(*templates.RolloutVM)) error {
	vm, err := s.rolloutVM(w, r, errs)
	if err != nil {
		return err
	}
	if keep != nil {
		keep(&vm)
	}
	msgs := templates.FieldErrors(maps.Clone(errs))
	delete(msgs, "form") // names the form, says nothing
	what := "Not saved"
	for prefix, w := range map[string]string{"import-": "Not imported", "delete-": "Not deleted", "move-": "Not moved", "restore-": "Not restored"} {
		if strings.HasPrefix(errs["form"], prefix) {
			what = w
		}
	}
	formFailed(&vm.Layout, what, msgs)
	return render(w, r, http.StatusUnprocessableEntity, templates.RolloutPage(vm))
}

// addError adds msg to field, after what is there already: a form reports every problem.
func addError(errs validation.Errors, field, msg string) {
	if cur, ok := errs[field]; ok {
		msg = cur + "; " + msg
	}
	errs[field] = msg
}

// updateRolloutPlan is POST /rollout/plan: stages ("percent soak" lines), guardrails,
// auto-advance and what a breach does. A refusal keeps what was typed and names every problem.
func (s *Server) updateRolloutPlan(w http.ResponseWriter, r *http.Request) error {
	errs := validation.Errors{"form": "plan"}
	if msg := s.reauth(r, "rollout.configure"); msg != "" {
		errs["password"] = msg
	}
	sig, rates, vols, wins := r.PostForm["signal"], r.PostForm["max_rate"], r.PostForm["min_volume"], r.PostForm["window"]
	if len(rates) != len(sig) || len(vols) != len(sig) || len(wins) != len(sig) {
		return errBadRequest("the guardrail rows are incomplete")
	}
	keep := func(vm *templates.RolloutVM) {
		vm.PlanText, vm.PlanTag = r.PostFormValue("stages"), r.PostFormValue("plan_tag")
		vm.AutoAdvance, vm.OnBreach = r.PostFormValue("auto_advance") == "1", r.PostFormValue("on_breach")
		vm.AdvanceWithoutVolume = r.PostFormValue("advance_without_volume") == "1"
		for i := range vm.Guardrails {
			for j := range sig {
				if sig[j] == vm.Guardrails[i].Signal {
					vm.Guardrails[i].FormRate, vm.Guardrails[i].FormVolume, vm.Guardrails[i].FormWindow = rates[j], vols[j], wins[j]
				}
			}
		}
	}
	var stages []rollout.StageInput
	for i, line := range strings.Split(r.PostFormValue("stages"), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		pct, ok := rollout.ParseNumber(strings.TrimSuffix(f[0], "%"))
		if !ok || len(f) > 2 {
			addError(errs, "stages", fmt.Sprintf("line %d: write a percent and a soak, e.g. 5 24h", i+1))
			continue
		}
		st := rollout.StageInput{Percent: pct}
		if len(f) == 2 {
			st.MinSoak = f[1]
		}
		stages = append(stages, st)
	}
	var guards []launch.GuardrailInput
	for i := range sig {
		label := rollout.SignalLabel(rollout.Signal(sig[i]))
		rate, ok := rollout.ParseNumber(strings.TrimSpace(rates[i]))
		vol, err := strconv.ParseInt(strings.TrimSpace(vols[i]), 10, 64)
		if !ok || err != nil {
			addError(errs, "guardrails", label+": max rate and min volume are finite numbers, e.g. 5 and 20")
			continue
		}
		guards = append(guards, launch.GuardrailInput{Signal: rollout.Signal(sig[i]), MaxRate: rate / 100, MinVolume: vol, Window: wins[i]})
	}
	if len(errs) > 1 {
		return s.rolloutForm(w, r, errs, keep)
	}
	auto, breach := r.PostFormValue("auto_advance") == "1", r.PostFormValue("on_breach")
	noVolume := r.PostFormValue("advance_without_volume") == "1"
	plan := launch.Plan{Stages: &stages, Guardrails: &guards, AutoAdvance: &auto, AdvanceWithoutVolume: &noVolume, OnBreach: &breach, Seen: r.PostFormValue("plan_tag")}
	_, err := s.rollout.Configure(r.Context(), plan, formVersion(r), s.auditFor(r, "rollout.configure"))
	if errors.Is(err, launch.ErrStale) {
		return s.staleForm(w, r, "plan", "The plan, the guardrails or the stage changed while you were editing; nothing was saved. Your input is kept below: compare it with the plan above and save again.", keep)
	}
	var ve validation.Errors
	if errors.As(err, &ve) {
		for _, k := range sortedKeys(ve) {
			field := k
			if strings.HasPrefix(k, "stages") {
				field = "stages"
			} else if strings.HasPrefix(k, "guardrails") {
				field = "guardrails"
			}
			addError(errs, field, ve[k])
		}
		return s.rolloutForm(w, r, errs, keep)
	}
	return s.rolloutRedirect(w, r, err, "Saved the plan and guardrails.")
}

// staleForm answers a form refused because what it changes changed meanwhile: the page again
// (409) with the form open and its input kept, and msg saying so. The form's hidden version is
// the current one, so saving again is deliberate.
func (s *Server) staleForm(w http.ResponseWriter, r *http.Request, form, msg string, keep func(*templates.RolloutVM)) error {
	vm, err := s.rolloutVM(w, r, validation.Errors{"form": form})
	if err != nil {
		return err
	}
	keep(&vm)
	vm.PlanTag = launch.PlanTag(s.rollout.Snapshot().Rollout)
	vm.Layout.FlashKind, vm.Layout.Flash = "err", msg
	return render(w, r, http.StatusConflict, templates.RolloutPage(vm))
}

func sortedKeys(m validation.Errors) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// cohortFormInput reads a cohort form's name, environment, match and rules. The rules' problems
// (every bad line) and the check's (every bad field) are added to errs under the form's fields,
// rules[i].* naming the line it came from.
func cohortFormInput(r *http.Request, withRules bool, errs validation.Errors) launch.CohortInput {
	in := launch.CohortInput{Name: r.PostFormValue("name"), Env: r.PostFormValue("environment"), Match: r.PostFormValue("match")}
	var lines []int
	if withRules {
		in.Rules, lines = parseRuleLines(r.PostFormValue("rules"), errs)
		if in.Rules == nil {
			in.Rules = []rollout.Rule{}
		}
	}
	probe := in
	if !withRules {
		probe.UserIDs = []string{}
	}
	checkCohortInto(launch.CheckCohort(probe), lines, errs)
	return in
}

// checkCohortInto adds the check's errors to errs: rules[i].x becomes "rules", naming the line.
func checkCohortInto(err error, lines []int, errs validation.Errors) {
	var ve validation.Errors
	if !errors.As(err, &ve) {
		return
	}
	for _, k := range sortedKeys(ve) {
		field, msg := k, ve[k]
		if rest, ok := strings.CutPrefix(k, "rules["); ok {
			field = "rules"
			if n, err := strconv.Atoi(rest[:max(0, strings.IndexByte(rest, ']'))]); err == nil && n < len(lines) {
				msg = fmt.Sprintf("line %d: %s", lines[n], msg)
			}
		} else if strings.HasPrefix(k, "rules") {
			field = "rules"
		}
		if errs.Has(field) && strings.Contains(errs[field], msg) {
			continue
		}
		addError(errs, field, msg)
	}
}

// createCohortForm is POST /rollout/cohorts (multipart): an allow-list from a file, or rules. A
// refusal keeps the name, environment, rules and match (a browser cannot refill a file: the page
// says so) and names every problem at once.
func (s *Server) createCohortForm(w http.ResponseWriter, r *http.Request) error {
	allowLargeBody(w, r, s.cfg.MaxUploadBytes)
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		return errBadRequest("cannot read the form: %v", err)
	}
	errs := validation.Errors{"form": "cohort"}
	if msg := s.reauth(r, "cohort.create"); msg != "" {
		errs["password"] = msg
	}
	var file []byte
	if f, _, err := r.FormFile("file"); err == nil {
		defer f.Close()
		if file, err = io.ReadAll(f); err != nil {
			return err
		}
	}
	rulesText := strings.TrimSpace(r.PostFormValue("rules"))
	keep := func(vm *templates.RolloutVM) {
		vm.CohortInput = templates.CohortFormVM{Name: r.PostFormValue("name"), Env: r.PostFormValue("environment"), Rules: r.PostFormValue("rules"),
			Match: r.PostFormValue("match"), HadFile: len(file) > 0}
	}
	if len(file) > 0 && rulesText != "" {
		errs["rules"] = "give a file or rules, not both"
	}
	in := cohortFormInput(r, rulesText != "", errs)
	if rulesText == "" {
		ids, err := launch.ParseIDFile(file)
		var ve validation.Errors
		var p validation.Problem
		switch {
		case errors.As(err, &ve):
			for k, v := range ve {
				addError(errs, k, v)
			}
		case errors.As(err, &p):
			addError(errs, "user_ids", string(p))
		case err != nil:
			return err
		default:
			in.UserIDs = ids
			in.Rules = nil
			checkCohortInto(launch.CheckCohort(in), nil, errs)
		}
	}
	if len(errs) > 1 {
		return s.rolloutForm(w, r, errs, keep)
	}
	c, _, err := s.rollout.CreateCohort(r.Context(), in, 0, s.auditFor(r, "cohort.create"), formOverride(r))
	var ve validation.Errors
	if errors.As(err, &ve) {
		checkCohortInto(err, nil, errs)
		return s.rolloutForm(w, r, errs, keep)
	}
	var breached *launch.BreachedError
	if errors.As(err, &breached) {
		return s.confirmFormOverride(w, r, "cohort", breached, keep)
	}
	return s.cohortRedirect(w, r, err, fmt.Sprintf("Added the cohort %s (%s).", c.Name, c.Env))
}

// parseRuleLines reads the rules of a cohort form, one a line: "attribute op values", the values
// either plain and separated by commas (country in SE,NO) or a JSON array of strings, which holds
// any value (tag in ["a,b", "New York"]). Every bad line is added to errs; lines[i] is the line
// rule i came from. formatRuleLine writes a rule so that this reads it back unchanged.
func parseRuleLines(text string, errs validation.Errors) (rules []rollout.Rule, lines []int) {
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		attr, rest := cutSpace(line)
		op, rest := cutSpace(rest)
		if attr == "" || op == "" || rest == "" {
			addError(errs, "rules", fmt.Sprintf("line %d: write attribute op value, e.g. country in SE,NO", i+1))
			continue
		}
		var values []string
		if strings.HasPrefix(rest, "[") {
			if err := json.Unmarshal([]byte(rest), &values); err != nil {
				addError(errs, "rules", fmt.Sprintf(`line %d: the values are not a JSON array of strings such as ["a,b", "c d"]`, i+1))
				continue
			}
		} else {
			values = strings.Split(rest, ",")
			for j := range values {
				values[j] = strings.TrimSpace(values[j])
			}
		}
		rules = append(rules, rollout.Rule{Attribute: attr, Op: rollout.Op(op), Values: values})
		lines = append(lines, i+1)
	}
	return rules, lines
}

// cutSpace splits s at its first run of white space.
func cutSpace(s string) (head, rest string) {
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}

// formatRuleLine writes a rule as the cohort forms read it (parseRuleLines): the values plain
// with commas when every one is plain, else as a JSON array, so that no value is split or lost.
func formatRuleLine(ru rollout.Rule) string {
	plain := true
	for _, v := range ru.Values {
		if v == "" || strings.ContainsAny(v, ",\"[\\") || strings.IndexFunc(v, unicode.IsSpace) >= 0 {
			plain = false
		}
	}
	values := strings.Join(ru.Values, ",")
	if !plain {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(ru.Values)
		values = strings.TrimSpace(b.String())
	}
	return ru.Attribute + " " + string(ru.Op) + " " + values
}

// editCohortForm is POST /rollout/cohorts/{id}/edit: name, environment and, for a rule cohort,
// the rules. An allow-list keeps its members. A refusal keeps the input in the row's open form.
func (s *Server) editCohortForm(w http.ResponseWriter, r *http.Request) error {
	cur, err := s.pathCohort(r)
	if err != nil {
		return err
	}
	form := "edit-" + itoa(cur.ID)
	errs := validation.Errors{"form": form}
	if msg := s.reauth(r, "cohort.update"); msg != "" {
		errs["password"] = msg
	}
	in := cohortFormInput(r, cur.Kind == "rules", errs)
	keep := func(vm *templates.RolloutVM) {
		vm.RowInput = templates.CohortFormVM{Name: in.Name, Env: in.Env, Rules: r.PostFormValue("rules"), Match: in.Match}
	}
	if len(errs) > 1 {
		return s.rolloutForm(w, r, errs, keep)
	}
	c, _, err := s.rollout.UpdateCohort(r.Context(), cur.ID, in, formVersion(r), s.auditFor(r, "cohort.update"), formOverride(r))
	var ve validation.Errors
	if errors.As(err, &ve) {
		checkCohortInto(err, nil, errs)
		return s.rolloutForm(w, r, errs, keep)
	}
	var breached *launch.BreachedError
	if errors.As(err, &breached) {
		return s.confirmFormOverride(w, r, form, breached, keep)
	}
	if errors.Is(err, launch.ErrStale) {
		return s.staleForm(w, r, form, "That cohort changed while you were editing it; nothing was saved. Your input is kept below: compare it with the cohort and save again.", keep)
	}
	return s.cohortRedirect(w, r, err, fmt.Sprintf("Saved the cohort %s (%s).", c.Name, c.Env))
}

// importMembersForm is POST /rollout/cohorts/{id}/import (multipart): replaces an allow-list's
// members with the ids of a file. A refusal opens the row's form again with every problem.
func (s *Server) importMembersForm(w http.ResponseWriter, r *http.Request) error {
	allowLargeBody(w, r, s.cfg.MaxUploadBytes)
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		return errBadRequest("cannot read the form: %v", err)
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	errs := validation.Errors{"form": "import-" + itoa(id)}
	if msg := s.reauth(r, "cohort.import"); msg != "" {
		errs["password"] = msg
	}
	var file []byte
	if f, _, err := r.FormFile("file"); err != nil {
		errs["user_ids"] = "choose a file of user ids"
	} else {
		defer f.Close()
		if file, err = io.ReadAll(f); err != nil {
			return err
		}
	}
	if len(errs) > 1 {
		return s.rolloutForm(w, r, errs, nil)
	}
	n, _, err := s.rollout.ImportMembers(r.Context(), id, file, formVersion(r), s.auditFor(r, "cohort.import"), formOverride(r))
	var ve validation.Errors
	var p validation.Problem
	var breached *launch.BreachedError
	switch {
	case errors.As(err, &breached):
		return s.confirmFormOverride(w, r, "import-"+itoa(id), breached, nil)
	case errors.As(err, &ve):
		for k, v := range ve {
			addError(errs, k, v)
		}
		return s.rolloutForm(w, r, errs, nil)
	case errors.As(err, &p):
		errs["user_ids"] = string(p)
		return s.rolloutForm(w, r, errs, nil)
	}
	return s.cohortRedirect(w, r, err, fmt.Sprintf("Imported: the allow-list now holds %d users.", n))
}

// deleteCohortForm is POST /rollout/cohorts/{id}/delete: after the row's confirmation, which says
// what changes for how many users, and the admin's password. The deletion can be undone from the
// history for a week.
func (s *Server) deleteCohortForm(w http.ResponseWriter, r *http.Request) error {
	cur, err := s.pathCohort(r)
	if err != nil {
		return err
	}
	if msg := s.reauth(r, "cohort.delete"); msg != "" {
		return s.rolloutForm(w, r, validation.Errors{"form": "delete-" + itoa(cur.ID), "password": msg}, nil)
	}
	_, _, err = s.rollout.DeleteCohort(r.Context(), cur.ID, formVersion(r), s.auditFor(r, "cohort.delete"), formOverride(r))
	var breached *launch.BreachedError
	if errors.As(err, &breached) {
		return s.confirmFormOverride(w, r, "delete-"+itoa(cur.ID), breached, nil)
	}
	return s.cohortRedirect(w, r, err, fmt.Sprintf("Deleted the cohort %s: %s. Undo it under History within %s.",
		cur.Name, templates.DeleteConsequence(cur.Env, cur.Kind, cur.Size), rollout.FormatDuration(db.KeepDeletedCohorts)))
}

// restoreCohortForm is POST /rollout/cohorts/deleted/{id}/restore: undo a deletion, after the
// admin's password.
func (s *Server) restoreCohortForm(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if msg := s.reauth(r, "cohort.restore"); msg != "" {
		return s.rolloutForm(w, r, validation.Errors{"form": "restore-" + itoa(id), "password": msg}, nil)
	}
	c, _, err := s.rollout.RestoreCohort(r.Context(), id, s.auditFor(r, "cohort.restore"), formOverride(r))
	var breached *launch.BreachedError
	if errors.As(err, &breached) {
		return s.confirmFormOverride(w, r, "restore-"+itoa(id), breached, nil)
	}
	if errors.Is(err, db.ErrNotFound) {
		err = validation.Problem("That deletion cannot be undone any more: it was undone already, or is older than " + rollout.FormatDuration(db.KeepDeletedCohorts) + ".")
	}
	var ve validation.Errors
	if errors.As(err, &ve) {
		err = validation.Problem("Not restored: " + ve.Error())
	}
	return s.rolloutRedirect(w, r, err, fmt.Sprintf("Restored the cohort %s (%s) at place %d.", c.Name, c.Env, c.Position))
}

// moveCohortForm is POST /rollout/cohorts/{id}/move (dir up or down), after the admin's password.
func (s *Server) moveCohortForm(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if msg := s.reauth(r, "cohort.reorder"); msg != "" {
		return s.rolloutForm(w, r, validation.Errors{"form": "move-" + itoa(id), "password": msg}, nil)
	}
	cs, err := s.rollout.Cohorts(r.Context())
	if err != nil {
		return err
	}
	ids := make([]int64, 0, len(cs))
	at := -1
	for i, c := range cs {
		ids = append(ids, c.ID)
		if c.ID == id {
			at = i
		}
	}
	to := at - 1
	if r.PostFormValue("dir") == "down" {
		to = at + 1
	}
	if at < 0 || to < 0 || to >= len(ids) {
		return s.rolloutRedirect(w, r, validation.Problem("That cohort cannot move further."), "")
	}
	ids[at], ids[to] = ids[to], ids[at]
	_, err = s.rollout.ReorderCohorts(r.Context(), ids, formVersion(r), s.auditFor(r, "cohort.reorder"))
	return s.cohortRedirect(w, r, err, "Moved the cohort.")
}
