package tensfer

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// pagedServer serves n institutions in pages of the requested limit, using
// the offset as the cursor, and fails the request for page failAt (1-based)
// if set.
func pagedServer(n, failAt int) func(http.ResponseWriter, *http.Request) {
	page := 0
	return func(w http.ResponseWriter, r *http.Request) {
		page++
		if page == failAt {
			answer(500, `{"error":{"code":"internal_error","message":"boom","request_id":"req_fail"}}`)(w, r)
			return
		}
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		if limit == 0 {
			limit = 20
		}
		off, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
		end := min(off+limit, n)
		var data []Institution
		for i := off; i < end; i++ {
			data = append(data, Institution{ID: fmt.Sprintf("ins_%d", i)})
		}
		var next *string
		if end < n {
			s := strconv.Itoa(end)
			next = &s
		}
		b, _ := json.Marshal(Page[Institution]{Data: data, HasMore: next != nil, NextCursor: next, RequestID: "req_p" + strconv.Itoa(page)})
		answer(200, string(b))(w, r)
	}
}

func TestInstitutionsPagination(t *testing.T) {
	tests := []struct {
		name      string
		n, limit  int
		failAt    int
		stopAfter int // consumer breaks after this many items; 0 means never
		wantItems int
		wantPages int
		wantErr   bool
	}{
		{name: "three pages", n: 25, limit: 10, wantItems: 25, wantPages: 3},
		{name: "exact pages", n: 20, limit: 10, wantItems: 20, wantPages: 2},
		{name: "server default limit", n: 45, wantItems: 45, wantPages: 3},
		{name: "empty list", n: 0, limit: 10, wantItems: 0, wantPages: 1},
		{name: "consumer stops early", n: 50, limit: 10, stopAfter: 12, wantItems: 12, wantPages: 2},
		{name: "error on second page", n: 50, limit: 10, failAt: 2, wantItems: 10, wantPages: 2, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, s := serve(t, pagedServer(tt.n, tt.failAt))
			c, _ := newTestClient(t, srv.URL, func(cfg *Config) { cfg.MaxRetries = -1 })
			var ids []string
			var gotErr error
			for ins, err := range c.Institutions(t.Context(), ListParams{Limit: tt.limit}) {
				if err != nil {
					gotErr = err
					continue // the iterator must end by itself after an error
				}
				ids = append(ids, ins.ID)
				if tt.stopAfter > 0 && len(ids) == tt.stopAfter {
					break
				}
			}
			if (gotErr != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", gotErr, tt.wantErr)
			}
			if tt.wantErr && (KindOf(gotErr) != KindServer || !strings.Contains(gotErr.Error(), "req_fail")) {
				t.Errorf("err = %v, want the server error with its request id", gotErr)
			}
			if len(ids) != tt.wantItems {
				t.Errorf("got %d items, want %d", len(ids), tt.wantItems)
			}
			for i, id := range ids {
				if id != fmt.Sprintf("ins_%d", i) {
					t.Fatalf("item %d = %s, want items in order without gaps or repeats", i, id)
				}
			}
			if got := int(s.n.Load()); got != tt.wantPages {
				t.Errorf("fetched %d pages, want %d", got, tt.wantPages)
			}
			for _, r := range s.Requests() {
				if tt.limit != 0 && r.URL.Query().Get("limit") != strconv.Itoa(tt.limit) {
					t.Errorf("limit = %q, want %d", r.URL.Query().Get("limit"), tt.limit)
				}
			}
		})
	}
}

func TestPaginationMisbehavingServer(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantMsg string
	}{
		{"has_more without cursor", `{"data":[{"id":"a"}],"has_more":true,"next_cursor":null}`, "has_more=true but no next_cursor"},
		{"cursor does not advance", `{"data":[{"id":"a"}],"has_more":true,"next_cursor":"same"}`, "did not advance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, s := serve(t, answer(200, tt.body))
			c, _ := newTestClient(t, srv.URL, nil)
			var items int
			var gotErr error
			for _, err := range c.Institutions(t.Context(), ListParams{Cursor: "same"}) {
				if err != nil {
					gotErr = err
				} else {
					items++
				}
			}
			if gotErr == nil || !strings.Contains(gotErr.Error(), tt.wantMsg) || KindOf(gotErr) != KindDecode {
				t.Fatalf("err = %v, want decode error containing %q", gotErr, tt.wantMsg)
			}
			if items != 1 || s.n.Load() != 1 {
				t.Errorf("items = %d, pages = %d; want 1 and 1", items, s.n.Load())
			}
		})
	}
}

func TestInstitutionsPage(t *testing.T) {
	srv, _ := serve(t, pagedServer(25, 0))
	c, _ := newTestClient(t, srv.URL, nil)
	p, err := c.InstitutionsPage(t.Context(), ListParams{Limit: 10, Cursor: "20"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Data) != 5 || p.HasMore || p.NextCursor != nil || p.RequestID != "req_p1" {
		t.Errorf("page = %+v, want the last 5 items and no next cursor", p)
	}
}
