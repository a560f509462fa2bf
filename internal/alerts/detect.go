package alerts

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/diskguard"
)

// auditBatch is how many audit rows one read takes.
const auditBatch = 200

// FollowAudit turns the audit rows written since the cursor into alerts: the kill switch
// (rollout.kill), a stage advance (rollout.advance), a guardrail trip (rollout.guardrail_breach),
// a locked second factor (auth.second_factor_locked) and a failed verification (environment.verify with an outcome other than ok). The cursor moves
// in the transaction that stores the deliveries.
func (s *Service) FollowAudit(ctx context.Context) error {
	s.detectMu.Lock()
	defer s.detectMu.Unlock()
	st, err := s.db.AlertState(ctx, stateCursor)
	if err != nil {
		return err
	}
	cursor, _ := strconv.ParseInt(st[stateCursor], 10, 64)
	for {
		rows, err := s.db.AuditAfter(ctx, cursor, auditBatch)
		if err != nil || len(rows) == 0 {
			return err
		}
		var found []Alert
		for _, e := range rows {
			if a, ok := s.fromAudit(e); ok {
				found = append(found, a)
			}
		}
		cursor = rows[len(rows)-1].ID
		if err := s.record(ctx, found, map[string]string{stateCursor: strconv.FormatInt(cursor, 10)}); err != nil {
			return err
		}
		if len(rows) < auditBatch {
			return nil
		}
	}
}

// fromAudit is the alert an audit row calls for, if any.
func (s *Service) fromAudit(e db.AuditEntry) (Alert, bool) {
	var after map[string]any
	_ = json.Unmarshal(e.After, &after) // a row without after has nothing to add
	who := actorName(e.Actor)
	a := Alert{Status: StatusFiring, OccurredAt: rfc3339(e.At), Data: map[string]any{"audit_id": e.ID, "actor": e.Actor}}
	switch e.Action {
	case "rollout.kill":
		a.Type, a.Env, a.URL = EventKilled, "production", s.link("/rollout")
		a.Title = "Kill switch: the production rollout was killed"
		a.Text = "Nobody is sent to production until an admin brings the rollout back to a stage. Killed by " + who + "."
	case "rollout.advance":
		a.Type, a.Env, a.URL = EventStageAdvanced, "production", s.link("/rollout")
		stage, percent := num(after["stage"]), num(after["percent"])
		a.Title = fmt.Sprintf("Rollout advanced to stage %s (%s %% of users in production)", fmtNum(stage), fmtNum(percent))
		a.Text = "Advanced by " + who + "."
		a.Data["stage"], a.Data["percent"] = stage, percent
	case "rollout.guardrail_breach":
		a.Type, a.Env, a.URL = EventGuardrailTripped, "production", s.link("/rollout")
		if st, _ := after["state"].(string); st == "paused" {
			a.Title = "Guardrail tripped: the production rollout is paused"
		} else {
			a.Title = fmt.Sprintf("Guardrail tripped: the production rollout went back to stage %s (%s %%)", fmtNum(num(after["stage"])), fmtNum(num(after["percent"])))
		}
		held, _ := after["held"].(string)
		a.Text = upperFirst(held) + ". It stays there until someone resumes it."
		if figs, ok := after["figures"]; ok {
			a.Data["figures"] = figs
		}
	case "auth.second_factor_locked":
		a.Type, a.URL = EventCodesLocked, s.link("/settings/users")
		a.Title = "Two-factor locked for " + strings.TrimPrefix(e.Target, "user:") + " after wrong codes"
		a.Text = fmt.Sprintf("%s wrong two-factor codes in a row: someone who knows this account's password is guessing codes. Codes are refused until %s. Change the password if it was not the owner.",
			fmtNum(num(after["wrong_codes"])), after["locked_until"])
		a.Data["target"] = e.Target
	case "environment.verify":
		outcome, _ := after["outcome"].(string)
		if outcome == "" || outcome == "ok" {
			return Alert{}, false
		}
		env := strings.TrimPrefix(e.Target, "environment:")
		a.Type, a.Env, a.URL = EventVerifyFailed, env, s.link("/environments")
		a.Title = fmt.Sprintf("Key verification failed in %s (%s)", env, strings.ReplaceAll(outcome, "_", " "))
		detail, _ := after["detail"].(string)
		a.Text = detail
		if rid, _ := after["request_id"].(string); rid != "" {
			a.Text += " Tensfer request_id " + rid + "."
			a.Data["request_id"] = rid
		}
		a.Data["outcome"] = outcome
	default:
		return Alert{}, false
	}
	return a, true
}

