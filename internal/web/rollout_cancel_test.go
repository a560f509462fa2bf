package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/rollout"
)

// cancelAfter is a request context that is cancelled at the n-th time anything asks whether it
// is done: sweeping n walks the cancellation through every step of a request, before, during and
// after its commit.
type cancelAfter struct {
	context.Context
	mu     sync.Mutex
	n      int
	cancel context.CancelFunc
}

func newCancelAfter(n int) *cancelAfter {
	ctx, cancel := context.WithCancel(context.Background())
	return &cancelAfter{Context: ctx, n: n, cancel: cancel}
}

func (c *cancelAfter) tick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n--; c.n == 0 {
		c.cancel()
	}
}

func (c *cancelAfter) Done() <-chan struct{} { c.tick(); return c.Context.Done() }
func (c *cancelAfter) Err() error            { c.tick(); return c.Context.Err() }

// TestACohortStoredByACancelledRequestGovernsTheNextDecision (issue 17, defect 2), through the
// real router: the client goes away at every point of creating a cohort in turn. Whenever the
// cohort was stored, the answer is not a 500 and the next decision sees the cohort; when it was
// not stored, nothing of it decides.
func TestACohortStoredByACancelledRequestGovernsTheNextDecision(t *testing.T) {
	app := newTestApp(t)
	token := app.addToken("ops", auth.ScopeAdmin)
	h := app.srv.Handler()
	stored := 0
	for n := 1; n <= 400; n++ {
		name := fmt.Sprintf("c%d", n)
		body := fmt.Sprintf(`{"name":%q,"environment":"production","user_ids":["user-%d"]}`, name, n)
		req := httptest.NewRequest(http.MethodPost, "/api/v1/rollout/cohorts", strings.NewReader(body)).WithContext(newCancelAfter(n))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		cs, err := app.db.ListCohorts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		in := false
		for _, c := range cs {
			in = in || c.Name == name
		}
		d := app.srv.rollout.Check(rollout.User{ID: fmt.Sprintf("user-%d", n)})
		switch {
		case in && rec.Code == http.StatusInternalServerError:
			t.Fatalf("cancelled at step %d: the cohort is stored but the answer is 500", n)
		case in && d.Cohort != name:
			t.Fatalf("cancelled at step %d: the cohort is stored but the next decision is %+v", n, d)
		case !in && d.Cohort == name:
			t.Fatalf("cancelled at step %d: a cohort not stored decides", n)
		}
		if in {
			stored++
		}
	}
	if stored == 0 || stored == 400 {
		t.Fatalf("%d of 400 cancelled requests stored their cohort: the sweep did not cross the commit", stored)
	}
}
