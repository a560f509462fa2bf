package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// Bounds on what an attempt keeps.
const (
	maxAnswer     = 200 // bytes of the answer's body kept
	maxError      = 300
	maxRetryAfter = 15 * time.Minute // a Retry-After longer than this is not waited for
)

// Backoff is the wait after the nth failed try (n from 1): first·2^(n-1), spread by ±20 % with
// j in [0, 1). With the defaults (40 s, 5 tries) the four waits add up to about 10 minutes.
func Backoff(n int, first time.Duration, j float64) time.Duration {
	d := first << (n - 1)
	return time.Duration(float64(d) * (0.8 + 0.4*j))
}

// enqueue hands deliveries to the workers without ever waiting: one already queued or being
// tried is skipped, and one that finds the queue full stays pending in the database, counted,
// for the next sweep.
func (s *Service) enqueue(ids ...int64) {
	for _, id := range ids {
		if !s.claim(id) {
			continue
		}
		select {
		case s.queue <- id:
		default:
			s.release(id)
			n := s.dropped.Add(1)
			if s.dropLog.Due("", s.now()) {
				s.log.Warn("alerts: delivery queue full; the delivery waits in the database for the next sweep (at most one line a minute)",
					"delivery_id", id, "dropped_total", n)
			}
		}
	}
}

// claim marks a delivery as queued or being tried; false when it already is.
func (s *Service) claim(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight[id] {
		return false
	}
	s.inflight[id] = true
	return true
}

func (s *Service) release(id int64) {
	s.mu.Lock()
	delete(s.inflight, id)
	s.mu.Unlock()
}

// work delivers what the queue hands it until ctx ends.
func (s *Service) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-s.queue:
			if _, _, err := s.attempt(ctx, id); err != nil && ctx.Err() == nil {
				s.log.Warn("alerts: deliver", "delivery_id", id, "error", err)
			}
			s.release(id)
		}
	}
}

// sweep queues the pending deliveries that are due (retries, and any that found the queue full or
// were left by a restart), as many as the queue has room for.
func (s *Service) sweep(ctx context.Context) error {
	room := cap(s.queue) - len(s.queue)
	if room <= 0 {
		return nil
	}
	ids, err := s.db.DueAlertDeliveries(ctx, s.now(), room)
	if err != nil {
		return err
	}
	s.enqueue(ids...)
	return nil
}

// DeliverDue tries every pending delivery that is due, one after another in the caller's
// goroutine, taking over what waits in the queue (those a worker holds are left to it), and
// returns how many it tried.
func (s *Service) DeliverDue(ctx context.Context) (int, error) {
	for drained := false; !drained; {
		select {
		case id := <-s.queue:
			s.release(id)
		default:
			drained = true
		}
	}
	ids, err := s.db.DueAlertDeliveries(ctx, s.now(), 500)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		if !s.claim(id) {
			continue
		}
		_, tried, err := s.attempt(ctx, id)
		s.release(id)
		if err != nil {
			return n, err
		}
		if tried {
			n++
		}
	}
	return n, nil
}

// claimLease is how long a claimed delivery is left to the instance that claimed it: longer than
// an attempt can take, after which another instance may try it (its claimer died mid-attempt).
const claimLease = 2 * time.Minute

// attempt makes one attempt at a pending, due delivery and records it with the delivery's next
// state. It returns the attempt and reports whether one was made.
func (s *Service) attempt(ctx context.Context, id int64) (db.AlertAttempt, bool, error) {
	d, err := s.db.AlertDeliveryByID(ctx, id)
	if errors.Is(err, db.ErrNotFound) {
		return db.AlertAttempt{}, false, nil // its channel was deleted with it
	}
	if err != nil {
		return db.AlertAttempt{}, false, err
	}
	if d.State != db.AlertPending || d.NextAt.After(s.now()) {
		return db.AlertAttempt{}, false, nil
	}
	// Claimed in the database, not only in this process: another instance (a leader that has not
	// yet noticed it lost the lead) must not send it too.
	if ok, err := s.db.ClaimAlertDelivery(ctx, d.ID, s.now(), s.now().Add(claimLease)); err != nil || !ok {
		return db.AlertAttempt{}, false, err
	}
	ch, err := s.db.AlertChannelByID(ctx, d.ChannelID)
	if errors.Is(err, db.ErrNotFound) {
		return db.AlertAttempt{}, false, nil
	}
	if err != nil {
		return db.AlertAttempt{}, false, err
	}
	var at db.AlertAttempt
	var retryAfter time.Duration
	if !ch.Enabled && d.Type != EventTest {
		at = db.AlertAttempt{At: s.now(), Error: "not sent: the channel was disabled"}
		d.Attempts = d.MaxAttempts - 1 // no further tries
	} else {
		target, key, err := s.open(ch)
		if err != nil {
			return db.AlertAttempt{}, false, err
		}
		at, retryAfter = s.send(ctx, ch.Kind, target, key, d)
		if ctx.Err() != nil {
			return at, false, ctx.Err() // cut short by a stop: not the receiver's fault, tried again later
		}
	}
	state, next := s.schedule(d, at, retryAfter)
	if err := s.db.RecordAlertAttempt(ctx, d.ID, at, state, next); err != nil {
		if errors.Is(err, db.ErrNotFound) {
			return at, false, nil // deleted with its channel meanwhile
		}
		return at, false, err
	}
	switch {
	case state == db.AlertFailed:
		s.log.Warn("alert delivery failed", "channel", ch.Name, "delivery_id", d.ID, "type", d.Type, "attempts", d.Attempts+1, "status", at.Status, "error", at.Error)
	case state == db.AlertPending:
		s.log.Info("alert delivery will be tried again", "channel", ch.Name, "delivery_id", d.ID, "type", d.Type, "attempts", d.Attempts+1,
			"status", at.Status, "error", at.Error, "next_at", next.UTC().Format(time.RFC3339))
	}
	return at, true, nil
}

