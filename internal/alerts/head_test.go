package alerts

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/metrics"
)

// TestAuditHeadIsPublishedOutsideTheDatabase: the chain's head goes to the log, to /metrics and
// to the channels that chose audit.head (and to no other), at start and again only when it
// changed; what was published is what the chain then holds.
func TestAuditHeadIsPublishedOutsideTheDatabase(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var logs bytes.Buffer
	f.svc.log = slog.New(slog.NewJSONHandler(&logs, nil))
	m := metrics.New(metrics.BuildInfo{Version: "test"})
	f.svc.cfg.Metrics = m
	heads, kills := newReceiver(t), newReceiver(t)
	f.addChannel("heads", db.AlertKindWebhook, heads.URL, []string{EventAuditHead}, []string{"production"})
	f.addChannel("kills", db.AlertKindWebhook, kills.URL, []string{EventKilled}, []string{"production"})

	// published checks that head went out everywhere, why, as the n-th alert of its channel.
	published := func(head db.AuditHead, why string, n int) {
		t.Helper()
		if now, _ := f.db.AuditHead(ctx); head != now || len(head.Hash) != 64 {
			t.Fatalf("published %s, the chain's head is %s", head, now)
		}
		if line := `"msg":"audit head","head":"` + head.String() + `"`; !strings.Contains(logs.String(), line) || !strings.Contains(logs.String(), `"reason":"`+why+`"`) {
			t.Errorf("the log does not carry head %s (%s):\n%s", head, why, logs.String())
		}
		w := httptest.NewRecorder()
		m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		for _, want := range []string{
			fmt.Sprintf("dashboard_audit_head_seq %d\n", head.Seq),
			fmt.Sprintf(`dashboard_audit_head_info{hash="%s",seq="%d"} 1`, head.Hash, head.Seq),
		} {
			if !strings.Contains(w.Body.String(), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		f.deliverDue()
		rs := heads.requests()
		if len(rs) != n {
			t.Fatalf("%d alerts to the channel that chose %s, want %d", len(rs), EventAuditHead, n)
		}
		a := payloads(t, rs)[n-1]
		if a.Type != EventAuditHead || a.Data["head"] != head.String() || a.Data["reason"] != why ||
			!strings.Contains(a.Text, "dashboard audit verify --head "+head.String()) {
			t.Errorf("alert %+v does not carry head %s (%s)", a, head, why)
		}
	}

	head, err := f.svc.PublishHead(ctx, HeadAtStart)
	if err != nil {
		t.Fatal(err)
	}
	published(head, HeadAtStart, 1)
	if err := f.svc.PublishHeadIfChanged(ctx); err != nil {
		t.Fatal(err)
	}
	if f.deliverDue(); len(heads.requests()) != 1 {
		t.Fatal("an unchanged head was published again")
	}
	f.audit("user.create", "user:2", nil)
	if err := f.svc.PublishHeadIfChanged(ctx); err != nil {
		t.Fatal(err)
	}
	next, _ := f.db.AuditHead(ctx)
	if next.Seq != head.Seq+1 {
		t.Fatalf("head after one more row: %s, was %s", next, head)
	}
	published(next, HeadChanged, 2)
	if len(kills.requests()) != 0 {
		t.Error("a channel that did not choose the audit head got it")
	}
	if rep, err := f.db.VerifyAudit(ctx, head, next); err != nil || rep.Heads[0].Problem != "" || rep.Heads[1].Problem != "" {
		t.Errorf("the chain does not hold what was published: %+v %v", rep.Heads, err)
	}
}
