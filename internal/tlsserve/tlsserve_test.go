package tlsserve

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// TestRedirect: GET and HEAD go to the same path and query under the public URL, whatever Host
// the request names; other methods are refused with 400 and told the https URL.
func TestRedirect(t *testing.T) {
	base, _ := url.Parse("https://dash.example.com:8443")
	h := Redirect(base)
	for _, tt := range []struct {
		method, target, host string
		status               int
		location, body       string
	}{
		{http.MethodGet, "/events?env=production&q=a%20b", "evil.example.com", http.StatusPermanentRedirect, "https://dash.example.com:8443/events?env=production&q=a%20b", ""},
		{http.MethodHead, "/", "dash.example.com", http.StatusPermanentRedirect, "https://dash.example.com:8443/", ""},
		{http.MethodGet, "//evil.example.com/x", "dash.example.com", http.StatusPermanentRedirect, "https://dash.example.com:8443//evil.example.com/x", ""},
		{http.MethodPost, "/hooks/production", "dash.example.com", http.StatusBadRequest, "", "send the request to https://dash.example.com:8443/hooks/production"},
		{http.MethodPut, "/api/v1/rollout", "dash.example.com", http.StatusBadRequest, "", "https only"},
	} {
		r := httptest.NewRequest(tt.method, tt.target, nil)
		r.Host = tt.host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.status || w.Header().Get("Location") != tt.location || !strings.Contains(w.Body.String(), tt.body) {
			t.Errorf("%s %s: %d to %q with %q, want %d to %q with %q", tt.method, tt.target, w.Code, w.Header().Get("Location"), w.Body, tt.status, tt.location, tt.body)
		}
	}
}

// TestStoreDirIsPerCA: each CA gets its own folder under DATA/acme, so certificates of a
// staging or test CA are never served once the real one is configured.
func TestStoreDirIsPerCA(t *testing.T) {
	for _, tt := range []struct{ ca, want string }{
		{LetsEncrypt, "acme/acme-v02.api.letsencrypt.org"},
		{"https://acme-staging-v02.api.letsencrypt.org/directory", "acme/acme-staging-v02.api.letsencrypt.org"},
		{"https://ca.corp.example:9000/acme/acme/directory", "acme/ca.corp.example_9000"},
	} {
		if got := StoreDir("/data", tt.ca); got != filepath.Join("/data", tt.want) {
			t.Errorf("%s: %s, want /data/%s", tt.ca, got, tt.want)
		}
	}
}