// schedule is a delivery's state after an attempt: delivered on 2xx; else pending with the next
// try after the backoff (or the receiver's Retry-After when longer), or failed after the last try.
func (s *Service) schedule(d db.AlertDelivery, at db.AlertAttempt, retryAfter time.Duration) (string, time.Time) {
	now := s.now()
	if at.Status >= 200 && at.Status < 300 {
		return db.AlertDelivered, now
	}
	n := d.Attempts + 1
	if n >= d.MaxAttempts {
		return db.AlertFailed, now
	}
	wait := max(Backoff(n, s.opt.FirstRetry, s.cfg.Jitter()), min(retryAfter, maxRetryAfter))
	return db.AlertPending, now.Add(wait)
}

// send posts the delivery to target: for Slack, {"text": one line}; for a webhook, the payload
// signed with Standard Webhooks (a fresh timestamp per try, the same webhook-id).
func (s *Service) send(ctx context.Context, kind, target string, key []byte, d db.AlertDelivery) (db.AlertAttempt, time.Duration) {
	now := s.now()
	at := db.AlertAttempt{At: now}
	body := d.Payload
	if kind == db.AlertKindSlack {
		var a Alert
		if err := json.Unmarshal(d.Payload, &a); err != nil {
			at.Error = "the stored alert is not valid JSON"
			return at, 0
		}
		body, _ = json.Marshal(map[string]string{"text": SlackText(a)})
	}
	cctx, cancel := context.WithTimeout(ctx, s.opt.AttemptTimeout)
	defer cancel()
	start := time.Now()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		at.Error = "the channel URL cannot be used"
		return at, 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.cfg.UserAgent+" (alerts)")
	if kind == db.AlertKindWebhook {
		tensfer.SignHeaders(req.Header, d.MsgID, now, body, key)
	}
	res, err := s.cfg.HTTPClient.Do(req)
	at.DurationMS = time.Since(start).Milliseconds()
	if err != nil {
		at.Error = scrub(describeError(err, s.opt.AttemptTimeout), target)
		return at, 0
	}
	defer res.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) // let the connection be reused
	at.DurationMS = time.Since(start).Milliseconds()
	at.Status = res.StatusCode
	at.Answer = scrub(strings.ToValidUTF8(string(head), ""), target)
	var retryAfter time.Duration
	switch {
	case res.StatusCode >= 300 && res.StatusCode < 400:
		at.Error = "answered " + res.Status + "; redirects are not followed: use the final URL"
	case res.StatusCode >= 300:
		at.Error = "answered " + res.Status
		retryAfter = tensfer.ParseRetryAfter(res.Header.Get("Retry-After"), s.now())
	}
	return at, retryAfter
}

// describeError says why no answer came, without the URL (a Slack URL holds its token).
func describeError(err error, timeout time.Duration) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return "no answer within " + timeout.String()
	}
	return err.Error()
}

// scrub removes the channel's URL, and its path and query, from text that goes to the page and
// the database: some receivers echo the path in their errors ("Cannot POST /services/T0/B0/xyz").
func scrub(text, target string) string {
	text = strings.ReplaceAll(text, target, "[channel URL]")
	if u, err := url.Parse(target); err == nil {
		for _, part := range []string{u.RequestURI(), u.EscapedPath(), u.Path, u.RawQuery} {
			if len(part) > 1 {
				text = strings.ReplaceAll(text, part, "[channel URL path]")
			}
		}
	}
	return validation.Clip(text, maxError)
}

// SlackText is the one line a Slack-compatible channel gets: status, environment, title, text and
// a link to the dashboard page, with &, < and > escaped as Slack asks.
func SlackText(a Alert) string {
	esc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	var b strings.Builder
	switch a.Status {
	case StatusResolved:
		b.WriteString("[resolved] ")
	default:
		if a.Type != EventTest {
			b.WriteString("[alert] ")
		}
	}
	if a.Env != "" {
		fmt.Fprintf(&b, "%s: ", a.Env)
	}
	b.WriteString(esc.Replace(a.Title))
	if a.Text != "" {
		b.WriteString(". ")
		b.WriteString(esc.Replace(strings.TrimSuffix(a.Text, ".")))
		b.WriteString(".")
	}
	if a.URL != "" {
		fmt.Fprintf(&b, " <%s|Open the dashboard>", strings.NewReplacer("|", "%7C", ">", "%3E", "<", "%3C").Replace(a.URL))
	}
	return b.String()
}
