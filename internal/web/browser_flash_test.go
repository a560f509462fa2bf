package web

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
)

// TestBrowserFailedActionIsVisible submits forms that fail with a flash (a wrong password on
// Reveal, on a role change, on an admin password reset) at desktop and phone sizes, and checks
// that the error lands inside the viewport after the redirect, announced as an alert.
func TestBrowserFailedActionIsVisible(t *testing.T) {
	app := newTestApp(t)
	admin := app.addToken("admin", auth.ScopeAdmin)
	for _, env := range []string{"sandbox", "production"} {
		if res := app.patchEnv(admin, env, map[string]any{"secret_key": "sk_" + env + "_REVEALME1234", "public_key": "pk_" + env + "_1234567890"}); res.StatusCode != 200 {
			t.Fatalf("seed %s: %d %s", env, res.StatusCode, res.body)
		}
	}
	// Enough users that the last row is well below the fold.
	var last db.User
	for i := range 25 {
		last = app.addUser(fmt.Sprintf("user%02d@example.com", i), "viewer")
	}
	keys, _ := app.db.ListEnvKeys(context.Background(), "production")
	u := app.addUser("ada@example.com", "admin")
	ctx := newBrowser(t)
	mustDo(t, ctx, "log in",
		chromedp.Navigate(app.url+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-form"]`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), u.Email),
		chromedp.SendKeys(chromedp.CSS(`#password`), testPassword),
		chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav"]`)),
	)
	forms := []struct {
		name, page, action string
		fields             map[string]string
		want               string
	}{
		{"reveal", "/environments", "/environments/production/keys/" + itoa(keys[0].ID) + "/reveal",
			map[string]string{"password": "not my password", "reason": "checking"}, "Not revealed"},
		{"role", "/settings/users", "/settings/users/" + itoa(last.ID) + "/role",
			map[string]string{"password": "not my password"}, "Role not changed"},
		{"reset password", "/settings/users", "/settings/users/" + itoa(last.ID) + "/password",
			map[string]string{"password": "not my password", "new_password": "another long password", "confirm_password": "another long password"}, "Password not changed"},
	}
	sizes := []struct{ w, h int64 }{{1440, 900}, {390, 844}}
	for _, sz := range sizes {
		mustDo(t, ctx, "resize", chromedp.EmulateViewport(sz.w, sz.h))
		for _, f := range forms {
			what := fmt.Sprintf("%s at %dx%d", f.name, sz.w, sz.h)
			fields, _ := json.Marshal(f.fields)
			// Fill the page's own form and submit it as a person would (the form may sit in a
			// closed <details>; requestSubmit runs the browser's own validation).
			submit := fmt.Sprintf(`(() => {
				const form = document.querySelector('form[action=%q]');
				if (!form) return false;
				const d = form.closest('details'); if (d) d.open = true;
				for (const [k, v] of Object.entries(%s)) form.elements[k].value = v;
				form.requestSubmit();
				return true;
			})()`, f.action, fields)
			mustDo(t, ctx, "open "+what,
				chromedp.Navigate(app.url+f.page),
				chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav"]`)),
				chromedp.SetAttributeValue(chromedp.CSS("body"), "data-old-page", "1"),
			)
			found, err := chromedp.Run(ctx, chromedp.Evaluate[bool](submit))
			if err != nil || !found {
				t.Fatalf("%s: form %s not found (%v)", what, f.action, err)
			}
			mustDo(t, ctx, "submit "+what,
				chromedp.WaitReady(chromedp.CSS("body:not([data-old-page])")),
				chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"]`)),
			)
			if got := mustText(t, ctx, `[data-testid="flash"]`); !strings.Contains(got, f.want) {
				t.Fatalf("%s: flash %q, want %q", what, got, f.want)
			}
			box, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`(() => {
				const r = document.querySelector('[data-testid="flash"]').getBoundingClientRect();
				return [r.top, r.bottom, window.innerHeight, window.scrollY];
			})()`))
			if err != nil {
				t.Fatal(err)
			}
			if box[0] < 0 || box[1] > box[2] {
				screenshot(t, ctx, "flash-hidden-"+strings.ReplaceAll(what, " ", "-"))
				t.Errorf("%s: flash at %v..%v is outside the viewport of height %v (scrolled %v)", what, box[0], box[1], box[2], box[3])
			}
			if role := mustAttr(t, ctx, `[data-testid="flash"]`, "role"); role != "alert" {
				t.Errorf("%s: flash role %q, want alert", what, role)
			}
		}
	}
}

func mustAttr(t *testing.T, ctx context.Context, sel, name string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).getAttribute(%q) || ""`, sel, name)))
	if err != nil {
		t.Fatalf("attribute %s of %s: %v", name, sel, err)
	}
	return v
}
