package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestMetricsListenerServesOnlyMetrics runs the dashboard with --metrics-addr: that listener
// answers GET /metrics without a token, with the build's labels, and nothing else; the main
// address still wants a token for /metrics.
func TestMetricsListenerServesOnlyMetrics(t *testing.T) {
	s := startServing(t, filepath.Join(t.TempDir(), "data"), "--metrics-addr", "127.0.0.1:0")
	var metricsAddr string
	for _, line := range strings.Split(s.stderr.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["metrics_addr"] != nil {
			metricsAddr, _ = rec["metrics_addr"].(string)
		}
	}
	if metricsAddr == "" {
		t.Fatalf("no log line names the metrics listener:\n%s", s.stderr)
	}
	get := func(method, url string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	status, body := get(http.MethodGet, "http://"+metricsAddr+"/metrics")
	if status != 200 || !strings.Contains(body, "dashboard_build_info{goversion=") || !strings.Contains(body, "# TYPE dashboard_ingest_total counter") {
		t.Fatalf("metrics listener: %d\n%s", status, body)
	}
	for _, c := range []struct{ method, path string }{{"GET", "/"}, {"GET", "/healthz"}, {"GET", "/api/v1/whoami"}, {"POST", "/metrics"}} {
		if status, _ := get(c.method, "http://"+metricsAddr+c.path); status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			t.Errorf("metrics listener answers %s %s with %d", c.method, c.path, status)
		}
	}
	if status, _ := get(http.MethodGet, "http://"+s.addr+"/metrics"); status != http.StatusUnauthorized {
		t.Errorf("/metrics on --addr without a token: %d, want 401", status)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	if p := logProblems(s.stderr.String()); len(p) > 0 {
		t.Fatalf("warnings: %q", p)
	}
}
