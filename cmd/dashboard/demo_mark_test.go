package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/events"
)

// TestDemoMarkedAddsTheMark: the simulator's client sends the demo mark on every request and
// leaves the caller's request untouched.
func TestDemoMarkedAddsTheMark(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Get(events.DemoHeader) }))
	defer srv.Close()
	c := &http.Client{Transport: demoMarked{mark: "the-mark", next: http.DefaultTransport}}
	req, _ := http.NewRequest(http.MethodPost, srv.URL, nil)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if h := <-got; h != "the-mark" {
		t.Fatalf("server saw demo header %q", h)
	}
	if req.Header.Get(events.DemoHeader) != "" {
		t.Fatal("the caller's request was changed")
	}
}
