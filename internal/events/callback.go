package events

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/metrics"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// MaxCallbackBytes bounds a front-end callback beacon as received. What is stored of it is much
// smaller (see storedBeacon).
const MaxCallbackBytes = 64 << 10

// Bounds on what a stored beacon keeps: anyone can send one, so a beacon is stored in the
// documented shape only, each field cut to a small size, in at most about 2 KiB.
const (
	beaconFieldMax     = 256  // bytes of event_id, session_id, user_id, screen, error.code, error.message
	beaconRequestIDMax = 1024 // bytes of request_id, as for every event: cutting it would break lookups
	beaconUnknownNames = 8    // names of unknown members listed (their values are never kept)
	beaconNameMax      = 32   // bytes of each name listed
	returnParams       = 8    // query parameters kept of a return visit that is not a beacon
	returnValueMax     = 256  // bytes of each
)

// publicHeaders are the request headers stored with a callback, each cut to publicHeaderMax.
var publicHeaders = []string{"Content-Type", "User-Agent", "Origin", "Referer"}

const publicHeaderMax = 256

// storedBeacon is what is stored of a callback: the documented fields, cut to their bounds, the
// names of unknown members, and whether anything was cut or left out of that list.
type storedBeacon struct {
	Event         string                 `json:"event"`
	EventID       string                 `json:"event_id,omitempty"`
	SessionID     string                 `json:"session_id,omitempty"`
	UserID        string                 `json:"user_id,omitempty"`
	RequestID     string                 `json:"request_id,omitempty"`
	Screen        string                 `json:"screen,omitempty"`
	Error         *tensfer.CallbackError `json:"error,omitempty"`
	OccurredAt    string                 `json:"occurred_at,omitempty"`
	UnknownFields []string               `json:"unknown_fields,omitempty"`
	Truncated     bool                   `json:"truncated,omitempty"` // a field was cut, or unknown names left out
}

// shapeBeacon keeps the documented fields of ev within their bounds.
func shapeBeacon(ev tensfer.CallbackEvent) storedBeacon {
	b := storedBeacon{Event: string(ev.Event)}
	clip := func(s string, n int) string {
		c := validation.Clip(s, n)
		b.Truncated = b.Truncated || len(c) < len(s)
		return c
	}
	b.Event = clip(b.Event, beaconFieldMax)
	b.EventID = clip(ev.EventID, beaconFieldMax)
	b.SessionID = clip(ev.SessionID, beaconFieldMax)
	b.UserID = clip(ev.UserID, beaconFieldMax)
	b.RequestID = clip(ev.RequestID, beaconRequestIDMax)
	b.Screen = clip(ev.Screen, beaconFieldMax)
	if ev.Error != nil {
		b.Error = &tensfer.CallbackError{Code: clip(ev.Error.Code, beaconFieldMax), Message: clip(ev.Error.Message, beaconFieldMax)}
	}
	if !ev.OccurredAt.IsZero() {
		b.OccurredAt = ev.OccurredAt.UTC().Format(time.RFC3339Nano)
	}
	names := make([]string, 0, len(ev.Extra))
	for k := range ev.Extra {
		names = append(names, k)
	}
	slices.Sort(names)
	if len(names) > beaconUnknownNames {
		names, b.Truncated = names[:beaconUnknownNames], true
	}
	for _, n := range names {
		b.UnknownFields = append(b.UnknownFields, clip(n, beaconNameMax))
	}
	return b
}

// Beacon is a callback beacon as parsed, and what its token says.
type Beacon struct {
	Env string
	ev  tensfer.CallbackEvent
	// Verified is whether the beacon carried a token that verified for its user_id with a
	// beacon key of Env: only then does it count toward a guardrail.
	Verified bool
	// TokenError says why a token that was sent did not verify ("" when none was sent, or it
	// verified), for the sender.
	TokenError string
	keyID      string
	expiry     time.Time
}

// ParseBeacon parses a beacon from the integrator's front end and checks its token (the "token"
// member, see MintBeaconToken). Input that is not a beacon is a counted *Refusal; a missing or
// bad token is not an error: the beacon is stored unverified.
func (s *Service) ParseBeacon(ctx context.Context, env string, body []byte) (Beacon, error) {
	// navigator.sendBeacon sends text/plain; anything that parses as the JSON object is fine.
	ev, err := tensfer.ParseCallbackEvent(body)
	if err != nil {
		return Beacon{}, s.Refuse(env, InputCallback, RefusedShape, "callback rejected: "+err.Error(), 0)
	}
	b := Beacon{Env: env, ev: ev}
	raw, ok := ev.Extra["token"]
	if !ok {
		return b, nil
	}
	delete(ev.Extra, "token") // a credential for a day: not stored, nor listed as unknown
	var token string
	if json.Unmarshal(raw, &token) != nil {
		b.TokenError = "beacon token must be a string"
		return b, nil
	}
	ids, keys, err := s.beaconKeys(ctx, env)
	if err != nil {
		return Beacon{}, err
	}
	i, expiry, err := checkBeaconToken(keys, env, ev.UserID, token, s.now())
	if err != nil {
		b.TokenError = err.Error()
		return b, nil
	}
	b.Verified, b.keyID, b.expiry = true, ids[i], expiry
	return b, nil
}

// ReceiveCallback parses a beacon from the integrator's front end and stores it (ParseBeacon,
// then StoreBeacon); client is the sender's rate-limit key (see Delivery.Client).
func (s *Service) ReceiveCallback(ctx context.Context, env string, body []byte, h http.Header, client string) (db.IngestResult, error) {
	b, err := s.ParseBeacon(ctx, env, body)
	if err != nil {
		return db.IngestResult{}, err
	}
	return s.StoreBeacon(ctx, b, h, client)
}

