package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// MaxWebhookBytes is the largest webhook body accepted (DESIGN.md 4.2).
const MaxWebhookBytes = 1 << 20

// activeWebhookKeys returns the HMAC keys (and their secret ids) that verify env's deliveries now.
func (s *Server) activeWebhookKeys(ctx context.Context, env string) ([]string, [][]byte, error) {
	now := s.now()
	c := &s.secrets
	c.mu.Lock()
	e, ok := c.entries[env]
	gen := c.gen
	c.mu.Unlock()
	if ok && now.Sub(e.loaded) < secretCacheTTL && now.Sub(e.loaded) >= 0 {
		return e.ids, e.keys, nil
	}
	all, err := s.db.ListWebhookSecrets(ctx, env)
	if err != nil {
		return nil, nil, err
	}
	e = cachedSecrets{loaded: now}
	for _, sec := range all {
		if !sec.Active(now) {
			continue
		}
		plain, err := s.box.Open(sec.Sealed, sealContext(env, "webhook_secret/"+sec.ID))
		if err != nil {
			return nil, nil, fmt.Errorf("open webhook secret %s: %w", sec.ID, err)
		}
		key, err := tensfer.ParseSecret(string(plain))
		if err != nil {
			return nil, nil, fmt.Errorf("webhook secret %s: %w", sec.ID, err)
		}
		e.ids, e.keys = append(e.ids, sec.ID), append(e.keys, key)
	}
	c.mu.Lock()
	if c.gen == gen { // no change to the secrets while this list was read
		if c.entries == nil {
			c.entries = map[string]cachedSecrets{}
		}
		c.entries[env] = e
	}
	c.mu.Unlock()
	return e.ids, e.keys, nil
}

// keptHeaders are the request headers stored with an event (never Authorization or cookies).
var keptHeaders = []string{"Content-Type", "User-Agent", "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature", "Origin", "Referer", "Content-Length"}

func headerMap(h http.Header) map[string]string {
	out := map[string]string{}
	for _, k := range keptHeaders {
		if v := h.Get(k); v != "" {
			out[strings.ToLower(k)] = trim(v, 1024)
		}
	}
	return out
}

type ingestAnswer struct {
	ID        string `json:"id"`
	Status    string `json:"status"` // accepted | duplicate
	RequestID string `json:"request_id"`
}

// receiveWebhook is POST /hooks/{env}: Standard Webhooks verification over the raw bytes against
// every active secret of the environment, then durable storage. It answers 2xx only after the
// event is committed; a repeated webhook-id is 200 and stores nothing new. Every refused
// delivery is kept with its precise reason (rate-limited per client so a flood cannot fill the
// disk).
func (s *Server) receiveWebhook(w http.ResponseWriter, r *http.Request) error {
	env := chi.URLParam(r, "env")
	ctx := r.Context()
	body, err := readBody(w, r, MaxWebhookBytes)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		s.rejectWebhook(r, env, db.RejectBodyTooLarge, fmt.Sprintf("body is larger than %d bytes", MaxWebhookBytes), body, 0)
		return &httpError{status: http.StatusRequestEntityTooLarge, code: "body_too_large", msg: fmt.Sprintf("webhook body is larger than the %d byte limit", MaxWebhookBytes)}
	}
	if err != nil {
		return errBadRequest("cannot read the request body: %v", err)
	}
	if env != "sandbox" && env != "production" {
		s.rejectWebhook(r, env, db.RejectUnknownEnvironment, fmt.Sprintf("environment %q does not exist", trim(env, 64)), body, 0)
		return errNotFound(fmt.Sprintf("there is no environment %q; webhooks go to /hooks/sandbox or /hooks/production", trim(env, 64)))
	}
	ids, keys, err := s.activeWebhookKeys(ctx, env)
	if err != nil {
		return err
	}
	now := s.now()
	matched, err := tensfer.Verify(keys, r.Header, body, now, tensfer.DefaultTolerance)
	if err != nil {
		var ve *tensfer.VerifyError
		reason, detail := "no_matching_signature", err.Error()
		var skew int64
		if errors.As(err, &ve) {
			reason, skew = ve.Reason, ve.SkewSeconds
			detail = ve.Detail
			if detail == "" {
				detail = ve.Error()
			}
		}
		s.rejectWebhook(r, env, reason, detail, body, skew)
		return &httpError{status: http.StatusUnauthorized, code: "invalid_signature", msg: "webhook rejected: " + err.Error()}
	}
	ev, err := tensfer.ParseWebhookEvent(body)
	if err != nil {
		s.rejectWebhook(r, env, db.RejectMalformedJSON, err.Error(), body, 0)
		return errBadRequest("webhook body is malformed: %v", err)
	}
	secretID := ids[matched]
	// Secret ids are [A-Za-z0-9_-] (whs_ + base64url), so this needs no escaping.
	verification := []byte(`{"secret_id":"` + secretID + `","verified_at":"` + rfc3339(now) + `"}`)
	in := db.EventInput{
		Source: db.SourceWebhook, Env: env, Type: clipBytes(string(ev.Type), 255), RequestID: clipBytes(ev.RequestID, 1024),
		UserID: webhookUserID(ev), ExternalID: clipBytes(r.Header.Get("webhook-id"), 256),
		DedupeKey:  dedupeKey("webhook:"+env+":", r.Header.Get("webhook-id")),
		OccurredAt: ev.CreatedAt, Payload: body, Headers: headerMap(r.Header), Verification: verification, Demo: s.cfg.Demo,
	}
	if in.Type == "" {
		in.Type = "unknown"
	}
	res, err := s.ingester.Submit(ctx, []db.EventInput{in})
	if err != nil {
		return err
	}
	s.touchSecret(secretID, now)
	return writeIngestAnswer(w, http.StatusOK, res[0], requestIDFrom(ctx))
}

