package events

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// MaxCallbackBytes bounds a front-end callback beacon.
const MaxCallbackBytes = 64 << 10

// ReceiveCallback parses and stores a beacon from the integrator's front end, deduplicated by its
// event_id when it has one; client is the sender's rate-limit key (see Delivery.Client). A body that is not a callback is a validation.Problem.
func (s *Service) ReceiveCallback(ctx context.Context, env string, body []byte, h http.Header, client string) (db.IngestResult, error) {
	// navigator.sendBeacon sends text/plain; anything that parses as the JSON object is fine.
	ev, err := tensfer.ParseCallbackEvent(body)
	if err != nil {
		return db.IngestResult{}, validation.Problem("callback rejected: " + err.Error())
	}
	return s.storeCallback(ctx, env, ev, body, h, client)
}

// RecordReturn stores the query of a return (redirect) URL visit as a callback event; a query
// without a recognisable event is kept as type "return" with the query as its payload.
func (s *Service) RecordReturn(ctx context.Context, env string, q url.Values, h http.Header, client string) error {
	ev, err := tensfer.ParseCallbackQuery(q)
	if err != nil {
		ev = tensfer.CallbackEvent{Event: "return"}
	}
	payload, err := ev.MarshalJSON()
	if err != nil {
		return err
	}
	if ev.Event == "return" {
		flat := map[string]string{}
		for k := range q {
			flat[validation.Clip(k, 100)] = validation.Clip(q.Get(k), 1000)
		}
		if payload, err = json.Marshal(map[string]any{"event": "return", "query": flat}); err != nil {
			return err
		}
	}
	_, err = s.storeCallback(ctx, env, ev, payload, h, client)
	return err
}

func (s *Service) storeCallback(ctx context.Context, env string, ev tensfer.CallbackEvent, payload []byte, h http.Header, client string) (db.IngestResult, error) {
	in := db.EventInput{
		Source: db.SourceCallback, Env: env, Type: validation.Clip(string(ev.Event), 255), RequestID: validation.Clip(ev.RequestID, 1024),
		UserID: validation.Clip(ev.UserID, 1024), ExternalID: validation.Clip(ev.EventID, 256), OccurredAt: ev.OccurredAt,
		IsError: ev.Event == tensfer.CallbackInitializationError, Payload: payload, Headers: HeaderMap(h), Client: s.clientID(client),
	}
	if ev.EventID != "" {
		in.DedupeKey = dedupeKey("callback:"+env+":", ev.EventID)
	}
	res, err := s.submit(ctx, in)
	if err != nil {
		return db.IngestResult{}, err
	}
	return res[0], nil
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
