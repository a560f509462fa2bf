package tensfer_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/tensfer/tensfersim"
)

// TestClientWithSafeHTTPClient runs the client through the SSRF-safe HTTP
// client, as callers of a user-configured base URL do: the simulator on
// loopback is reached only with AllowLoopback, and a refused address is an
// unreachable error that the observer sees too.
func TestClientWithSafeHTTPClient(t *testing.T) {
	srv := httptest.NewServer(tensfersim.New(tensfersim.Config{Seed: 42}))
	t.Cleanup(srv.Close)
	keys := tensfersim.DefaultKeys()[tensfer.Sandbox]
	tests := []struct {
		allowLoopback bool
		wantErr       string
	}{
		{true, ""},
		{false, "refusing to connect to 127.0.0.1: loopback address"},
	}
	for _, tt := range tests {
		var calls []tensfer.Call
		c, err := tensfer.New(tensfer.Config{
			Env: tensfer.Sandbox, BaseURL: tensfersim.BaseURL(srv.URL, tensfer.Sandbox),
			SecretKey: keys.SecretKey, PublicKey: keys.PublicKey, ClientToken: keys.ClientToken,
			HTTPClient: tensfer.NewSafeClient(tensfer.SafeClientOptions{AllowLoopback: tt.allowLoopback}),
			MaxRetries: -1,
			Observer:   func(_ context.Context, c tensfer.Call) { calls = append(calls, c) },
		})
		if err != nil {
			t.Fatalf("tensfer.New: %v", err)
		}
		_, err = c.CheckCredentials(t.Context())
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("AllowLoopback=%v: %v", tt.allowLoopback, err)
			}
			continue
		}
		if !tensfer.IsUnreachable(err) || !strings.Contains(err.Error(), tt.wantErr) || len(calls) != 1 || calls[0].ErrorMessage == "" {
			t.Errorf("AllowLoopback=%v: err = %v, calls %+v; want unreachable %q, observed", tt.allowLoopback, err, calls, tt.wantErr)
		}
	}
}
