package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestErrorsAnswerInTheKindOfTheirRouteGroup: each route group says whether its errors are pages
// or JSON, including paths and methods no route matches inside the group.
func TestErrorsAnswerInTheKindOfTheirRouteGroup(t *testing.T) {
	app := newTestApp(t)
	tests := []struct {
		method, path string
		status       int
		json         bool
	}{
		{"GET", "/hooks/production", http.StatusMethodNotAllowed, true},
		{"GET", "/hooks/x/y", http.StatusNotFound, true},
		{"POST", "/hooks/staging", http.StatusNotFound, true},
		{"PUT", "/callbacks/sandbox", http.StatusMethodNotAllowed, true},
		{"GET", "/callbacks/sandbox/return/x", http.StatusNotFound, true},
		{"GET", "/api/v1/nope", http.StatusUnauthorized, true},
		{"GET", "/readyz?x", http.StatusOK, true},
		{"GET", "/nope", http.StatusNotFound, false},
		{"DELETE", "/login", http.StatusMethodNotAllowed, false},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		app.srv.Handler().ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		ct := rec.Header().Get("Content-Type")
		if rec.Code != tt.status || strings.HasPrefix(ct, "application/json") != tt.json {
			t.Errorf("%s %s: %d %s, want %d (json %v)", tt.method, tt.path, rec.Code, ct, tt.status, tt.json)
		}
	}
}
