package alerts

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/environment"
	"github.com/tensfer-golive/dashboard/internal/secrets"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// MaxNameLen bounds a channel's name.
const MaxNameLen = 80

// ErrStale is an update made against a version of the channel that is no longer current.
var ErrStale = errors.New("alerts: the channel changed since this version; reload and try again")

// Channel is a channel as people see it: its URL only as host and fingerprint.
type Channel struct {
	ID          string
	Name        string
	Kind        string // db.AlertKindSlack or db.AlertKindWebhook
	Host        string
	Fingerprint string // keyed by the master key: tells two URLs apart without showing them
	Events      []string
	Envs        []string
	Enabled     bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Version     int64
	Last        *db.AlertDeliveryRow // the newest delivery, nil when none
}

func channelOf(c db.AlertChannel) Channel {
	return Channel{ID: c.ID, Name: c.Name, Kind: c.Kind, Host: c.URLHost, Fingerprint: c.URLFingerprint, Events: c.Events, Envs: c.Envs,
		Enabled: c.Enabled, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, Version: c.Version}
}

// Input is a channel as a person gives it. On an update nil fields (and an empty URL) keep their
// value; Kind is only read on create.
type Input struct {
	Name    *string
	Kind    string
	URL     *string
	Events  *[]string
	Envs    *[]string
	Enabled *bool
	// RotateSecret makes a new signing secret for a webhook channel (the old one stops at once).
	RotateSecret bool
	// Version is the version the change was made against (0: whatever is current).
	Version int64
}

// Channels lists every channel by name, each with its newest delivery.
func (s *Service) Channels(ctx context.Context) ([]Channel, error) {
	rows, err := s.db.ListAlertChannels(ctx)
	if err != nil {
		return nil, err
	}
	last, err := s.db.LastAlertDeliveries(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Channel, 0, len(rows))
	for _, r := range rows {
		c := channelOf(r)
		if l, ok := last[r.ID]; ok {
			c.Last = &l
		}
		out = append(out, c)
	}
	return out, nil
}

// Channel reads one channel; a missing one is db.ErrNotFound.
func (s *Service) Channel(ctx context.Context, id string) (Channel, error) {
	r, err := s.db.AlertChannelByID(ctx, id)
	if err != nil {
		return Channel{}, err
	}
	return channelOf(r), nil
}

// Deliveries lists the newest deliveries, of one channel unless channelID is "".
func (s *Service) Deliveries(ctx context.Context, channelID string, limit int) ([]db.AlertDeliveryRow, error) {
	return s.db.ListAlertDeliveries(ctx, channelID, limit)
}

// Create validates and stores a new channel, sealing its URL, and for a webhook channel makes its
// signing secret, returned here only (the one time it is shown). Bad input is validation.Errors
// naming the field; nothing is stored. The audit row names the URL's host and fingerprint only.
func (s *Service) Create(ctx context.Context, in Input, a db.Audit) (Channel, string, error) {
	errs := validation.Errors{}
	if in.Kind != db.AlertKindSlack && in.Kind != db.AlertKindWebhook {
		errs.Add("kind", "kind must be slack (a Slack-compatible incoming webhook) or webhook (JSON signed with Standard Webhooks)")
	}
	if in.URL == nil || strings.TrimSpace(*in.URL) == "" {
		errs.Add("url", "paste the URL alerts are sent to")
	}
	for _, f := range []struct {
		name string
		set  bool
	}{{"name", in.Name != nil}, {"events", in.Events != nil}, {"environments", in.Envs != nil}} {
		if !f.set {
			errs.Add(f.name, f.name+" is required")
		}
	}
	ch := db.AlertChannel{ID: "ach_" + auth.RandomID(9), Kind: in.Kind, Enabled: true}
	if in.Enabled != nil {
		ch.Enabled = *in.Enabled
	}
	if err := s.apply(&ch, in, errs); err != nil {
		return Channel{}, "", err
	}
	if err := errs.Err(); err != nil {
		return Channel{}, "", err
	}
	secret, err := s.newSecret(&ch)
	if err != nil {
		return Channel{}, "", err
	}
	a.Action, a.Target, a.After = "alert_channel.create", "alert_channel:"+ch.ID, auditView(ch)
	stored, err := s.db.InsertAlertChannel(ctx, ch, a)
	if errors.Is(err, db.ErrConflict) {
		return Channel{}, "", validation.Errors{"name": "a channel named " + quote(ch.Name) + " exists; choose another name"}
	}
	if err != nil {
		return Channel{}, "", err
	}
	return channelOf(stored), secret, nil
}

