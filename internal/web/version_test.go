package web

import (
	"strings"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/db"
)

// TestSidebarAndHealthzShowTheVersion: the version main passes in is shown as it is, in the
// sidebar of every page and in /healthz.
func TestSidebarAndHealthzShowTheVersion(t *testing.T) {
	for _, v := range []string{"v1.4.2", "dev-0123456789ab+dirty"} {
		t.Run(v, func(t *testing.T) {
			app := newTestApp(t, func(c *Config) { c.Version = v })
			c, _ := app.login(db.RoleViewer)
			res := c.get("/")
			if got := strings.TrimSpace(res.doc(t).Find(`[data-testid="version"]`).Text()); got != v {
				t.Errorf("sidebar shows %q, want %q", got, v)
			}
			if res := app.api("GET", "/healthz", "", nil); !strings.Contains(res.body, `"version":"`+v+`"`) {
				t.Errorf("/healthz: %s", res.body)
			}
		})
	}
}
