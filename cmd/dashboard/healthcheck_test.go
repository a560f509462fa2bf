package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHealthcheck runs `dashboard healthcheck` against a running dashboard and against answers
// that are not healthy: it succeeds only on a 200 from /healthz, and every failure exits 1, never
// 2 (which Docker reserves).
func TestHealthcheck(t *testing.T) {
	s := startServing(t, t.TempDir())
	_, port, _ := net.SplitHostPort(s.addr)
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "starting", http.StatusServiceUnavailable)
	}))
	defer unavailable.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // "" for healthy
	}{
		{"the dashboard's /healthz", nil, []string{"--url", "http://" + s.addr + "/healthz"}, ""},
		{"the port of DASHBOARD_ADDR, as the container sets it", map[string]string{"DASHBOARD_ADDR": ":" + port}, nil, ""},
		{"the port of --addr on all interfaces", nil, []string{"--addr", "0.0.0.0:" + port}, ""},
		{"a page that is not there", nil, []string{"--url", "http://" + s.addr + "/nope"}, "404 Not Found"},
		{"a server that is not ready", nil, []string{"--url", unavailable.URL + "/healthz"}, "503 Service Unavailable"},
		{"nothing listening", nil, []string{"--addr", closedAddr}, "connection refused"},
		{"a URL that is not http", nil, []string{"--url", "ftp://" + s.addr + "/healthz"}, "must be an http or https URL"},
		{"a mistaken flag", nil, []string{"--nope"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := cli(t, tt.env, "", append([]string{"healthcheck"}, tt.args...)...)
			if tt.want == "" {
				if err != nil || !strings.Contains(out, "200 OK") {
					t.Fatalf("healthcheck: %q %v", out, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("healthcheck: %v, want an error saying %q", err, tt.want)
			}
			if code := exitCode(err); code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
		})
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestHealthcheckOverTLS: with the dashboard's TLS settings in its environment (as in a
// container) the check asks https on loopback and succeeds whatever names the certificate holds;
// a --url given by hand is verified as any https URL is.
func TestHealthcheckOverTLS(t *testing.T) {
	c := newTestCert(t, 6001, nil)
	certFile, keyFile := writePair(t, t.TempDir(), c)
	s := startServing(t, t.TempDir(), "--tls-cert", certFile, "--tls-key", keyFile)
	env := map[string]string{"DASHBOARD_TLS_CERT": certFile, "DASHBOARD_TLS_KEY": keyFile, "DASHBOARD_ADDR": s.addr}
	out, _, err := cli(t, env, "", "healthcheck")
	if err != nil || !strings.Contains(out, "https://"+s.addr+"/healthz answered 200 OK") {
		t.Fatalf("healthcheck with DASHBOARD_TLS_CERT set: %q %v", out, err)
	}
	if _, _, err := cli(t, nil, "", "healthcheck", "--addr", s.addr); err == nil {
		t.Fatal("plain http to the https port passed the health check")
	}
	_, _, err = cli(t, env, "", "healthcheck", "--url", "https://"+s.addr+"/healthz")
	if err == nil || !strings.Contains(err.Error(), "certificate") || exitCode(err) != 1 {
		t.Fatalf("a --url whose certificate is not trusted: %v, want a certificate error", err)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
}
