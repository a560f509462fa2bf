package web

import (
	"log/slog"

	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

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
