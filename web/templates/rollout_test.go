package templates

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
)

// renderRollout renders the Rollout page for vm as a document to query.
func renderRollout(t *testing.T, vm RolloutVM) *goquery.Document {
	t.Helper()
	var b bytes.Buffer
	if err := RolloutPage(vm).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	doc, err := goquery.NewDocumentFromReader(&b)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestRolloutPageReadsWell holds the Rollout page to what an operator reads at a glance: counts
// with thousands separators, the hold's reason as a sentence, and while a breach asks for
// confirmation, one way on (the override or Cancel) instead of a second plain button that only
// asks again.
func TestRolloutPageReadsWell(t *testing.T) {
	g := GuardrailVM{Signal: "api_errors", Label: "API 5xx and timeouts", Bad: 1234, Total: 56789, Rate: "2.2 %", Limit: "2.0 %",
		MinVolume: 10000, Window: "15m", Status: "breached", Events: "/events?source=api"}
	base := RolloutVM{State: "active", Stage: 1, Percent: "1 %", Reach: 12345, CanOperate: true, CanAdmin: true,
		Stages:     []StageVM{{N: 1, Percent: "1 %", Status: "current", Reach: 12345}, {N: 2, Percent: "5 %", Status: "next", Reach: 1}},
		Guardrails: []GuardrailVM{g}, Preview: &PreviewVM{Users: 4500, Now: 1200, Next: 2300, NextPercent: "5 %"}}
	held := base
	held.State, held.Held = "paused", "guardrail breached: API 5xx and timeouts: 1234 of 56789 (2.2 %) over 15m is above the 2.0 % limit"
	confirmAdvance := base
	confirmAdvance.Breach = &BreachVM{Action: "advance", Label: "Advance", Breaches: []GuardrailVM{g}}
	confirmResume := held
	confirmResume.Breach = &BreachVM{Action: "resume", Label: "Resume", Breaches: []GuardrailVM{g}}

	tests := []struct {
		name    string
		vm      RolloutVM
		sel     string
		want    string // text the selection contains ("" with count 0: absent)
		count   int
		without string // text the selection must not contain
	}{
		{"reach tile", base, `[data-testid="rollout-reach"]`, "12,345", 1, ""},
		{"stage reach", base, `[data-testid="stage-1"]`, "12,345 users", 1, ""},
		{"one user", base, `[data-testid="stage-2"]`, "1 user", 1, "1 users"},
		{"guardrail figures", base, `[data-testid="guardrail-api_errors"]`, "1,234 of 56,789", 1, ""},
		{"guardrail volume", base, `[data-testid="guardrail-api_errors"]`, "judged from 10,000", 1, ""},
		{"preview", base, `[data-testid="rollout-preview"]`, "Of the 4,500 users seen recently, 1,200 go to production now", 1, ""},
		{"held reason", held, `[data-testid="rollout-held"]`, "Held by a guardrail. API 5xx and timeouts: 1234 of 56789", 1, "guardrail breached"},
		{"held says what to do", held, `[data-testid="rollout-held"]`, "Resume or roll back", 1, ""},
		{"breach figures", confirmAdvance, `[data-testid="breach-api_errors"]`, "1,234 of 56,789 (2.2 %)", 1, ""},
		{"advance: override offered", confirmAdvance, `[data-testid="override-confirm"]`, "Advance anyway", 1, ""},
		{"advance: cancel offered", confirmAdvance, `[data-testid="breach-confirm"] a.btn[href="/rollout"]`, "Cancel", 1, ""},
		{"advance: no second plain advance", confirmAdvance, `[data-testid="action-advance"]`, "", 0, ""},
		{"advance: pause still there", confirmAdvance, `[data-testid="action-pause"]`, "Pause", 1, ""},
		{"resume: no second plain resume", confirmResume, `[data-testid="action-resume"]`, "", 0, ""},
		{"resume: roll back still there", confirmResume, `[data-testid="action-rollback"]`, "Roll back", 1, ""},
		{"no confirmation: plain advance", base, `[data-testid="action-advance"]`, "Advance", 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel := renderRollout(t, tt.vm).Find(tt.sel)
			if sel.Length() != tt.count {
				t.Fatalf("%s: %d elements, want %d", tt.sel, sel.Length(), tt.count)
			}
			got := strings.Join(strings.Fields(sel.Text()), " ")
			if !strings.Contains(got, tt.want) {
				t.Errorf("%s says %q, want it to contain %q", tt.sel, got, tt.want)
			}
			if tt.without != "" && strings.Contains(got, tt.without) {
				t.Errorf("%s says %q, which should not contain %q", tt.sel, got, tt.without)
			}
		})
	}
}
