package web

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/events"
)

type ingestAnswer struct {
	ID        string `json:"id"`
	Status    string `json:"status"` // accepted | duplicate
	RequestID string `json:"request_id"`
}

// receiveWebhook is POST /hooks/{env}: the raw delivery goes to the event pipeline, which
// verifies it and answers only after the event is committed; a repeated webhook-id is 200 and
// stores nothing new. A refusal is answered with its status (401 signature, 400 malformed, 404
// environment, 413 size); a verified webhook that cannot be stored for want of disk is 503 with
// Retry-After, so that Tensfer delivers it again.
func (s *Server) receiveWebhook(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r, events.MaxWebhookBytes)
	var mbe *http.MaxBytesError
	tooLarge := errors.As(err, &mbe)
	if err != nil && !tooLarge {
		return errBodyCutShort
	}
	res, err := s.events.ReceiveWebhook(r.Context(), s.delivery(r, chi.URLParam(r, "env"), body, tooLarge))
	if err != nil {
		return rejectionError(r, err)
	}
	return writeIngestAnswer(w, http.StatusOK, res, requestIDFrom(r.Context()))
}

// delivery describes an inbound webhook request to the event pipeline.
func (s *Server) delivery(r *http.Request, env string, body []byte, tooLarge bool) events.Delivery {
	return events.Delivery{Env: env, Header: r.Header, Body: body, TooLarge: tooLarge,
		Client: s.clientKey(r), IP: s.clientIP(r), RequestID: requestIDFrom(r.Context())}
}

// rejectionError maps a refused delivery to its HTTP answer; other errors pass through. A
// delivery that was not kept (over the limits, budgets or disk watermark for refused deliveries)
// was counted instead, and is not logged one by one.
func rejectionError(r *http.Request, err error) error {
	var rej *events.Rejection
	if !errors.As(err, &rej) {
		return err
	}
	if !rej.Kept {
		infoFrom(r.Context()).counted = true
	}
	switch rej.Reason {
	case db.RejectBodyTooLarge:
		return &httpError{status: http.StatusRequestEntityTooLarge, code: "body_too_large", msg: rej.Message}
	case db.RejectUnknownEnvironment:
		return errNotFound(rej.Message)
	case db.RejectMalformedJSON:
		return errBadRequest("%s", rej.Message)
	}
	return &httpError{status: http.StatusUnauthorized, code: "invalid_signature", msg: rej.Message}
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

// readBody reads a request body of at most limit bytes, sized up front from Content-Length.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= limit {
		buf.Grow(int(n) + 1)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	return buf.Bytes(), err
}
