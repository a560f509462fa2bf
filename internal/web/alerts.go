package web

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tensfer-golive/dashboard/internal/alerts"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/environment"
	"github.com/tensfer-golive/dashboard/internal/validation"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// The admins' alert channels under Settings → Alerts: list, add, edit, send a test, delete. A
// channel's URL and signing secret never come back after they are saved.

// alertForm is a channel's form with its events and environments as checkboxes.
func alertForm(id, name, kind string, events, envs []string, enabled bool, version int64) templates.AlertChannelForm {
	f := templates.AlertChannelForm{ID: id, Name: name, Kind: kind, Enabled: enabled, Version: version, Errors: templates.FieldErrors{}}
	for _, e := range alerts.Events {
		f.Events = append(f.Events, templates.AlertOption{Value: e.Type, Label: e.Label, Help: e.Help, Checked: slices.Contains(events, e.Type)})
	}
	for _, e := range environment.Names {
		f.Envs = append(f.Envs, templates.AlertOption{Value: e, Label: e, Checked: slices.Contains(envs, e)})
	}
	return f
}

// channelForm is the edit form of a stored channel.
func channelForm(c alerts.Channel) templates.AlertChannelForm {
	f := alertForm(c.ID, c.Name, c.Kind, c.Events, c.Envs, c.Enabled, c.Version)
	f.Host, f.Fingerprint = c.Host, c.Fingerprint
	return f
}

func eventLabel(t string) string {
	for _, e := range alerts.Events {
		if e.Type == t {
			return e.Label
		}
	}
	return t
}

func alertDeliveryRow(d db.AlertDeliveryRow) templates.AlertDeliveryRow {
	return templates.AlertDeliveryRow{ID: d.ID, Channel: d.ChannelName, Type: d.Type, Env: d.Env, Status: d.Status, Title: d.Title, State: d.State,
		Attempts: d.Attempts, MaxAttempts: d.MaxAttempts, NextAt: d.NextAt, CreatedAt: d.CreatedAt, LastAt: d.Last.At,
		HTTPStatus: d.Last.Status, Answer: d.Last.Answer, DurationMS: d.Last.DurationMS, Error: d.Last.Error}
}

func alertDeliveryRows(ds []db.AlertDeliveryRow) []templates.AlertDeliveryRow {
	out := make([]templates.AlertDeliveryRow, 0, len(ds))
	for _, d := range ds {
		out = append(out, alertDeliveryRow(d))
	}
	return out
}

func (s *Server) alertsVM(w http.ResponseWriter, r *http.Request) (templates.AlertsVM, error) {
	me, _ := userFrom(r.Context())
	chs, err := s.alerts.Channels(r.Context())
	if err != nil {
		return templates.AlertsVM{}, err
	}
	ds, err := s.alerts.Deliveries(r.Context(), "", 50)
	if err != nil {
		return templates.AlertsVM{}, err
	}
	vm := templates.AlertsVM{Layout: s.page(w, r, "settings", "Alerts"), Tabs: settingsTabs(me.Role), Deliveries: alertDeliveryRows(ds),
		Form: alertForm("", "", db.AlertKindSlack, nil, []string{"production"}, true, 0)}
	vm.Rules.Bursts, vm.Rules.Retries = s.alerts.Rules()
	vm.Rules.Dropped = s.alerts.Dropped()
	for _, c := range chs {
		row := templates.AlertChannelRow{ID: c.ID, Name: c.Name, Kind: c.Kind, Host: c.Host, Fingerprint: c.Fingerprint, Envs: c.Envs, Enabled: c.Enabled}
		for _, e := range c.Events {
			row.Events = append(row.Events, eventLabel(e))
		}
		if c.Last != nil {
			last := alertDeliveryRow(*c.Last)
			row.Last = &last
		}
		vm.Channels = append(vm.Channels, row)
	}
	return vm, nil
}

