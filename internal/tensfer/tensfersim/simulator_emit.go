package tensfersim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// Attempt is one delivery attempt of a webhook or callback.
type Attempt struct {
	// Number counts from 1.
	Number int
	At     time.Time
	// Status is the receiver's HTTP status, 0 when none answered.
	Status   int
	Duration time.Duration
	// Err is the transport error or a non-2xx status, nil on success.
	Err error
}

// EmitWebhook delivers ev to target the way Tensfer would: a JSON POST
// signed with Standard Webhooks v1 by every key in keys (several during
// rotation), webhook-id fixed across attempts (ev.ID, or a fresh msg_ id)
// and each attempt signed with its own timestamp. A non-2xx answer or a
// transport error is retried after WebhookBackoff, doubling each time, up
// to WebhookMaxAttempts attempts or until ctx is done. It returns every
// attempt made and an error if none succeeded.
func (s *Simulator) EmitWebhook(ctx context.Context, target string, keys [][]byte, ev tensfer.WebhookEvent) ([]Attempt, error) {
	if err := checkTarget(target); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("emit webhook: no signing key")
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("emit webhook: encode event: %w", err)
	}
	id := ev.ID
	if id == "" {
		id = "msg_" + s.randHex(12)
	}
	var attempts []Attempt
	wait := s.cfg.WebhookBackoff
	for n := 1; ; n++ {
		a := s.post(ctx, target, body, n, func(req *http.Request) {
			req.Header.Set("User-Agent", "Tensfer-Webhooks/1.0 (simulator)")
			tensfer.SignRequest(req, id, s.cfg.Now(), body, keys...)
		})
		attempts = append(attempts, a)
		if a.Err == nil {
			return attempts, nil
		}
		if n >= s.cfg.WebhookMaxAttempts || ctx.Err() != nil {
			return attempts, fmt.Errorf("emit webhook %s to %s: gave up after %d attempts: %w", id, target, n, a.Err)
		}
		if err := s.cfg.Sleep(ctx, wait); err != nil {
			return attempts, fmt.Errorf("emit webhook %s to %s: stopped after %d attempts: %w", id, target, n, err)
		}
		wait = min(2*wait, time.Hour)
	}
}

// EmitCallback sends ev to target as the integrator's front end would: one
// JSON POST (a beacon is not retried) with the configured Origin header.
func (s *Simulator) EmitCallback(ctx context.Context, target string, ev tensfer.CallbackEvent) (Attempt, error) {
	if err := checkTarget(target); err != nil {
		return Attempt{}, err
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return Attempt{}, fmt.Errorf("emit callback: encode event: %w", err)
	}
	a := s.post(ctx, target, body, 1, func(req *http.Request) {
		req.Header.Set("Origin", s.cfg.CallbackOrigin)
		req.Header.Set("User-Agent", "Mozilla/5.0 (Tensfer simulator; front end)")
	})
	if a.Err != nil {
		return a, fmt.Errorf("emit callback %s to %s: %w", ev.Event, target, a.Err)
	}
	return a, nil
}

// post sends one JSON POST and reports it as an Attempt.
func (s *Simulator) post(ctx context.Context, target string, body []byte, n int, prepare func(*http.Request)) Attempt {
	a := Attempt{Number: n, At: s.cfg.Now()}
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		a.Err = err
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	prepare(req)
	res, err := s.cfg.HTTPClient.Do(req)
	a.Duration = time.Since(start)
	if err != nil {
		a.Err = err
		return a
	}
	defer res.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	a.Status = res.StatusCode
	if res.StatusCode < 200 || res.StatusCode > 299 {
		a.Err = fmt.Errorf("receiver answered %d: %s", res.StatusCode, strings.TrimSpace(string(snippet)))
	}
	return a
}

// checkTarget rejects target URLs that cannot be posted to.
func checkTarget(target string) error {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("target %q must be an absolute http(s) URL", target)
	}
	return nil
}

// sleep waits for d or until ctx is done; it is Config.Sleep's default.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