// StoreBeacon stores the documented fields of a beacon (see storedBeacon), deduplicated by its
// event_id when it has one. A verified beacon is stored as such within the budget of verified
// input, which unverified beacons cannot spend, and within a limit per user; an unverified one
// within the budgets of unauthenticated input. What the budgets or the disk cannot take is a
// counted *Refusal.
func (s *Service) StoreBeacon(ctx context.Context, b Beacon, h http.Header, client string) (db.IngestResult, error) {
	start := time.Now()
	res, err := s.storeCallback(s.demoContext(ctx, h), b.Env, InputCallback, b.ev, nil, h, client, b.vouch())
	s.observe(b.Env, metrics.SourceCallback, start, res, err)
	return res, err
}

// vouch is what the beacon's token vouches for, or nil when it did not verify.
func (b Beacon) vouch() *beaconVouch {
	if !b.Verified {
		return nil
	}
	return &beaconVouch{KeyID: b.keyID, ExpiresAt: b.expiry.UTC().Format(time.RFC3339)}
}

// beaconVouch is stored as the verification of a verified beacon.
type beaconVouch struct {
	KeyID     string `json:"beacon_key"`
	ExpiresAt string `json:"token_expires_at"`
}

// RecordReturn stores the query of a return (redirect) URL visit as a callback event; a query
// without a recognisable event is kept as type "return" with (a bounded part of) the query as its
// payload. Like ReceiveCallback, it refuses with a counted *Refusal what the budgets or the disk
// cannot take.
func (s *Service) RecordReturn(ctx context.Context, env string, q url.Values, h http.Header, client string) error {
	start := time.Now()
	res, err := s.recordReturn(ctx, env, q, h, client)
	s.observe(env, metrics.SourceReturn, start, res, err)
	return err
}

func (s *Service) recordReturn(ctx context.Context, env string, q url.Values, h http.Header, client string) (db.IngestResult, error) {
	ev, err := tensfer.ParseCallbackQuery(q)
	var payload []byte
	if err != nil {
		ev = tensfer.CallbackEvent{Event: "return"}
		if payload, err = returnPayload(q); err != nil {
			return db.IngestResult{}, err
		}
	}
	return s.storeCallback(ctx, env, InputReturn, ev, payload, h, client, nil)
}

// returnPayload is {"event":"return","query":{..}} with at most returnParams parameters (the
// first value of each, in name order), each bounded.
func returnPayload(q url.Values) ([]byte, error) {
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	slices.Sort(names)
	truncated := len(names) > returnParams
	flat := map[string]string{}
	for _, k := range names[:min(len(names), returnParams)] {
		name, v := validation.Clip(k, beaconNameMax), validation.Clip(q.Get(k), returnValueMax)
		truncated = truncated || len(name) < len(k) || len(v) < len(q.Get(k))
		flat[name] = v
	}
	out := map[string]any{"event": "return", "query": flat}
	if truncated {
		out["truncated"] = true
	}
	return json.Marshal(out)
}

// storeCallback stores a beacon (payload nil: its shaped form) within the disk watermark and the
// budgets: those of verified input when vouch is set (the beacon's token verified), else those of
// unauthenticated input.
func (s *Service) storeCallback(ctx context.Context, env, input string, ev tensfer.CallbackEvent, payload []byte, h http.Header, client string, vouch *beaconVouch) (db.IngestResult, error) {
	if err := s.checkDisk(env, input, vouch != nil); err != nil {
		return db.IngestResult{}, err
	}
	b := shapeBeacon(ev)
	if payload == nil {
		var err error
		if payload, err = json.Marshal(b); err != nil {
			return db.IngestResult{}, err
		}
	}
	headers := headerMap(h, publicHeaders, publicHeaderMax)
	in := db.EventInput{
		Source: db.SourceCallback, Env: env, Type: b.Event, RequestID: b.RequestID, UserID: b.UserID, ExternalID: b.EventID,
		OccurredAt: ev.OccurredAt, IsError: ev.Event == tensfer.CallbackInitializationError, Payload: payload, Headers: headers,
		Client: s.clientID(client),
	}
	dedupe := "callback:" + env + ":"
	if vouch != nil {
		in.Verification, _ = json.Marshal(vouch)
		// Apart from unverified beacons, so that a forged beacon cannot take a genuine one's event_id.
		dedupe += "verified:"
	}
	if ev.EventID != "" {
		in.DedupeKey = dedupeKey(dedupe, ev.EventID)
	}
	if vouch != nil {
		if ok, wait := s.beaconUsers.Allow(env + "\x00" + b.UserID); !ok {
			secs := max(1, int(math.Ceil(wait.Seconds())))
			return db.IngestResult{}, s.Refuse(env, input, RefusedRateLimited, fmt.Sprintf("too many beacons for this user; retry in %d seconds", secs), time.Duration(secs)*time.Second)
		}
		if err := s.takeVouched(env, input, eventCost(in)); err != nil {
			return db.IngestResult{}, err
		}
	} else if err := s.takeBudget(env, input, eventCost(in)); err != nil {
		return db.IngestResult{}, err
	}
	return s.submit(ctx, input, in)
}

// dedupeKey is prefix+id, or prefix and the id's SHA-256 when the id is long: the key stays
// within the database's bound whatever a client sends.
func dedupeKey(prefix, id string) string {
	if len(id) <= 200 {
		return prefix + id
	}
	sum := sha256.Sum256([]byte(id))
	return prefix + "sha256:" + hex.EncodeToString(sum[:])
}