// listAlertChannels is the Alerts page.
func (s *Server) listAlertChannels(w http.ResponseWriter, r *http.Request) error {
	vm, err := s.alertsVM(w, r)
	if err != nil {
		return err
	}
	return render(w, r, http.StatusOK, templates.AlertsPage(vm))
}

// alertFormInput reads a channel's form. The URL is read only when one was typed.
func alertFormInput(r *http.Request, edit bool) alerts.Input {
	name := r.PostFormValue("name")
	events, envs := r.PostForm["events"], r.PostForm["environments"]
	in := alerts.Input{Name: &name, Kind: r.PostFormValue("kind"), Events: &events, Envs: &envs}
	if u := r.PostFormValue("url"); u != "" || !edit {
		in.URL = &u
	}
	if edit {
		on := r.PostFormValue("enabled") == "on"
		in.Enabled = &on
		in.RotateSecret = r.PostFormValue("rotate_secret") == "on"
		in.Version, _ = strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	}
	return in
}

// createAlertChannel adds a channel. A webhook channel's signing secret is shown in the answer
// to this POST, the only time it is shown; the answer is not cached.
func (s *Server) createAlertChannel(w http.ResponseWriter, r *http.Request) error {
	in := alertFormInput(r, false)
	ch, secret, err := s.alerts.Create(r.Context(), in, s.auditFor(r, "alert_channel.create"))
	var errs validation.Errors
	if errors.As(err, &errs) {
		vm, err := s.alertsVM(w, r)
		if err != nil {
			return err
		}
		// The input is kept, but for the URL: it holds a token, and goes back to no page.
		vm.Form = alertForm("", *in.Name, in.Kind, *in.Events, *in.Envs, true, 0)
		vm.Form.Errors = templates.FieldErrors(errs)
		formFailed(&vm.Layout, "Channel not added", vm.Form.Errors)
		return render(w, r, http.StatusUnprocessableEntity, templates.AlertsPage(vm))
	}
	if err != nil {
		return err
	}
	if secret == "" {
		setFlash(w, r, "ok", fmt.Sprintf("Added %s. Send a test to check that alerts arrive.", ch.Name))
		return redirect(w, r, "/settings/alerts")
	}
	vm, err := s.alertsVM(w, r)
	if err != nil {
		return err
	}
	vm.NewSecret, vm.NewSecretFor = secret, ch.Name
	return render(w, r, http.StatusCreated, templates.AlertsPage(vm))
}

func (s *Server) alertChannelVM(w http.ResponseWriter, r *http.Request, c alerts.Channel) (templates.AlertChannelVM, error) {
	me, _ := userFrom(r.Context())
	ds, err := s.alerts.Deliveries(r.Context(), c.ID, 50)
	if err != nil {
		return templates.AlertChannelVM{}, err
	}
	return templates.AlertChannelVM{Layout: s.page(w, r, "settings", c.Name+" · Alerts"), Tabs: settingsTabs(me.Role), Form: channelForm(c),
		Deliveries: alertDeliveryRows(ds)}, nil
}

// alertChannel reads the channel named in the path; a missing one is a 404.
func (s *Server) alertChannel(r *http.Request) (alerts.Channel, error) {
	id := chiParam(r, "id")
	c, err := s.alerts.Channel(r.Context(), id)
	if errors.Is(err, db.ErrNotFound) {
		return alerts.Channel{}, errNotFound(fmt.Sprintf("there is no alert channel %q", validation.Clip(id, 64)))
	}
	return c, err
}

// testNamedChannel sends a test alert to the channel named in the path, for the page and the API.
func (s *Server) testNamedChannel(r *http.Request) (alerts.Channel, alerts.TestResult, error) {
	c, err := s.alertChannel(r)
	if err != nil {
		return c, alerts.TestResult{}, err
	}
	res, err := s.alerts.Test(r.Context(), c.ID, s.auditFor(r, "alert_channel.test"))
	return c, res, err
}

