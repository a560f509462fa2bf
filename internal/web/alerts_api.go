package web

import (
	"errors"
	"net/http"

	"github.com/tensfer-golive/dashboard/internal/alerts"
	"github.com/tensfer-golive/dashboard/internal/db"
)

// The alert channels over the JSON API (admin scope): /api/v1/alert-channels.

type alertURLJSON struct {
	Host        string `json:"host"`
	Fingerprint string `json:"fingerprint"`
}

type alertDeliveryJSON struct {
	ID          int64             `json:"id"`
	Type        string            `json:"type"`
	Env         string            `json:"env"`
	Status      string            `json:"status"`
	Title       string            `json:"title"`
	State       string            `json:"state"`
	Attempts    int               `json:"attempts"`
	MaxAttempts int               `json:"max_attempts"`
	CreatedAt   string            `json:"created_at"`
	NextAt      *string           `json:"next_at"` // of a pending one
	LastAttempt *alertAttemptJSON `json:"last_attempt"`
}

type alertAttemptJSON struct {
	At         string `json:"at"`
	HTTPStatus int    `json:"http_status"` // 0: no answer
	Answer     string `json:"answer"`
	DurationMS int64  `json:"duration_ms"`
	Error      string `json:"error"`
}

type alertChannelJSON struct {
	ID           string             `json:"id"`
	Name         string             `json:"name"`
	Kind         string             `json:"kind"`
	URL          alertURLJSON       `json:"url"`
	Events       []string           `json:"events"`
	Environments []string           `json:"environments"`
	Enabled      bool               `json:"enabled"`
	Version      int64              `json:"version"`
	CreatedAt    string             `json:"created_at"`
	UpdatedAt    string             `json:"updated_at"`
	LastDelivery *alertDeliveryJSON `json:"last_delivery"`
	// Secret is the signing secret of a webhook channel, only in the answer that made it.
	Secret string `json:"secret,omitempty"`
}

func alertDeliveryOut(d db.AlertDeliveryRow) *alertDeliveryJSON {
	out := &alertDeliveryJSON{ID: d.ID, Type: d.Type, Env: d.Env, Status: d.Status, Title: d.Title, State: d.State, Attempts: d.Attempts,
		MaxAttempts: d.MaxAttempts, CreatedAt: rfc3339(d.CreatedAt)}
	if d.State == db.AlertPending {
		out.NextAt = optTime(d.NextAt)
	}
	if !d.Last.At.IsZero() {
		out.LastAttempt = &alertAttemptJSON{rfc3339(d.Last.At), d.Last.Status, d.Last.Answer, d.Last.DurationMS, d.Last.Error}
	}
	return out
}

func alertChannelOut(c alerts.Channel, secret string) alertChannelJSON {
	out := alertChannelJSON{ID: c.ID, Name: c.Name, Kind: c.Kind, URL: alertURLJSON{c.Host, c.Fingerprint}, Events: nonNilStrings(c.Events),
		Environments: nonNilStrings(c.Envs), Enabled: c.Enabled, Version: c.Version, CreatedAt: rfc3339(c.CreatedAt), UpdatedAt: rfc3339(c.UpdatedAt), Secret: secret}
	if c.Last != nil {
		out.LastDelivery = alertDeliveryOut(*c.Last)
	}
	return out
}

func nonNilStrings(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

// alertChannelInput is a channel as the API takes it; absent fields keep their value on PATCH.
type alertChannelInput struct {
	Name         *string   `json:"name"`
	Kind         string    `json:"kind"`
	URL          *string   `json:"url"`
	Events       *[]string `json:"events"`
	Environments *[]string `json:"environments"`
	Enabled      *bool     `json:"enabled"`
	RotateSecret bool      `json:"rotate_secret"`
	Version      int64     `json:"version"`
}

func (in alertChannelInput) input() alerts.Input {
	return alerts.Input{Name: in.Name, Kind: in.Kind, URL: in.URL, Events: in.Events, Envs: in.Environments, Enabled: in.Enabled,
		RotateSecret: in.RotateSecret, Version: in.Version}
}

// apiListAlertChannels is GET /api/v1/alert-channels.
func (s *Server) apiListAlertChannels(w http.ResponseWriter, r *http.Request) error {
	chs, err := s.alerts.Channels(r.Context())
	if err != nil {
		return err
	}
	out := struct {
		Channels []alertChannelJSON `json:"channels"`
	}{Channels: []alertChannelJSON{}}
	for _, c := range chs {
		out.Channels = append(out.Channels, alertChannelOut(c, ""))
	}
	return writeJSON(w, http.StatusOK, out)
}

// apiShowAlertChannel is GET /api/v1/alert-channels/{id}: the channel and its newest deliveries.
func (s *Server) apiShowAlertChannel(w http.ResponseWriter, r *http.Request) error {
	c, err := s.alertChannel(r)
	if err != nil {
		return err
	}
	ds, err := s.alerts.Deliveries(r.Context(), c.ID, 50)
	if err != nil {
		return err
	}
	out := struct {
		alertChannelJSON
		Deliveries []*alertDeliveryJSON `json:"deliveries"`
	}{alertChannelJSON: alertChannelOut(c, ""), Deliveries: []*alertDeliveryJSON{}}
	for _, d := range ds {
		out.Deliveries = append(out.Deliveries, alertDeliveryOut(d))
	}
	if len(ds) > 0 {
		out.LastDelivery = out.Deliveries[0]
	}
	return writeJSON(w, http.StatusOK, out)
}

// apiCreateAlertChannel is POST /api/v1/alert-channels; a webhook channel's signing secret is in
// this answer only.
func (s *Server) apiCreateAlertChannel(w http.ResponseWriter, r *http.Request) error {
	var in alertChannelInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	c, secret, err := s.alerts.Create(r.Context(), in.input(), s.auditFor(r, "alert_channel.create"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, alertChannelOut(c, secret))
}

// apiUpdateAlertChannel is PATCH /api/v1/alert-channels/{id}; a stale version is 409, and a
// rotated secret is in this answer only.
func (s *Server) apiUpdateAlertChannel(w http.ResponseWriter, r *http.Request) error {
	c, err := s.alertChannel(r)
	if err != nil {
		return err
	}
	var in alertChannelInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if in.Kind != "" && in.Kind != c.Kind {
		return writeFieldErrors(w, r, map[string]string{"kind": "a channel's kind cannot change; add a new channel instead"})
	}
	updated, secret, err := s.alerts.Update(r.Context(), c.ID, in.input(), s.auditFor(r, "alert_channel.update"))
	if errors.Is(err, alerts.ErrStale) {
		return &httpError{status: http.StatusConflict, code: "version_conflict", msg: "the channel changed since the version you sent; GET it again and retry"}
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, alertChannelOut(updated, secret))
}

// apiDeleteAlertChannel is DELETE /api/v1/alert-channels/{id}.
func (s *Server) apiDeleteAlertChannel(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.deleteNamedChannel(r); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// apiTestAlertChannel is POST /api/v1/alert-channels/{id}/test: one test alert now, and the
// receiver's answer.
func (s *Server) apiTestAlertChannel(w http.ResponseWriter, r *http.Request) error {
	_, res, err := s.testNamedChannel(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"delivered": res.Delivered, "http_status": res.Status, "answer": res.Answer,
		"duration_ms": res.DurationMS, "error": res.Error})
}
