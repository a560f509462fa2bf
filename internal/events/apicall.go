package events

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/metrics"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// APICall is what an integrator's service reports about one Tensfer call (POST /api/v1/api-calls).
type APICall struct {
	Env          string     `json:"env"`
	Method       string     `json:"method"`
	Path         string     `json:"path"`
	Status       *int       `json:"status"`
	DurationMS   *int64     `json:"duration_ms"`
	RequestID    string     `json:"request_id"`
	ErrorCode    string     `json:"error_code"`
	ErrorMessage string     `json:"error_message"`
	OccurredAt   *time.Time `json:"occurred_at"`
	UserID       string     `json:"user_id"`
	Timeout      bool       `json:"timeout"`
}

var httpMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

// Validate checks a reported call field by field, normalising the method.
func (in *APICall) Validate() validation.Errors {
	f := validation.Errors{}
	if !tensfer.Environment(in.Env).Valid() {
		f["env"] = "env must be sandbox or production"
	}
	in.Method = strings.ToUpper(strings.TrimSpace(in.Method))
	ok := false
	for _, m := range httpMethods {
		ok = ok || m == in.Method
	}
	if !ok {
		f["method"] = "method must be an HTTP method such as GET or POST"
	}
	if !strings.HasPrefix(in.Path, "/") || len(in.Path) > 1024 {
		f["path"] = "path must start with / and be at most 1024 characters (e.g. /v1/payments)"
	}
	if in.Status != nil && (*in.Status < 100 || *in.Status > 599) {
		f["status"] = "status must be an HTTP status from 100 to 599, or null when no answer came (timeout)"
	}
	if in.Status == nil && !in.Timeout && in.ErrorCode == "" {
		f["status"] = "status is required; send null with \"timeout\": true or an error_code when no answer came"
	}
	if in.DurationMS != nil && (*in.DurationMS < 0 || *in.DurationMS > 24*3600*1000) {
		f["duration_ms"] = "duration_ms must be between 0 and 86400000"
	}
	for name, v := range map[string]string{"request_id": in.RequestID, "error_code": in.ErrorCode, "user_id": in.UserID} {
		if len(v) > 256 {
			f[name] = name + " must be at most 256 characters"
		}
	}
	if len(in.ErrorMessage) > 2048 {
		f["error_message"] = "error_message must be at most 2048 characters"
	}
	return f
}

// event classifies the call: 5xx and calls that got no answer are error signals (api.timeout when
// there was no status at all); other 4xx are api.error.
func (in APICall) event(payload []byte) db.EventInput {
	e := db.EventInput{
		Source: db.SourceAPI, Env: in.Env, Type: "api.call", RequestID: in.RequestID, UserID: in.UserID,
		Method: in.Method, Path: in.Path, ErrorCode: in.ErrorCode, ErrorMessage: in.ErrorMessage,
		Payload: payload,
	}
	if in.Status != nil {
		e.Status = *in.Status
	}
	if in.DurationMS != nil {
		e.DurationMS = *in.DurationMS
	}
	if in.OccurredAt != nil {
		e.OccurredAt = *in.OccurredAt
	}
	e.IsError = e.Status >= 500 || in.Timeout || (in.Status == nil && in.ErrorCode != "")
	if e.IsError && e.Status == 0 {
		e.Type = "api.timeout"
	} else if e.Status >= 400 {
		e.Type = "api.error"
	}
	return e
}

// RecordAPICall validates and stores a reported call, so its request_id is findable and its
// errors count in the error signals. Invalid input returns validation.Errors.
func (s *Service) RecordAPICall(ctx context.Context, in APICall) (db.IngestResult, error) {
	start := time.Now()
	res, err := s.recordAPICall(ctx, in)
	s.observe(in.Env, metrics.SourceAPICall, start, res, err)
	return res, err
}

func (s *Service) recordAPICall(ctx context.Context, in APICall) (db.IngestResult, error) {
	if err := in.Validate().Err(); err != nil {
		return db.IngestResult{}, err
	}
	payload, err := json.Marshal(in)
	if err != nil {
		return db.IngestResult{}, err
	}
	return s.submit(ctx, InputAPICall, in.event(payload))
}

// ObserveTensferCall logs one of the dashboard's own Tensfer calls (Verify, the demo) with its
// request_id and stores it as an API-call event, the same way integrators report theirs. Use it
// as the tensfer client's Observer.
func (s *Service) ObserveTensferCall(ctx context.Context, c tensfer.Call) {
	s.log.LogAttrs(ctx, levelForCall(c), "tensfer call", callAttrs(c)...)
	if tensfer.KindOf(c.Err) == tensfer.KindCanceled {
		return // a call we abandoned ourselves (shutdown, a closed page) says nothing about Tensfer
	}
	in := APICall{Env: string(c.Env), Method: c.Method, Path: c.Path, RequestID: c.RequestID,
		ErrorCode: c.ErrorCode, ErrorMessage: c.ErrorMessage, Timeout: tensfer.IsTimeout(c.Err)}
	if c.Status > 0 {
		st := c.Status
		in.Status = &st
	}
	d := c.Duration.Milliseconds()
	in.DurationMS = &d
	payload, _ := json.Marshal(map[string]any{"source": "dashboard", "method": in.Method, "path": in.Path, "status": in.Status,
		"duration_ms": d, "request_id": in.RequestID, "error_code": in.ErrorCode, "error_message": in.ErrorMessage, "attempts": c.Attempts})
	start := time.Now()
	res, err := s.submit(context.WithoutCancel(ctx), InputAPICall, in.event(payload))
	s.observe(in.Env, metrics.SourceAPICall, start, res, err)
	if err != nil {
		s.log.Warn("record tensfer call", "error", fmt.Sprint(err))
	}
}

// levelForCall is WARN for a failed call, except one the dashboard abandoned itself (a stop, a
// closed page), which says nothing about Tensfer.
func levelForCall(c tensfer.Call) slog.Level {
	if c.Err != nil && tensfer.KindOf(c.Err) != tensfer.KindCanceled {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// callAttrs are the log fields of one Tensfer call; never a key.
func callAttrs(c tensfer.Call) []slog.Attr {
	attrs := []slog.Attr{
		slog.String("env", string(c.Env)), slog.String("method", c.Method), slog.String("path", c.Path),
		slog.Int("status", c.Status), slog.Int64("duration_ms", c.Duration.Milliseconds()),
		slog.String("tensfer_request_id", c.RequestID), slog.Int("attempts", c.Attempts),
	}
	if c.Err != nil {
		attrs = append(attrs, slog.String("error_code", c.ErrorCode), slog.String("error", c.Err.Error()))
	}
	return attrs
}
