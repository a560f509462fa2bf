package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/launch"
	"github.com/tensfer-golive/dashboard/internal/rollout"
)

// TestRolloutPageForms drives the page's forms through the real router: each refusal says why and
// changes nothing; each accepted change is what the next decision sees.
func TestRolloutPageForms(t *testing.T) {
	app := newTestApp(t)
	ctx := context.Background()
	admin, _ := app.login(db.RoleAdmin)
	operator, _ := app.login(db.RoleOperator)
	c, _, err := app.srv.rollout.CreateCohort(ctx, launch.CohortInput{Name: "nordics", Env: "production",
		Rules: []rollout.Rule{{Attribute: "country", Op: rollout.OpIn, Values: []string{"SE", "NO"}}}}, 0, db.Audit{Actor: "test", Action: "cohort.create"})
	if err != nil {
		t.Fatal(err)
	}
	edit := "/rollout/cohorts/" + itoa(c.ID) + "/edit"
	version := func() string { return itoa(app.srv.rollout.Snapshot().Version()) }
	decide := func(country string) rollout.Decision {
		return app.srv.rollout.Check(rollout.User{ID: "u1", Attributes: map[string]string{"country": country}})
	}

	tests := []struct {
		name   string
		as     *client
		path   string
		form   url.Values
		status int
		says   string // in the flash or the page
	}{
		{"edit with a wrong password", admin, edit, url.Values{"name": {"nordics"}, "environment": {"production"}, "rules": {"country in DK"}, "password": {"nope"}}, http.StatusUnprocessableEntity, "password was incorrect"},
		{"edit with an unknown operator", admin, edit, url.Values{"name": {"nordics"}, "environment": {"production"}, "rules": {"country like DK"}, "password": {testPassword}}, http.StatusUnprocessableEntity, "unknown operator"},
		{"edit with a bad line", admin, edit, url.Values{"name": {"nordics"}, "environment": {"production"}, "rules": {"country in"}, "password": {testPassword}}, http.StatusUnprocessableEntity, "line 1"},
		{"kill without typing kill", operator, "/rollout/actions/kill", url.Values{"confirm": {"yes"}}, http.StatusUnprocessableEntity, "type kill to confirm"},
		{"revive as an operator", operator, "/rollout/actions/revive", url.Values{"stage": {"1"}}, http.StatusForbidden, "admin role"},
		{"advance against an old version", operator, "/rollout/actions/advance", url.Values{"version": {"1"}}, http.StatusSeeOther, "changed while you were looking"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := version()
			res := tt.as.postForm(tt.path, tt.form)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %.300s", res.StatusCode, tt.status, res.body)
			}
			page := res.body
			if res.StatusCode == http.StatusSeeOther {
				page = tt.as.get("/rollout").body
			}
			if !strings.Contains(page, tt.says) {
				t.Fatalf("the answer does not say %q", tt.says)
			}
			if version() != before {
				t.Fatal("a refused form changed the rollout")
			}
		})
	}
	if d := decide("DK"); d.Cohort == "nordics" {
		t.Fatal("a refused edit reached decisions")
	}
	res := admin.postForm(edit, url.Values{"name": {"nordics-and-dk"}, "environment": {"sandbox"}, "rules": {"country in SE,NO,DK"}, "match": {"all"}, "password": {testPassword}, "version": {version()}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit: %d", res.StatusCode)
	}
	if d := decide("DK"); d.Cohort != "nordics-and-dk" || d.Env != rollout.Sandbox {
		t.Fatalf("after the edit: %+v", d)
	}
	res = operator.postForm("/rollout/actions/kill", url.Values{"confirm": {"kill"}, "version": {version()}})
	if res.StatusCode != http.StatusSeeOther || app.srv.rollout.Snapshot().Rollout.State != rollout.Killed {
		t.Fatalf("an operator could not kill: %d", res.StatusCode)
	}
	if !strings.Contains(operator.get("/rollout").body, "nobody is sent to production") {
		t.Fatal("the kill is not confirmed on the page")
	}
}

// TestCheckFormReadsAttributeNamesAsTheAPIDoes: the "check a user" form takes attribute names in
// the canonical form decisions use (trimmed, NFC), so a name typed in NFD finds the rule the API
// finds; a name that is not UTF-8 is refused rather than decided as unknown.
func TestCheckFormReadsAttributeNamesAsTheAPIDoes(t *testing.T) {
	attrs, err := parseAttrLines(" cafe\u0301 = yes \ncountry=SE")
	if err != nil || attrs["caf\u00e9"] != "yes" || attrs["country"] != "SE" || len(attrs) != 2 {
		t.Fatalf("attributes %q, %v", attrs, err)
	}
	for _, bad := range []string{"=x", "no equals sign", "\xff=x"} {
		if _, err := parseAttrLines(bad); err == nil {
			t.Errorf("%q was read", bad)
		}
	}
}
