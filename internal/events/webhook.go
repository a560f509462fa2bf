package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/metrics"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// MaxWebhookBytes is the largest webhook body accepted.
const MaxWebhookBytes = 1 << 20

// Delivery is one inbound webhook as received: the raw bytes its signature covers, the headers,
// and who sent it (for the limits on keeping refused deliveries).
type Delivery struct {
	Env       string
	Header    http.Header
	Body      []byte
	TooLarge  bool   // the body was cut at MaxWebhookBytes
	Client    string // rate-limit key of the sender (IP, IPv6 /64)
	IP        string
	RequestID string
}

// Rejection is a refused delivery: Reason is one of the db.Reject* codes, Message says why in
// words for the sender.
type Rejection struct {
	Reason  string
	Message string
	// Kept is whether the delivery was kept for admins; when it was not (over a limit, a budget
	// or the disk watermark) it was counted instead, and is not worth a log line.
	Kept bool
}

func (r *Rejection) Error() string { return r.Message }

// keptHeaders are the request headers stored with an event (never Authorization or cookies).
var keptHeaders = []string{"Content-Type", "User-Agent", "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature", "Origin", "Referer", "Content-Length"}

// HeaderMap picks the headers stored with a verified webhook, bounded in size.
func HeaderMap(h http.Header) map[string]string { return headerMap(h, keptHeaders, 1024) }

// headerMap picks the named headers of h, each cut to limit bytes; a value that was cut ends in
// "…" so that whoever reads it knows.
func headerMap(h http.Header, names []string, limit int) map[string]string {
	out := map[string]string{}
	for _, k := range names {
		if v := h.Get(k); v != "" {
			if len(v) > limit {
				v = validation.Clip(v, limit-len("…")) + "…"
			}
			out[strings.ToLower(k)] = v
		}
	}
	return out
}

// ReceiveWebhook verifies a delivery (Standard Webhooks, over the raw bytes, against every active
// secret of the environment) and stores it durably. It returns only after the event is
// committed; a repeated webhook-id stores nothing new and reports Duplicate. A refused delivery
// is a *Rejection, and is kept with its precise reason (within per-client and global limits, so
// a flood cannot fill the disk or hold the single writer).
func (s *Service) ReceiveWebhook(ctx context.Context, d Delivery) (db.IngestResult, error) {
	start := time.Now()
	res, err := s.receiveWebhook(s.demoContext(ctx, d.Header), d)
	s.observe(d.Env, metrics.SourceWebhook, start, res, err)
	return res, err
}

func (s *Service) receiveWebhook(ctx context.Context, d Delivery) (db.IngestResult, error) {
	if d.TooLarge {
		return db.IngestResult{}, s.reject(ctx, d, db.RejectBodyTooLarge, fmt.Sprintf("body is larger than %d bytes", MaxWebhookBytes), 0,
			fmt.Sprintf("webhook body is larger than the %d byte limit", MaxWebhookBytes))
	}
	if !tensfer.Environment(d.Env).Valid() {
		env := validation.Clip(d.Env, 64)
		return db.IngestResult{}, s.reject(ctx, d, db.RejectUnknownEnvironment, fmt.Sprintf("environment %q does not exist", env), 0,
			fmt.Sprintf("there is no environment %q; webhooks go to /hooks/sandbox or /hooks/production", env))
	}
	ids, keys, err := s.ActiveWebhookKeys(ctx, d.Env)
	if err != nil {
		return db.IngestResult{}, err
	}
	now := s.now()
	matched, err := tensfer.Verify(keys, d.Header, d.Body, now, tensfer.DefaultTolerance)
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
		return db.IngestResult{}, s.reject(ctx, d, reason, detail, skew, "webhook rejected: "+err.Error())
	}
	ev, err := tensfer.ParseWebhookEvent(d.Body)
	if err != nil {
		return db.IngestResult{}, s.reject(ctx, d, db.RejectMalformedJSON, err.Error(), 0, "webhook body is malformed: "+err.Error())
	}
	secretID := ids[matched]
	// Secret ids are [A-Za-z0-9_-] (whs_ + base64url), so this needs no escaping.
	verification := []byte(`{"secret_id":"` + secretID + `","verified_at":"` + now.UTC().Format(time.RFC3339) + `"}`)
	webhookID := d.Header.Get("webhook-id")
	in := db.EventInput{
		Source: db.SourceWebhook, Env: d.Env, Type: validation.Clip(string(ev.Type), 255), RequestID: validation.Clip(ev.RequestID, 1024),
		UserID: webhookUserID(ev), ExternalID: validation.Clip(webhookID, 256),
		DedupeKey:  dedupeKey("webhook:"+d.Env+":", webhookID),
		OccurredAt: ev.CreatedAt, Payload: d.Body, Headers: HeaderMap(d.Header), Verification: verification,
		Client: s.clientID(d.Client),
	}
	if in.Type == "" {
		in.Type = "unknown"
	}
	res, err := s.submit(ctx, InputWebhook, in)
	if err != nil {
		return db.IngestResult{}, err
	}
	s.touchSecret(secretID, now)
	s.touchSender(in.Client, now)
	return res, nil
}