// Update changes a channel. A new secret (RotateSecret on a webhook channel) is returned here
// only. A missing channel is db.ErrNotFound; a stale Version is ErrStale; bad input is
// validation.Errors and nothing is stored.
func (s *Service) Update(ctx context.Context, id string, in Input, a db.Audit) (Channel, string, error) {
	ch, err := s.db.AlertChannelByID(ctx, id)
	if err != nil {
		return Channel{}, "", err
	}
	if in.Version != 0 && in.Version != ch.Version {
		return Channel{}, "", ErrStale
	}
	if in.RotateSecret && ch.Kind != db.AlertKindWebhook {
		return Channel{}, "", validation.Errors{"rotate_secret": "only a webhook channel has a signing secret"}
	}
	before := auditView(ch)
	if in.URL != nil && strings.TrimSpace(*in.URL) == "" {
		in.URL = nil // keep the stored one
	}
	if in.Enabled != nil {
		ch.Enabled = *in.Enabled
	}
	errs := validation.Errors{}
	if err := s.apply(&ch, in, errs); err != nil {
		return Channel{}, "", err
	}
	if err := errs.Err(); err != nil {
		return Channel{}, "", err
	}
	var secret string
	if in.RotateSecret {
		if secret, err = s.newSecret(&ch); err != nil {
			return Channel{}, "", err
		}
	}
	after := auditView(ch)
	if in.RotateSecret {
		after["secret_rotated"] = true
	}
	a.Action, a.Target, a.Before, a.After = "alert_channel.update", "alert_channel:"+ch.ID, before, after
	stored, err := s.db.UpdateAlertChannel(ctx, ch, a)
	switch {
	case errors.Is(err, db.ErrStaleAlertChannel):
		return Channel{}, "", ErrStale
	case errors.Is(err, db.ErrConflict):
		return Channel{}, "", validation.Errors{"name": "a channel named " + quote(ch.Name) + " exists; choose another name"}
	case err != nil:
		return Channel{}, "", err
	}
	return channelOf(stored), secret, nil
}

// Delete removes a channel and its deliveries (pending ones are not sent). A missing channel is
// db.ErrNotFound.
func (s *Service) Delete(ctx context.Context, id string, a db.Audit) error {
	ch, err := s.db.AlertChannelByID(ctx, id)
	if err != nil {
		return err
	}
	a.Action, a.Target, a.Before = "alert_channel.delete", "alert_channel:"+id, auditView(ch)
	return s.db.DeleteAlertChannel(ctx, id, a)
}

// TestResult is what a test delivery got.
type TestResult struct {
	Delivered bool
	db.AlertAttempt
}

// Test sends a test alert to a channel now (enabled or not) and waits for the answer: one try,
// recorded like any delivery, and audited. A missing channel is db.ErrNotFound.
func (s *Service) Test(ctx context.Context, id string, a db.Audit) (TestResult, error) {
	ch, err := s.db.AlertChannelByID(ctx, id)
	if err != nil {
		return TestResult{}, err
	}
	now := s.now()
	alert := Alert{Type: EventTest, Status: StatusFiring, Title: "Test alert from the Tensfer go-live dashboard",
		Text: "Channel " + quote(ch.Name) + " is set up: alerts for the events it chose will arrive here.", URL: s.link("/settings/alerts"),
		OccurredAt: rfc3339(now), Data: map[string]any{"channel": ch.Name}}
	d, err := s.delivery(ch.ID, alert, 1)
	if err != nil {
		return TestResult{}, err
	}
	ids, err := s.db.EnqueueAlerts(ctx, []db.AlertDelivery{d}, nil)
	if err != nil {
		return TestResult{}, err
	}
	s.claim(ids[0])
	at, _, err := s.attempt(ctx, ids[0])
	s.release(ids[0])
	if err != nil {
		return TestResult{}, err
	}
	res := TestResult{Delivered: at.Status >= 200 && at.Status < 300, AlertAttempt: at}
	a.Action, a.Target = "alert_channel.test", "alert_channel:"+id
	a.After = map[string]any{"delivered": res.Delivered, "status": at.Status, "duration_ms": at.DurationMS}
	if at.Error != "" {
		a.After.(map[string]any)["error"] = at.Error
	}
	return res, s.db.InsertAudit(ctx, a)
}