// burst is the state of one kind of burst in one environment while it goes on.
type burst struct {
	Firing     bool      `json:"firing"`
	Since      time.Time `json:"since"`
	QuietSince time.Time `json:"quiet_since"` // below the threshold since; zero while above
	Peak       int64     `json:"peak"`
}

// step is the burst after a check at now that found count, above the threshold or not, and the
// alert to send: firing when a burst starts, resolved when it has been quiet for quiet, none
// otherwise. Going back above the threshold while quiet is the same incident.
func (b burst) step(above bool, count int64, now time.Time, quiet time.Duration) (burst, string) {
	switch {
	case above && !b.Firing:
		return burst{Firing: true, Since: now, Peak: count}, StatusFiring
	case above:
		b.QuietSince, b.Peak = time.Time{}, max(b.Peak, count)
		return b, ""
	case !b.Firing:
		return b, ""
	case b.QuietSince.IsZero():
		b.QuietSince = now
		return b, ""
	case now.Sub(b.QuietSince) >= quiet:
		return burst{}, StatusResolved
	}
	return b, ""
}

func burstKey(typ, env string) string { return "burst/" + typ + "/" + env }

// CheckBursts counts, over the window, refused webhook deliveries and initialization_error
// callbacks per environment, and looks at the disk guard; a count reaching its threshold starts a
// burst (one firing alert), and a burst ends (one resolved alert) once it has stayed below for
// the quiet period. Refusals for a missing header are not counted: they are not webhooks at all
// (scanners, health checks), and say nothing about the signing secret.
func (s *Service) CheckBursts(ctx context.Context) error {
	s.detectMu.Lock()
	defer s.detectMu.Unlock()
	now := s.now()
	s.lastBurst = now
	figs, err := s.db.AlertBurstFigures(ctx, now.Add(-s.opt.Window))
	if err != nil {
		return err
	}
	states, err := s.db.AlertState(ctx, "burst/")
	if err != nil {
		return err
	}
	var found []Alert
	changes := map[string]string{}
	check := func(typ, env string, above bool, count int64, alert func(b burst, status string) Alert) {
		key := burstKey(typ, env)
		var b burst
		if v, ok := states[key]; ok {
			_ = json.Unmarshal([]byte(v), &b) // a damaged state is a burst not going on
		}
		next, status := b.step(above, count, now, s.opt.Quiet)
		if next != b {
			changes[key] = ""
			if next.Firing {
				v, _ := json.Marshal(next)
				changes[key] = string(v)
			}
		}
		if status != "" {
			a := alert(b, status)
			a.Type, a.Env, a.Status, a.OccurredAt = typ, env, status, rfc3339(now)
			if status == StatusResolved {
				a.Data["began_at"], a.Data["peak"] = rfc3339(b.Since), b.Peak
			}
			found = append(found, a)
		}
	}
	window := fmtDuration(s.opt.Window)
	for _, env := range []string{"sandbox", "production"} {
		f := figs[env]
		var refused int64
		reasons := map[string]int64{}
		for reason, n := range f.Refused {
			if reason != db.RejectMissingHeader {
				refused += n
				reasons[reason] = n
			}
		}
		check(EventRefusedWebhooks, env, refused >= s.opt.RefusedWebhooks, refused, func(b burst, status string) Alert {
			a := Alert{URL: s.link("/events/rejected?env=" + env), Data: map[string]any{"count": refused, "window": window, "threshold": s.opt.RefusedWebhooks, "reasons": reasons}}
			if status == StatusResolved {
				a.Title = "Refused webhooks in " + env + " are back to normal"
				a.Text = fmt.Sprintf("Below %d in %s for %s; the burst began %s ago and peaked at %d.", s.opt.RefusedWebhooks, window, fmtDuration(s.opt.Quiet), fmtDuration(now.Sub(b.Since)), b.Peak)
				return a
			}
			a.Title = "Burst of refused webhooks in " + env
			a.Text = fmt.Sprintf("%d webhook deliveries to %s were refused in the last %s (%s).", refused, env, window, reasonList(reasons))
			if reasons[db.RejectNoMatchingSignature] > 0 {
				a.Text += " Signature failures usually mean the signing secret was rotated at Tensfer but not here: compare the secrets under Environments."
			}
			return a
		})
		check(EventInitErrors, env, f.InitErrors >= s.opt.InitErrors, f.InitErrors, func(b burst, status string) Alert {
			a := Alert{URL: s.link("/events?source=callback&type=initialization_error&env=" + env), Data: map[string]any{"count": f.InitErrors, "window": window, "threshold": s.opt.InitErrors}}
			if status == StatusResolved {
				a.Title = "Initialization errors in " + env + " are back to normal"
				a.Text = fmt.Sprintf("Below %d in %s for %s; the burst began %s ago and peaked at %d.", s.opt.InitErrors, window, fmtDuration(s.opt.Quiet), fmtDuration(now.Sub(b.Since)), b.Peak)
				return a
			}
			a.Title = "Burst of initialization errors in " + env
			a.Text = fmt.Sprintf("%d initialization_error callbacks from %s in the last %s: the integrator's app is failing to start Tensfer's flow.", f.InitErrors, env, window)
			return a
		})
	}
	if s.cfg.Disk != nil {
		st := s.cfg.Disk.Status()
		above := st.Level != diskguard.OK || st.Failing()
		check(EventDiskRefusing, "", above, int64(st.Level), func(b burst, status string) Alert {
			a := Alert{URL: s.link("/"), Data: map[string]any{"level": st.Level.String(), "free_bytes": st.Space.Free, "soft_bytes": st.Soft, "hard_bytes": st.Hard}}
			if status == StatusResolved {
				a.Title = "Ingest is storing everything again"
				a.Text = fmt.Sprintf("The disk has had room for %s (%s free); refusals began %s ago.", fmtDuration(s.opt.Quiet), diskguard.FormatBytes(st.Space.Free), fmtDuration(now.Sub(b.Since)))
				return a
			}
			switch {
			case st.Level == diskguard.Critical:
				a.Title = "Ingest is refusing writes: the disk is almost full"
				a.Text = fmt.Sprintf("%s free, below the hard watermark (%s): signed webhooks and API-call reports are answered 503 until space is freed.", diskguard.FormatBytes(st.Space.Free), diskguard.FormatBytes(st.Hard))
			case st.Level == diskguard.Low:
				a.Title = "Ingest is refusing writes: the disk is low"
				a.Text = fmt.Sprintf("%s free, below the soft watermark (%s): callbacks and refused deliveries are not stored until space is freed.", diskguard.FormatBytes(st.Space.Free), diskguard.FormatBytes(st.Soft))
			default:
				a.Title = "Ingest is refusing writes: the database cannot write"
				a.Text = "A write failed for want of storage (" + st.WriteFailure + "); ingest answers 503 until a write succeeds."
				a.Data["write_failure"] = st.WriteFailure
			}
			return a
		})
	}
	return s.record(ctx, found, changes)
}

// reasonList writes counts by reason, largest first: "no_matching_signature 20, timestamp_skew 3".
func reasonList(m map[string]int64) string {
	type rc struct {
		r string
		n int64
	}
	var xs []rc
	for r, n := range m {
		xs = append(xs, rc{r, n})
	}
	slices.SortFunc(xs, func(a, b rc) int { return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.r, b.r)) })
	parts := make([]string, 0, len(xs))
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%s %d", x.r, x.n))
	}
	return strings.Join(parts, ", ")
}

// actorName shortens an audit actor: "user:3 (ana@example.com)" becomes the email.
func actorName(actor string) string {
	if i := strings.Index(actor, " ("); i > 0 && strings.HasSuffix(actor, ")") && strings.HasPrefix(actor, "user:") {
		return actor[i+2 : len(actor)-1]
	}
	return actor
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// fmtDuration writes a duration as people say it: "5m", "1h30m", "45s".
func fmtDuration(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
