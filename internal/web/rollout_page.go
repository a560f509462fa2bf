package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"sort"
	"strconv"
	"strings"

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
		if !ok || strings.TrimSpace(k) == "" {
			return nil, errBadRequest("attributes are key=value lines, e.g. country=SE (got %q)", validation.Clip(line, 60))
		}
		attrs[strings.TrimSpace(k)] = strings.TrimSpace(v)
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
	vm.PlanText = strings.Join(plan, "\n")
	h, err := s.rollout.Health(ctx)
	if err != nil {
		return vm, err
	}
	vm.NextAdvance, vm.AdvanceWhy = h.NextAdvance, h.Why
	for _, st := range h.Statuses {
		g, f := st.Guardrail, st.Figures
		gv := templates.GuardrailVM{Signal: string(g.Signal), Label: rollout.SignalLabel(g.Signal), Bad: f.Bad, Total: f.Total,
			Rate: fmt.Sprintf("%.1f %%", 100*f.Rate()), Limit: fmt.Sprintf("%.1f %%", 100*g.MaxRate), MinVolume: g.MinVolume,
			Window: rollout.FormatDuration(g.Window), Status: "ok", MaxRate: g.MaxRate}
		switch {
		case st.Breached:
			gv.Status = "breached"
		case !st.Judged:
			gv.Status = "low_volume"
		}
		if gv.Trend, err = s.rollout.Trend(ctx, g, 8); err != nil {
			return vm, err
		}
		vm.Guardrails = append(vm.Guardrails, gv)
	}
	cohorts, err := s.rollout.Cohorts(ctx)
	if err != nil {
		return vm, err
	}
	for i, c := range cohorts {
		cv := templates.CohortVM{ID: c.ID, Name: c.Name, Env: c.Env, Kind: c.Kind, Size: c.Size, First: i == 0, Last: i == len(cohorts)-1}
		if c.Kind == "list" {
			cv.Summary = fmt.Sprintf("allow-list of %d users", c.Size)
		} else {
			var rules []rollout.Rule
			_ = json.Unmarshal(c.Rules, &rules)
			parts := make([]string, 0, len(rules))
			for _, ru := range rules {
				parts = append(parts, ru.Attribute+" "+string(ru.Op)+" "+strings.Join(ru.Values, ","))
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

// rolloutHistory lists the latest changes to the rollout and its cohorts as diffs.
func (s *Server) rolloutHistory(r *http.Request) ([]templates.HistoryVM, error) {
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
		out = append(out, h)
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

func formVersion(r *http.Request) int64 {
	v, _ := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	return v
}

// actRollout is POST /rollout/actions/{action}: operators advance, pause, resume, roll back and
// kill (kill after typing "kill"); leaving killed is an admin's, after their password.
func (s *Server) actRollout(w http.ResponseWriter, r *http.Request) error {
	act, ok := launch.ParseAction(chiParam(r, "action"))
	if !ok {
		return errNotFound("there is no rollout action " + strconv.Quote(chiParam(r, "action")))
	}
	u, _ := userFrom(r.Context())
	stage := 0
	switch act {
	case launch.Kill:
		if strings.TrimSpace(strings.ToLower(r.PostFormValue("confirm"))) != "kill" {
			return s.rolloutForm(w, r, validation.Errors{"confirm": "type kill to confirm"})
		}
	case launch.Revive:
		if !u.Role.AtLeast(db.RoleAdmin) {
			return errForbidden("leaving killed needs the admin role; you are " + string(u.Role))
		}
		if msg := s.reauth(r, "rollout.revive"); msg != "" {
			return s.rolloutForm(w, r, validation.Errors{"password": msg})
		}
		var err error
		if stage, err = strconv.Atoi(r.PostFormValue("stage")); err != nil {
			return errBadRequest("stage must be a number")
		}
	}
	rl, err := s.rollout.Act(r.Context(), act, stage, formVersion(r), false, s.auditFor(r, "rollout."+string(act)))
	msg := fmt.Sprintf("Done: the rollout is %s at %s.", rl.State, rollout.FormatPercent(rl.Percent()))
	if act == launch.Kill && err == nil {
		msg = "Killed. " + s.killConfirmation()
	}
	return s.rolloutRedirect(w, r, err, msg)
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

// rolloutForm re-renders the page with a form's errors (422).
func (s *Server) rolloutForm(w http.ResponseWriter, r *http.Request, errs validation.Errors) error {
	vm, err := s.rolloutVM(w, r, errs)
	if err != nil {
		return err
	}
	msgs := templates.FieldErrors(maps.Clone(errs))
	delete(msgs, "form") // names the form, says nothing
	formFailed(&vm.Layout, "Not saved", msgs)
	return render(w, r, http.StatusUnprocessableEntity, templates.RolloutPage(vm))
}

// updateRolloutPlan is POST /rollout/plan: stages ("percent soak" lines), guardrails,
// auto-advance and what a breach does.
func (s *Server) updateRolloutPlan(w http.ResponseWriter, r *http.Request) error {
	if msg := s.reauth(r, "rollout.configure"); msg != "" {
		return s.rolloutForm(w, r, validation.Errors{"password": msg})
	}
	var stages []rollout.StageInput
	for i, line := range strings.Split(r.PostFormValue("stages"), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil || len(f) > 2 {
			return s.rolloutForm(w, r, validation.Errors{"stages": fmt.Sprintf("line %d: write a percent and a soak, e.g. 5 24h", i+1)})
		}
		st := rollout.StageInput{Percent: pct}
		if len(f) == 2 {
			st.MinSoak = f[1]
		}
		stages = append(stages, st)
	}
	var guards []launch.GuardrailInput
	sig, rates, vols, wins := r.PostForm["signal"], r.PostForm["max_rate"], r.PostForm["min_volume"], r.PostForm["window"]
	for i := range sig {
		if i >= len(rates) || i >= len(vols) || i >= len(wins) {
			return errBadRequest("the guardrail rows are incomplete")
		}
		rate, err1 := strconv.ParseFloat(strings.TrimSpace(rates[i]), 64)
		vol, err2 := strconv.ParseInt(strings.TrimSpace(vols[i]), 10, 64)
		if err1 != nil || err2 != nil {
			return s.rolloutForm(w, r, validation.Errors{"guardrails": fmt.Sprintf("%s: max rate and min volume are numbers", rollout.SignalLabel(rollout.Signal(sig[i])))})
		}
		guards = append(guards, launch.GuardrailInput{Signal: rollout.Signal(sig[i]), MaxRate: rate / 100, MinVolume: vol, Window: wins[i]})
	}
	auto, breach := r.PostFormValue("auto_advance") == "1", r.PostFormValue("on_breach")
	noVolume := r.PostFormValue("advance_without_volume") == "1"
	_, err := s.rollout.Configure(r.Context(), launch.Plan{Stages: &stages, Guardrails: &guards, AutoAdvance: &auto, AdvanceWithoutVolume: &noVolume, OnBreach: &breach},
		formVersion(r), s.auditFor(r, "rollout.configure"))
	var errs validation.Errors
	if errors.As(err, &errs) {
		out := validation.Errors{}
		for k, v := range errs {
			if strings.HasPrefix(k, "stages") {
				k = "stages"
			} else if strings.HasPrefix(k, "guardrails") {
				k = "guardrails"
			}
			out[k] = v
		}
		return s.rolloutForm(w, r, out)
	}
	return s.rolloutRedirect(w, r, err, "Saved the plan and guardrails.")
}

// createCohortForm is POST /rollout/cohorts (multipart): an allow-list from a file, or rules.
func (s *Server) createCohortForm(w http.ResponseWriter, r *http.Request) error {
	allowLargeBody(w, r, s.cfg.MaxUploadBytes)
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		return errBadRequest("cannot read the form: %v", err)
	}
	if msg := s.reauth(r, "cohort.create"); msg != "" {
		return s.rolloutForm(w, r, validation.Errors{"password": msg, "form": "cohort"})
	}
	in := launch.CohortInput{Name: r.PostFormValue("name"), Env: r.PostFormValue("environment"), Match: r.PostFormValue("match")}
	var file []byte
	if f, _, err := r.FormFile("file"); err == nil {
		defer f.Close()
		if file, err = io.ReadAll(f); err != nil {
			return err
		}
	}
	rulesText := strings.TrimSpace(r.PostFormValue("rules"))
	switch {
	case len(file) > 0 && rulesText != "":
		return s.rolloutForm(w, r, validation.Errors{"rules": "give a file or rules, not both", "form": "cohort"})
	case rulesText != "":
		rules, err := parseRuleLines(rulesText)
		if err != nil {
			return s.rolloutForm(w, r, validation.Errors{"rules": err.Error(), "form": "cohort"})
		}
		in.Rules = rules
	default:
		ids, err := launch.ParseIDFile(file)
		if err != nil {
			return s.rolloutForm(w, r, validation.Errors{"user_ids": err.Error(), "form": "cohort"})
		}
		in.UserIDs = ids
	}
	c, _, err := s.rollout.CreateCohort(r.Context(), in, formVersion(r), s.auditFor(r, "cohort.create"))
	var errs validation.Errors
	if errors.As(err, &errs) {
		out := validation.Errors{"form": "cohort"}
		for k, v := range errs {
			if strings.HasPrefix(k, "rules") {
				k = "rules"
			}
			out[k] = v
		}
		return s.rolloutForm(w, r, out)
	}
	return s.rolloutRedirect(w, r, err, fmt.Sprintf("Added the cohort %s (%s).", c.Name, c.Env))
}

// parseRuleLines reads the rules of a cohort form: "attribute op value[,value]" a line.
func parseRuleLines(text string) ([]rollout.Rule, error) {
	var rules []rollout.Rule
	for i, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, validation.Problem(fmt.Sprintf("line %d: write attribute op value, e.g. country in SE,NO", i+1))
		}
		rules = append(rules, rollout.Rule{Attribute: f[0], Op: rollout.Op(f[1]), Values: strings.Split(f[2], ",")})
	}
	return rules, nil
}

// editCohortForm is POST /rollout/cohorts/{id}/edit: name, environment and, for a rule cohort,
// the rules. An allow-list keeps its members.
func (s *Server) editCohortForm(w http.ResponseWriter, r *http.Request) error {
	cur, err := s.pathCohort(r)
	if err != nil {
		return err
	}
	if msg := s.reauth(r, "cohort.update"); msg != "" {
		return s.rolloutRedirect(w, r, validation.Problem("Not saved: "+msg+"."), "")
	}
	in := launch.CohortInput{Name: r.PostFormValue("name"), Env: r.PostFormValue("environment"), Match: r.PostFormValue("match")}
	if cur.Kind == "rules" {
		if in.Rules, err = parseRuleLines(r.PostFormValue("rules")); err != nil {
			return s.rolloutRedirect(w, r, validation.Problem("Not saved: "+err.Error()), "")
		}
		if in.Rules == nil {
			in.Rules = []rollout.Rule{}
		}
	}
	c, _, err := s.rollout.UpdateCohort(r.Context(), cur.ID, in, formVersion(r), s.auditFor(r, "cohort.update"))
	var errs validation.Errors
	if errors.As(err, &errs) {
		err = validation.Problem("Not saved: " + errs.Error())
	}
	return s.rolloutRedirect(w, r, err, fmt.Sprintf("Saved the cohort %s (%s).", c.Name, c.Env))
}

// importMembersForm is POST /rollout/cohorts/{id}/import (multipart): replaces an allow-list's
// members with the ids of a file.
func (s *Server) importMembersForm(w http.ResponseWriter, r *http.Request) error {
	allowLargeBody(w, r, s.cfg.MaxUploadBytes)
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		return errBadRequest("cannot read the form: %v", err)
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if msg := s.reauth(r, "cohort.import"); msg != "" {
		return s.rolloutRedirect(w, r, validation.Problem("Not imported: "+msg+"."), "")
	}
	f, _, err := r.FormFile("file")
	if err != nil {
		return s.rolloutRedirect(w, r, validation.Problem("Not imported: choose a file of user ids."), "")
	}
	defer f.Close()
	file, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	n, _, err := s.rollout.ImportMembers(r.Context(), id, file, formVersion(r), s.auditFor(r, "cohort.import"))
	var errs validation.Errors
	switch {
	case errors.Is(err, db.ErrNotFound):
		err = validation.Problem("That cohort does not exist any more.")
	case errors.As(err, &errs):
		err = validation.Problem("Not imported: " + errs.Error())
	}
	return s.rolloutRedirect(w, r, err, fmt.Sprintf("Imported: the allow-list now holds %d users.", n))
}

// deleteCohortForm is POST /rollout/cohorts/{id}/delete.
func (s *Server) deleteCohortForm(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	_, err = s.rollout.DeleteCohort(r.Context(), id, formVersion(r), s.auditFor(r, "cohort.delete"))
	if errors.Is(err, db.ErrNotFound) {
		err = validation.Problem("That cohort does not exist any more.")
	}
	return s.rolloutRedirect(w, r, err, "Deleted the cohort.")
}

// moveCohortForm is POST /rollout/cohorts/{id}/move (dir up or down).
func (s *Server) moveCohortForm(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
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
	return s.rolloutRedirect(w, r, err, "Moved the cohort.")
}