// deleteNamedChannel deletes the channel named in the path (gone meanwhile is done too), for the
// page and the API.
func (s *Server) deleteNamedChannel(r *http.Request) (alerts.Channel, error) {
	c, err := s.alertChannel(r)
	if err != nil {
		return c, err
	}
	if err := s.alerts.Delete(r.Context(), c.ID, s.auditFor(r, "alert_channel.delete")); err != nil && !errors.Is(err, db.ErrNotFound) {
		return c, err
	}
	return c, nil
}

// showAlertChannel is one channel's edit page with its deliveries.
func (s *Server) showAlertChannel(w http.ResponseWriter, r *http.Request) error {
	c, err := s.alertChannel(r)
	if err != nil {
		return err
	}
	vm, err := s.alertChannelVM(w, r, c)
	if err != nil {
		return err
	}
	return render(w, r, http.StatusOK, templates.AlertChannelPage(vm))
}

// updateAlertChannel saves the edit form. A new signing secret is shown in the answer, once.
func (s *Server) updateAlertChannel(w http.ResponseWriter, r *http.Request) error {
	c, err := s.alertChannel(r)
	if err != nil {
		return err
	}
	in := alertFormInput(r, true)
	back := "/settings/alerts/" + c.ID
	updated, secret, err := s.alerts.Update(r.Context(), c.ID, in, s.auditFor(r, "alert_channel.update"))
	var errs validation.Errors
	switch {
	case errors.Is(err, alerts.ErrStale):
		setFlash(w, r, "err", "Someone changed this channel while you were editing it; nothing was saved. Check it and save again.")
		return redirect(w, r, back)
	case errors.As(err, &errs):
		vm, err := s.alertChannelVM(w, r, c)
		if err != nil {
			return err
		}
		vm.Form = alertForm(c.ID, *in.Name, c.Kind, *in.Events, *in.Envs, *in.Enabled, c.Version)
		vm.Form.Host, vm.Form.Fingerprint, vm.Form.Errors = c.Host, c.Fingerprint, templates.FieldErrors(errs)
		formFailed(&vm.Layout, "Not saved", vm.Form.Errors)
		return render(w, r, http.StatusUnprocessableEntity, templates.AlertChannelPage(vm))
	case err != nil:
		return err
	}
	if secret == "" {
		setFlash(w, r, "ok", "Saved "+updated.Name+".")
		return redirect(w, r, back)
	}
	vm, err := s.alertChannelVM(w, r, updated)
	if err != nil {
		return err
	}
	vm.NewSecret = secret
	return render(w, r, http.StatusOK, templates.AlertChannelPage(vm))
}

// testAlertChannel sends a test alert now and says what the receiver answered.
func (s *Server) testAlertChannel(w http.ResponseWriter, r *http.Request) error {
	c, res, err := s.testNamedChannel(r)
	if err != nil {
		return err
	}
	back := "/settings/alerts/" + c.ID
	if r.PostFormValue("back") == "list" {
		back = "/settings/alerts"
	}
	if res.Delivered {
		setFlash(w, r, "ok", fmt.Sprintf("Test alert delivered to %s: %d in %d ms.", c.Name, res.Status, res.DurationMS))
	} else {
		setFlash(w, r, "err", "Test alert to "+c.Name+" failed: "+testFailure(res)+".")
	}
	return redirect(w, r, back)
}

// testFailure says what went wrong with a test delivery, with the start of the answer.
func testFailure(res alerts.TestResult) string {
	msg := res.Error
	if res.Answer != "" {
		msg += " (" + strconv.Quote(validation.Clip(strings.TrimSpace(res.Answer), 80)) + ")"
	}
	return msg
}

// deleteAlertChannel removes a channel with its deliveries.
func (s *Server) deleteAlertChannel(w http.ResponseWriter, r *http.Request) error {
	c, err := s.deleteNamedChannel(r)
	if err != nil {
		return err
	}
	setFlash(w, r, "ok", "Deleted "+c.Name+".")
	return redirect(w, r, "/settings/alerts")
}
