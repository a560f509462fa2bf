// Package templates holds the templ components: one file per page or area (each with its view
// models), the page frames in layout.templ and the shared components in components.templ.
// Components are pure: typed view models in, HTML out.
package templates

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tensfer-golive/dashboard/web/static"
)

// Layout is what every logged-in page needs for its frame.
type Layout struct {
	Title     string
	Active    string // nav key of the current page
	Nav       []NavItem
	User      UserBadge
	Demo      bool
	Version   string
	FlashKind string // ok | err | info
	Flash     string
	FlashLink string // a path shown as "Look it up" after the flash, or ""
	Query     string // the lookup box's current value
	// FocusSearch puts the keyboard in the lookup box on load (the empty Lookup page).
	FocusSearch bool
	// RolloutAlert is a banner on every page while the rollout is killed or held by a guardrail.
	RolloutAlert string
	// RolloutAlertHref is where the banner leads: the breached guardrail's row when it is held.
	RolloutAlertHref string
}

// NavItem is one sidebar link.
type NavItem struct {
	Key   string
	Label string
	Href  string
	// Shortcut is the letter that, after "g", opens the page; the shortcuts dialog lists it and
	// app.js reads it from there.
	Shortcut string
}

// UserBadge is the logged-in user as the top bar shows them.
type UserBadge struct {
	Name  string
	Email string
	Role  string
}

// FieldErrors maps a form field name to the message shown under it.
type FieldErrors map[string]string

// Has reports whether the field has an error.
func (f FieldErrors) Has(name string) bool { return f[name] != "" }

// Timestamp formats t as an absolute UTC time; JS turns it into "5m ago" with the absolute time
// as its title.
func Timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func isoTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func itoa(n int) string { return strconv.Itoa(n) }

func i64(n int64) string { return strconv.FormatInt(n, 10) }

// ActorName shortens an audit actor for display: "user:3 (ana@example.com)" becomes the email.
func ActorName(actor string) string {
	if i := strings.Index(actor, " ("); i > 0 && strings.HasSuffix(actor, ")") && strings.HasPrefix(actor, "user:") {
		return actor[i+2 : len(actor)-1]
	}
	return actor
}

func urlQuery(s string) string { return url.QueryEscape(s) }

func staticURL(name string) string { return static.URL(name) }

// either is a if cond holds, else b.
func either(cond bool, a, b string) string {
	if cond {
		return a
	}
	return b
}

// plural says "1 event" or "3 events".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return itoa(n) + " " + many
}