// webhookUserID finds the user a webhook is about, for lookup by user id.
func webhookUserID(ev tensfer.WebhookEvent) string {
	var data struct {
		UserID string `json:"user_id"`
	}
	if bytes.Contains(ev.Data, []byte(`"user_id"`)) {
		_ = json.Unmarshal(ev.Data, &data)
	}
	return validation.Clip(data.UserID, 256)
}

// rejectedHeaderMax bounds each header kept with a refused delivery.
const rejectedHeaderMax = 256

// reject keeps a refused delivery for admins to inspect, and returns the *Rejection to answer
// with. What is kept is bounded (the first db.MaxRejectedBody bytes of the body, each header cut
// to rejectedHeaderMax) and stored only within the per-client and global limits, the budgets of
// unauthenticated input, and above the soft disk watermark; past them the delivery is still
// refused, only not kept, and counted instead (Kept is false).
func (s *Service) reject(ctx context.Context, d Delivery, reason, detail string, skew int64, msg string) error {
	rej := &Rejection{Reason: reason, Message: msg}
	client := s.clientID(d.Client)
	if skew != 0 {
		detail = fmt.Sprintf("%s (skew %ds)", detail, skew)
	}
	r := db.RejectedDelivery{Env: d.Env, Reason: reason, Detail: validation.Clip(detail, 512), Headers: headerMap(d.Header, keptHeaders, rejectedHeaderMax),
		Body: d.Body[:min(len(d.Body), db.MaxRejectedBody)], BodySize: int64(len(d.Body)), IP: d.IP, RequestID: d.RequestID, Client: client}
	if err := s.mayKeepRejected(d, client, storedCost(len(r.Body), r.Headers, len(r.Detail))); err != nil {
		return rej
	}
	if _, err := s.db.InsertRejected(ctx, r); err != nil {
		if err = s.storageFailed(d.Env, InputRefused, err); !isRefusal(err) {
			s.log.Error("store rejected delivery", "request_id", d.RequestID, "error", err)
		}
		return rej
	}
	s.disk.WriteSucceeded()
	rej.Kept = true
	return rej
}

// mayKeepRejected decides whether a refused delivery of cost bytes may be kept, and counts it
// when not. Nothing is kept below the soft disk watermark. A sender that has passed
// verification before is Tensfer: its refusals are the signal the rejected-webhooks guardrail
// reads, so a flood of forgeries must not crowd them out, and the limits do not apply to it.
func (s *Service) mayKeepRejected(d Delivery, client string, cost int) error {
	if err := s.checkDisk(d.Env, InputRefused, false); err != nil {
		return err
	}
	if s.knownSender(client) {
		return nil
	}
	if ok, _ := s.rejectLimit.Allow(d.Client); !ok {
		return s.Refuse(d.Env, InputRefused, RefusedRateLimited, "", 0)
	}
	if ok, _ := s.rejectGlobal.Allow(""); !ok {
		return s.Refuse(d.Env, InputRefused, RefusedQuota, "", 0)
	}
	return s.takeBudget(d.Env, InputRefused, cost)
}

// isRefusal reports whether err is a *Refusal.
func isRefusal(err error) bool {
	var r *Refusal
	return errors.As(err, &r)
}

// clientID is the keyed fingerprint of a sender's rate-limit key (its IP, or IPv6 /64) stored with
// public deliveries: the guardrails count distinct senders, and no address is kept on events.
func (s *Service) clientID(client string) string {
	if client == "" {
		return ""
	}
	s.clientsMu.Lock()
	id, ok := s.clients[client]
	s.clientsMu.Unlock()
	if ok {
		return id
	}
	id = s.cfg.Box.Fingerprint([]byte("client:" + client))
	s.clientsMu.Lock()
	if len(s.clients) >= maxClientIDs { // senders come and go: start afresh rather than grow
		clear(s.clients)
	}
	s.clients[client] = id
	s.clientsMu.Unlock()
	return id
}

// maxClientIDs bounds the cache of sender fingerprints (an HMAC each, on the ingest hot path).
const maxClientIDs = 4096
