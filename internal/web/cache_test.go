package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/db"
)

func TestSignedInPagesAreNeverCached(t *testing.T) {
	app := newTestApp(t)
	c, _ := app.login(db.RoleAdmin)
	for _, path := range []string{"/", "/environments", "/go-live", "/events", "/lookup?q=x", "/rollout", "/audit", "/settings/account", "/settings/users", "/settings/tokens", "/nope"} {
		if res := c.get(path); res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", path, res.Header.Get("Cache-Control"))
		}
	}
}

func TestFlashCookieIsSecureUnderHTTPS(t *testing.T) {
	for _, secure := range []bool{false, true} {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r = r.WithContext(context.WithValue(r.Context(), ctxRequest, &requestInfo{secure: secure}))
		w := httptest.NewRecorder()
		setFlash(w, r, "ok", "saved")
		cookies := w.Result().Cookies()
		if len(cookies) != 1 || cookies[0].Secure != secure || !cookies[0].HttpOnly {
			t.Errorf("secure %v: %+v", secure, cookies)
		}
	}
}
