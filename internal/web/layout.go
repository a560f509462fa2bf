package web

import (
	"net/http"
	"strings"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/rollout"
	"github.com/tensfer-golive/dashboard/internal/validation"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// navItems is the sidebar in order, with the least role that sees each item.
var navItems = []struct {
	item templates.NavItem
	min  db.Role
}{
	{templates.NavItem{Key: "overview", Label: "Overview", Href: "/", Shortcut: "o"}, db.RoleViewer},
	{templates.NavItem{Key: "environments", Label: "Environments", Href: "/environments", Shortcut: "n"}, db.RoleViewer},
	{templates.NavItem{Key: "go-live", Label: "Go-live", Href: "/go-live", Shortcut: "i"}, db.RoleViewer},
	{templates.NavItem{Key: "events", Label: "Events", Href: "/events", Shortcut: "e"}, db.RoleViewer},
	{templates.NavItem{Key: "lookup", Label: "Lookup", Href: "/lookup", Shortcut: "l"}, db.RoleViewer},
	{templates.NavItem{Key: "rollout", Label: "Rollout", Href: "/rollout", Shortcut: "r"}, db.RoleViewer},
	{templates.NavItem{Key: "audit", Label: "Audit", Href: "/audit", Shortcut: "a"}, db.RoleOperator},
	{templates.NavItem{Key: "settings", Label: "Settings", Href: "/settings", Shortcut: "s"}, db.RoleViewer},
}

// layout builds the frame of a page for the logged-in user: only the nav items their role may
// open, and the flash message left by the previous redirect.
func (s *Server) layout(r *http.Request, u currentUser, active, title string) templates.Layout {
	l := templates.Layout{
		Title:   title,
		Active:  active,
		User:    templates.UserBadge{Name: u.DisplayName(), Email: u.Email, Role: string(u.Role)},
		Demo:    s.cfg.Demo,
		Version: s.cfg.Version,
		Query:   r.URL.Query().Get("q"),
	}
	for _, n := range navItems {
		if u.Role.AtLeast(n.min) {
			l.Nav = append(l.Nav, n.item)
		}
	}
	switch r := s.rollout.Snapshot().Rollout; {
	case r.State == rollout.Killed:
		l.RolloutAlert, l.RolloutAlertHref = "The production rollout is killed: nobody is sent to production.", "/rollout"
	case r.Held != "":
		l.RolloutAlert, l.RolloutAlertHref = "The production rollout is held: "+r.Held, "/rollout#rollout-guardrails"
		for _, g := range r.Guardrails { // the guardrail in question, by the label its hold names
			if strings.Contains(r.Held, rollout.SignalLabel(g.Signal)) {
				l.RolloutAlertHref = "/rollout#guardrail-" + string(g.Signal)
			}
		}
	}
	return l
}

// page is layout plus the flash message, for full page renders after a redirect.
func (s *Server) page(w http.ResponseWriter, r *http.Request, active, title string) templates.Layout {
	u, _ := userFrom(r.Context())
	l := s.layout(r, u, active, title)
	l.FlashKind, l.Flash, l.FlashLink = takeFlash(w, r)
	return l
}

// formFailed says in the flash why a form came back with errors (what, then each error): the
// flash stays in view under the top bar, while the field errors may sit far down a long page.
func formFailed(l *templates.Layout, what string, errs templates.FieldErrors) {
	l.FlashKind, l.Flash, l.FlashLink = "err", what+": "+strings.Join(validation.Errors(errs).Messages(), "; ")+".", ""
}
