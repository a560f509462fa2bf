package environment

import (
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
)

// prodState builds a production environment as the checklist sees it.
func prodState(base, callback string, kinds []string, verified bool, secretActive bool, now time.Time) State {
	st := State{Env: db.Environment{Name: "production", BaseURL: base, CallbackURL: callback}}
	for i, k := range kinds {
		st.Keys = append(st.Keys, db.EnvKey{ID: int64(i + 1), Env: "production", Kind: k, Last4: "1234"})
	}
	if verified {
		st.Env.VerifyOutcome, st.Env.VerifyBasis = "ok", st.Basis()
	}
	if secretActive {
		st.Secrets = append(st.Secrets, db.WebhookSecret{ID: "whs_1", Env: "production", CreatedAt: now.Add(-time.Hour)})
	}
	return st
}

func TestChecklistIsComputedFromState(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	sandbox := State{Env: db.Environment{Name: "sandbox", BaseURL: "https://sandbox.tensfer.example", CallbackURL: "https://app.example.com/sb"}}
	all := db.KeyKinds
	tests := []struct {
		name       string
		prod       State
		sig        Signals
		wantState  map[string]string // step key -> state
		wantDetail map[string]string // step key -> part of its detail
	}{
		{name: "fresh install", prod: prodState("", "", nil, false, false, now),
			wantState:  map[string]string{"production_keys": CheckTodo, "callback_url": CheckTodo, "webhook": CheckTodo, "base_url": CheckTodo, "rollout": CheckTodo},
			wantDetail: map[string]string{"production_keys": "client token, public API key and secret API key", "webhook": "Register https://dash.example/hooks/production"}},
		{name: "sandbox values copied into production",
			prod:       prodState("https://sandbox.tensfer.example", "https://app.example.com/sb", all, false, true, now),
			wantState:  map[string]string{"production_keys": CheckTodo, "callback_url": CheckTodo, "base_url": CheckTodo, "webhook": CheckTodo},
			wantDetail: map[string]string{"callback_url": "still the sandbox one", "base_url": "equals the sandbox one", "webhook": "No verified production webhook"}},
		{name: "verification went stale after a key roll",
			prod: func() State {
				st := prodState("https://api.tensfer.example", "https://app.example.com/prod", all, true, true, now)
				st.Keys[0].ID = 99 // a new row: the verification no longer covers it
				return st
			}(),
			sig:       Signals{ProdWebhookVerified: true},
			wantState: map[string]string{"production_keys": CheckTodo, "base_url": CheckTodo, "callback_url": CheckDone, "webhook": CheckDone}},
		{name: "last verification failed: blocked, not just to do",
			prod: func() State {
				st := prodState("https://api.tensfer.example", "https://app.example.com/prod", all, false, true, now)
				st.Env.VerifyOutcome, st.Env.VerifyDetail = "unauthorized", "the secret key was refused"
				return st
			}(),
			wantState:  map[string]string{"production_keys": CheckBlocked, "base_url": CheckTodo},
			wantDetail: map[string]string{"production_keys": "Last verification failed: the secret key was refused"}},
		{name: "everything done", prod: prodState("https://api.tensfer.example", "https://app.example.com/prod", all, true, true, now),
			sig:       Signals{ProdWebhookVerified: true, ErrorRequestIDsLogged: 2, ProdAPICalls: 140},
			wantState: map[string]string{"production_keys": CheckDone, "callback_url": CheckDone, "webhook": CheckDone, "base_url": CheckDone}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps, practices := Checklist(ChecklistInput{Sandbox: sandbox, Production: tt.prod, Signals: tt.sig,
				ProdWebhookURL: "https://dash.example/hooks/production", Now: now})
			byKey := map[string]CheckItem{}
			for _, c := range append(steps, practices...) {
				byKey[c.Key] = c
			}
			for k, want := range tt.wantState {
				if byKey[k].State != want {
					t.Errorf("%s: state %q, want %q (%s)", k, byKey[k].State, want, byKey[k].Detail)
				}
				if want == CheckDone && byKey[k].Detail != "" && k != "free_calls" && k != "request_ids" {
					t.Errorf("%s: done but says %q", k, byKey[k].Detail)
				}
			}
			for k, want := range tt.wantDetail {
				if !strings.Contains(byKey[k].Detail, want) {
					t.Errorf("%s: detail %q, want it to contain %q", k, byKey[k].Detail, want)
				}
			}
		})
	}
}

func TestChecklistPracticesAndProgress(t *testing.T) {
	now := time.Now()
	in := ChecklistInput{Production: prodState("", "", nil, false, false, now), Now: now}
	in.Signals = Signals{ErrorRequestIDsLogged: 3, ProdAPICalls: 250}
	steps, practices := Checklist(in)
	if done, total := Progress(steps); done != 0 || total != 5 {
		t.Errorf("progress %d/%d, want 0/5", done, total)
	}
	in.Rollout = RolloutFacts{Stage: 2, Percent: 5, Users: 40}
	if steps, _ = Checklist(in); steps[4].State != CheckDone || !strings.Contains(steps[4].Detail, "Stage 2: 5 %") {
		t.Errorf("started rollout: %+v", steps[4])
	}
	in.Rollout.Killed = true
	if steps, _ = Checklist(in); steps[4].State != CheckBlocked || !strings.Contains(steps[4].Detail, "killed") {
		t.Errorf("killed rollout: %+v", steps[4])
	}
	want := map[string]string{"signing_secret": CheckTodo, "request_ids": CheckDone, "free_calls": CheckInfo}
	for _, c := range practices {
		if c.State != want[c.Key] {
			t.Errorf("%s: %q, want %q", c.Key, c.State, want[c.Key])
		}
		if c.Key == "free_calls" && !strings.Contains(c.Detail, "All 100 free production calls used (250 recorded)") {
			t.Errorf("free calls detail %q", c.Detail)
		}
	}
	// The practices' progress leaves the meter out: 1 of 2, not 2 of 3.
	if done, total := Progress(practices); done != 1 || total != 2 {
		t.Errorf("practices progress %d/%d, want 1/2 (the free-calls meter is not a step)", done, total)
	}
}

// TestFreeCallsMeterIsNeverDone: the free-calls item is a meter, whatever its reading.
func TestFreeCallsMeterIsNeverDone(t *testing.T) {
	for _, tt := range []struct{ calls, used int }{{0, 0}, {1, 1}, {99, 99}, {100, 100}, {250, 100}} {
		_, practices := Checklist(ChecklistInput{Signals: Signals{ProdAPICalls: tt.calls}, Now: time.Now()})
		c := practices[len(practices)-1]
		if c.Key != "free_calls" || c.State != CheckInfo || c.Used != tt.used || c.Max != FreeProductionCalls {
			t.Errorf("%d calls: %+v, want info %d of %d", tt.calls, c, tt.used, FreeProductionCalls)
		}
	}
}

func TestJoinAnd(t *testing.T) {
	for in, want := range map[string]string{"": "", "a": "a", "a|b": "a and b", "a|b|c": "a, b and c"} {
		var xs []string
		if in != "" {
			xs = strings.Split(in, "|")
		}
		if got := JoinAnd(xs); got != want {
			t.Errorf("JoinAnd(%q) = %q, want %q", in, got, want)
		}
	}
}
