package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/go-chi/chi/v5"

	"github.com/tensfer-golive/dashboard/internal/environment"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// render writes a templ component as the answer with status. Pages are never cached: most show
// something only a signed-in user may see.
func render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return c.Render(r.Context(), w)
}

// safeNext returns next if it is a path on this site, else "/". It is what keeps the login
// redirect from being an open redirect.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}

// flashCookie carries a one-line message across the redirect after a change.
const flashCookie = "tfd_flash"

func setFlash(w http.ResponseWriter, r *http.Request, kind, msg string) {
	setFlashLink(w, r, kind, msg, "")
}

// setFlashLink is setFlash with a link (a path on this site) after the message.
func setFlashLink(w http.ResponseWriter, r *http.Request, kind, msg, link string) {
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: url.QueryEscape(kind + "|" + link + "|" + msg), Path: "/", MaxAge: 60, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: infoFrom(r.Context()).secure})
}

// takeFlash reads and clears the flash: its kind, message and link ("" without one).
func takeFlash(w http.ResponseWriter, r *http.Request) (kind, msg, link string) {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return "", "", ""
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: infoFrom(r.Context()).secure})
	v, err := url.QueryUnescape(c.Value)
	if err != nil {
		return "", "", ""
	}
	kind, rest, _ := strings.Cut(v, "|")
	link, msg, _ = strings.Cut(rest, "|")
	if kind != "ok" && kind != "err" && kind != "info" {
		return "", "", ""
	}
	if link != "" {
		link = safeNext(link)
	}
	return kind, validation.Clip(msg, 300), link
}

// redirect ends a successful change (303 See Other, so a reload does not repeat the POST).
func redirect(w http.ResponseWriter, r *http.Request, to string) error {
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(chi.URLParam(r, name), 10, 64)
	if err != nil || id <= 0 {
		return 0, errNotFound("no such id " + strconv.Quote(chi.URLParam(r, name)))
	}
	return id, nil
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func chiParam(r *http.Request, name string) string { return chi.URLParam(r, name) }

// flashProblem handles the outcome of a domain call in an action that answers with a redirect:
// a validation.Problem becomes an error flash and a redirect to back (done, nil); another error
// is returned (done, err); no error means carry on (false, nil).
func flashProblem(w http.ResponseWriter, r *http.Request, err error, back string) (bool, error) {
	var problem validation.Problem
	switch {
	case err == nil:
		return false, nil
	case errors.As(err, &problem):
		setFlash(w, r, "err", string(problem))
		return true, redirect(w, r, back)
	}
	return true, err
}

// envNamed checks an environment name from a URL; hint says where to go instead.
func envNamed(name, hint string) (string, error) {
	if environment.Valid(name) {
		return name, nil
	}
	return "", errNotFound(fmt.Sprintf("there is no environment %q; %s", validation.Clip(name, 64), hint))
}

// envParam reads and validates the {env} path parameter.
func envParam(r *http.Request) (string, error) {
	return envNamed(chi.URLParam(r, "env"), "use sandbox or production")
}