// writeIngestAnswer writes {"id","status","request_id"} without reflection: it is the answer to
// every stored delivery, on the hot path. The values need no escaping (digits, a fixed word,
// and our request id alphabet).
func writeIngestAnswer(w http.ResponseWriter, status int, res db.IngestResult, requestID string) error {
	answer := "accepted"
	if res.Duplicate {
		answer = "duplicate"
	}
	b := make([]byte, 0, 96)
	b = append(b, `{"id":"`...)
	b = strconv.AppendInt(b, res.ID, 10)
	b = append(b, `","status":"`...)
	b = append(b, answer...)
	b = append(b, `","request_id":"`...)
	b = append(b, requestID...)
	b = append(b, "\"}\n"...)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{"no-store"}
	w.WriteHeader(status)
	_, err := w.Write(b)
	return err
}

// webhookUserID finds the user a webhook is about, for lookup by user id.
func webhookUserID(ev tensfer.WebhookEvent) string {
	var data struct {
		UserID string `json:"user_id"`
	}
	if bytes.Contains(ev.Data, []byte(`"user_id"`)) {
		_ = json.Unmarshal(ev.Data, &data)
	}
	return clipBytes(data.UserID, 256)
}

// rejectWebhook keeps a refused delivery for admins to inspect. Storing is rate-limited per
// client; past the limit the delivery is still refused, only not kept.
func (s *Server) rejectWebhook(r *http.Request, env, reason, detail string, body []byte, skew int64) {
	// Per client, and a global budget: refused deliveries from many sources must not keep the
	// single writer busy or fill the disk.
	if ok, _ := s.rejectLimit.allow(s.clientKey(r)); !ok {
		return
	}
	if ok, _ := s.rejectGlobal.allow(""); !ok {
		return
	}
	ip := s.clientIP(r)
	if skew != 0 {
		detail = fmt.Sprintf("%s (skew %ds)", detail, skew)
	}
	_, err := s.db.InsertRejected(r.Context(), db.RejectedDelivery{Env: env, Reason: reason, Detail: detail, Headers: headerMap(r.Header),
		Body: body, BodySize: int64(len(body)), IP: ip, RequestID: requestIDFrom(r.Context())})
	if err != nil {
		s.log.Error("store rejected delivery", "request_id", requestIDFrom(r.Context()), "error", err)
	}
}

// touchSecret records when a secret last matched, at most every 30 seconds per secret.
func (s *Server) touchSecret(id string, now time.Time) {
	s.touchMu.Lock()
	last := s.touched[id]
	due := now.Sub(last) > 30*time.Second
	if due {
		if s.touched == nil {
			s.touched = map[string]time.Time{}
		}
		s.touched[id] = now
	}
	s.touchMu.Unlock()
	if due {
		if err := s.db.TouchWebhookSecret(context.Background(), id, now); err != nil {
			s.log.Warn("record webhook secret use", "secret_id", id, "error", err)
		}
	}
}

// readBody reads a request body of at most limit bytes, sized up front from Content-Length.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= limit {
		buf.Grow(int(n) + 1)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	return buf.Bytes(), err
}