// apply validates the input's fields into ch, adding what is wrong to errs. A new URL is sealed.
func (s *Service) apply(ch *db.AlertChannel, in Input, errs validation.Errors) error {
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		switch {
		case name == "":
			errs.Add("name", "give the channel a name, such as #payments-oncall")
		case len(name) > MaxNameLen:
			errs.Add("name", fmt.Sprintf("name must be at most %d characters", MaxNameLen))
		case strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
			errs.Add("name", "name must be printable characters only")
		}
		ch.Name = name
	}
	if in.Events != nil {
		ch.Events = nil
		for _, e := range *in.Events {
			if !knownEvent(e) {
				errs.Add("events", "unknown event "+quote(validation.Clip(e, 60))+"; choose from "+eventTypes())
				continue
			}
			if !slices.Contains(ch.Events, e) {
				ch.Events = append(ch.Events, e)
			}
		}
		if len(ch.Events) == 0 {
			errs.Add("events", "choose at least one event")
		}
	}
	if in.Envs != nil {
		ch.Envs = nil
		for _, e := range *in.Envs {
			if !environment.Valid(e) {
				errs.Add("environments", "unknown environment "+quote(validation.Clip(e, 30))+"; choose sandbox, production or both")
				continue
			}
			if !slices.Contains(ch.Envs, e) {
				ch.Envs = append(ch.Envs, e)
			}
		}
		if len(ch.Envs) == 0 {
			errs.Add("environments", "choose at least one environment")
		}
	}
	if in.URL != nil {
		target, msg := s.checkURL(*in.URL)
		if msg != "" {
			errs.Add("url", msg)
			return nil
		}
		u, _ := url.Parse(target)
		sealed, err := s.cfg.Box.Seal([]byte(target), secrets.AlertChannelContext(ch.ID, "url"))
		if err != nil {
			return err
		}
		ch.URLSealed, ch.URLHost, ch.URLFingerprint = sealed, u.Host, s.cfg.Box.Fingerprint([]byte(target))
	}
	return nil
}

// checkURL applies the rules of every URL the dashboard sends to (environment.CheckURL, which
// also refuses internal address literals), and refuses this machine, which those rules allow for
// a sandbox front end on localhost. The messages never repeat the URL.
func (s *Service) checkURL(raw string) (string, string) {
	target, msg := environment.CheckURL("URL", raw, s.cfg.AllowLoopbackURLs)
	if msg != "" {
		return "", msg
	}
	if environment.IsLoopbackURL(target) && !s.cfg.AllowLoopbackURLs {
		return "", "URL points at this machine; alerts go only to public addresses"
	}
	return target, ""
}

// newSecret gives a webhook channel a new signing secret, sealed, and returns it.
func (s *Service) newSecret(ch *db.AlertChannel) (string, error) {
	if ch.Kind != db.AlertKindWebhook {
		return "", nil
	}
	secret, err := tensfer.GenerateSecret()
	if err != nil {
		return "", err
	}
	if ch.SecretSealed, err = s.cfg.Box.Seal([]byte(secret), secrets.AlertChannelContext(ch.ID, "secret")); err != nil {
		return "", err
	}
	return secret, nil
}

// open unseals a channel's URL and, for a webhook channel, its HMAC key.
func (s *Service) open(ch db.AlertChannel) (string, []byte, error) {
	target, err := s.cfg.Box.Open(ch.URLSealed, secrets.AlertChannelContext(ch.ID, "url"))
	if err != nil {
		return "", nil, fmt.Errorf("alerts: open the URL of channel %s: %w", ch.ID, err)
	}
	if ch.Kind != db.AlertKindWebhook {
		return string(target), nil, nil
	}
	secret, err := s.cfg.Box.Open(ch.SecretSealed, secrets.AlertChannelContext(ch.ID, "secret"))
	if err != nil {
		return "", nil, fmt.Errorf("alerts: open the secret of channel %s: %w", ch.ID, err)
	}
	key, err := tensfer.ParseSecret(string(secret))
	if err != nil {
		return "", nil, fmt.Errorf("alerts: the secret of channel %s: %w", ch.ID, err)
	}
	return string(target), key, nil
}

// auditView is what the audit log says about a channel: never its URL or secret.
func auditView(ch db.AlertChannel) map[string]any {
	return map[string]any{"name": ch.Name, "kind": ch.Kind, "url_host": ch.URLHost, "url_fingerprint": ch.URLFingerprint,
		"events": ch.Events, "environments": ch.Envs, "enabled": ch.Enabled}
}

func knownEvent(e string) bool {
	for _, x := range Events {
		if x.Type == e {
			return true
		}
	}
	return false
}

func eventTypes() string {
	names := make([]string, 0, len(Events))
	for _, e := range Events {
		names = append(names, e.Type)
	}
	return strings.Join(names, ", ")
}

func quote(s string) string { return "“" + s + "”" }
