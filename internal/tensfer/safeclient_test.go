package tensfer_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/safehttp"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/tensfer/tensfersim"
)

// safeSimClient returns a sandbox client for a simulator on loopback that
// sends through the SSRF-safe HTTP client made with opts, and the calls its
// observer sees.
func safeSimClient(t *testing.T, opts safehttp.Options, maxRetries int) (*tensfer.Client, *[]tensfer.Call) {
	t.Helper()
	srv := httptest.NewServer(tensfersim.New(tensfersim.Config{Seed: 42}))
	t.Cleanup(srv.Close)
	keys := tensfersim.DefaultKeys()[tensfer.Sandbox]
	calls := &[]tensfer.Call{}
	c, err := tensfer.New(tensfer.Config{
		Env: tensfer.Sandbox, BaseURL: tensfersim.BaseURL(srv.URL, tensfer.Sandbox),
		SecretKey: keys.SecretKey, PublicKey: keys.PublicKey, ClientToken: keys.ClientToken,
		HTTPClient: safehttp.NewClient(opts),
		MaxRetries: maxRetries,
		Observer:   func(_ context.Context, c tensfer.Call) { *calls = append(*calls, c) },
	})
	if err != nil {
		t.Fatalf("tensfer.New: %v", err)
	}
	return c, calls
}

// TestClientWithSafeHTTPClient runs the client through the SSRF-safe HTTP
// client, as callers of a user-configured base URL do: the simulator on
// loopback is reached only with AllowLoopback, and a refused address is an
// unreachable error that the observer sees too.
func TestClientWithSafeHTTPClient(t *testing.T) {
	tests := []struct {
		allowLoopback bool
		wantErr       string
	}{
		{true, ""},
		{false, "refusing to connect to 127.0.0.1: loopback address"},
	}
	for _, tt := range tests {
		c, calls := safeSimClient(t, safehttp.Options{AllowLoopback: tt.allowLoopback}, -1)
		_, err := c.CheckCredentials(t.Context())
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("AllowLoopback=%v: %v", tt.allowLoopback, err)
			}
			continue
		}
		if !tensfer.IsUnreachable(err) || !strings.Contains(err.Error(), tt.wantErr) || len(*calls) != 1 || (*calls)[0].ErrorMessage == "" {
			t.Errorf("AllowLoopback=%v: err = %v, calls %+v; want unreachable %q, observed", tt.allowLoopback, err, *calls, tt.wantErr)
		}
	}
}

// TestClientWithSafeHTTPClientBodyBound checks that the safe client's body
// bound reaches the client as a decode error naming the bound, not as an
// unreachable server to retry, although tensfer does not import it.
func TestClientWithSafeHTTPClientBodyBound(t *testing.T) {
	c, calls := safeSimClient(t, safehttp.Options{AllowLoopback: true, MaxBodyBytes: 64}, 0)
	_, err := c.CheckCredentials(t.Context())
	e, ok := errors.AsType[*tensfer.Error](err)
	if !ok || e.Kind != tensfer.KindDecode || e.Status != 200 || !strings.Contains(e.Message, "over 64 bytes") || !strings.HasPrefix(e.RequestID, "req_") {
		t.Fatalf("err = %v, want a decode error naming the 64 byte bound", err)
	}
	if len(*calls) != 1 || (*calls)[0].Attempts != 1 {
		t.Errorf("calls = %+v, want one attempt: an oversized body is not retried", *calls)
	}
}
