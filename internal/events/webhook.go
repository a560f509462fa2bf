package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
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

	signedBy string // set by the pipeline: the secret whose signature a refused delivery carried
}

// signedBy finds the secret of d's environment, active (ids and keys) or retired within
// RetiredSecretGrace, that d's signature matches whatever its timestamp, or "" when none does.
// Only such a refusal can count toward the rejected-webhooks guardrail: without a secret of the
// environment nobody can produce one.
func (s *Service) signedBy(ctx context.Context, d Delivery, ids []string, keys [][]byte) (string, error) {
	oldIDs, oldKeys, err := s.webhookKeys(ctx, d.Env, true)
	if err != nil {
		return "", err
	}
	ids, keys = append(slices.Clip(ids), oldIDs...), append(slices.Clip(keys), oldKeys...)
	if len(keys) == 0 {
		return "", nil
	}
	i, err := tensfer.Verify(keys, d.Header, d.Body, s.now(), time.Duration(math.MaxInt64))
	if err != nil {
		return "", nil
	}
	return ids[i], nil
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
		msg := "webhook rejected: " + err.Error()
		if d.signedBy, err = s.signedBy(ctx, d, ids, keys); err != nil {
			return db.IngestResult{}, err
		}
		if d.signedBy != "" && reason != tensfer.ReasonTimestampSkew {
			reason, detail = db.RejectRetiredSecret, "signed with webhook secret "+d.signedBy+", which is retired or expired"
			msg = "webhook rejected: signed with a retired webhook secret of " + d.Env + "; sign with an active one"
		}
		return db.IngestResult{}, s.reject(ctx, d, reason, detail, skew, msg)
	}
	secretID := ids[matched]
	ev, err := tensfer.ParseWebhookEvent(d.Body)
	if err != nil {
		d.signedBy = secretID
		return db.IngestResult{}, s.reject(ctx, d, db.RejectMalformedJSON, err.Error(), 0, "webhook body is malformed: "+err.Error())
	}
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
// to rejectedHeaderMax) and stored only within the limits of mayKeepRejected and above the soft
// disk watermark; past them the delivery is still refused, only not kept, and counted instead
// (Kept is false).
func (s *Service) reject(ctx context.Context, d Delivery, reason, detail string, skew int64, msg string) error {
	rej := &Rejection{Reason: reason, Message: msg}
	client := s.clientID(d.Client)
	if skew != 0 {
		detail = fmt.Sprintf("%s (skew %ds)", detail, skew)
	}
	r := db.RejectedDelivery{Env: d.Env, Reason: reason, Detail: validation.Clip(detail, 512), Headers: headerMap(d.Header, keptHeaders, rejectedHeaderMax),
		Body: d.Body[:min(len(d.Body), db.MaxRejectedBody)], BodySize: int64(len(d.Body)), IP: d.IP, RequestID: d.RequestID, Client: client}
	if d.signedBy != "" {
		r.SignedBy, r.WebhookID = d.signedBy, d.Header.Get("webhook-id")
	}
	if err := s.mayKeepRejected(d, rejectedCost(r)); err != nil {
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
// when not. Nothing is kept below the soft disk watermark. Whatever a sender delivered before,
// its refusals are kept within a limit per sender (an IPv6 /48 counting as one), a global one,
// and the budget of unauthenticated input. A refusal whose signature verified (only a holder of
// the environment's secret can make one) draws on a budget of its own, which forgeries cannot
// spend, once a minute per webhook-id, so that replaying one captured delivery cannot spend it
// either.
func (s *Service) mayKeepRejected(d Delivery, cost int) error {
	if err := s.checkDisk(d.Env, InputRefused, false); err != nil {
		return err
	}
	if d.signedBy != "" {
		if !s.signedSeen.add(d.Env+"\x00"+d.Header.Get("webhook-id"), s.now()) {
			return s.Refuse(d.Env, InputRefused, RefusedRateLimited, "", 0)
		}
		return s.takeVouched(d.Env, InputRefused, cost)
	}
	if ok, _ := s.rejectLimit.Allow(senderGroup(d.IP, d.Client)); !ok {
		return s.Refuse(d.Env, InputRefused, RefusedRateLimited, "", 0)
	}
	if ok, _ := s.rejectGlobal.Allow(""); !ok {
		return s.Refuse(d.Env, InputRefused, RefusedQuota, "", 0)
	}
	return s.takeBudget(d.Env, InputRefused, cost)
}

// senderGroup is the key a refused delivery's sender is limited by: its address, an IPv6
// address by its /48 (what one site is usually given, so one holder of a /48 is one sender), or
// client when the address does not parse.
func senderGroup(ip, client string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return client
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(48)
	return p.String()
}

// recentIDs remembers ids for a minute, in a bounded map: what it has seen within the minute it
// refuses to add again.
type recentIDs struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// add records id at now and reports whether it was not seen within the last minute.
func (r *recentIDs) add(id string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if at, ok := r.seen[id]; ok && now.Sub(at) < time.Minute {
		return false
	}
	if r.seen == nil || len(r.seen) >= maxClientIDs {
		r.seen = map[string]time.Time{}
	}
	r.seen[id] = now
	return true
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
