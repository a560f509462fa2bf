package accounts

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/cluster"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// recordingBus is a Bus that notes what was published, in order with the service's other steps.
type recordingBus struct {
	mu    sync.Mutex
	steps *[]string
}

func (b *recordingBus) Publish(m cluster.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	*b.steps = append(*b.steps, "publish "+m.Topic+" "+m.ID)
}

func (b *recordingBus) Subscribe(string, func(cluster.Message)) func() { return func() {} }

// TestAccessChangesAreAppliedHereAndPublished checks that every change of access made through the
// service is forgotten by this instance first and then published, and that a refused change
// publishes nothing.
func TestAccessChangesAreAppliedHereAndPublished(t *testing.T) {
	ctx := context.Background()
	var steps []string
	s, d := newService(t)
	s.bus, s.forgetAccess = &recordingBus{steps: &steps}, func() { steps = append(steps, "forget") }
	admin, err := s.CreateUser(ctx, NewUser{Email: "ana@example.com", Name: "Ana", Role: "admin", Password: "correct horse battery"}, testAudit)
	if err != nil {
		t.Fatal(err)
	}
	bo, err := s.CreateUser(ctx, NewUser{Email: "bo@example.com", Name: "Bo", Role: "operator", Password: "correct horse battery"}, testAudit)
	if err != nil {
		t.Fatal(err)
	}
	secret, tok, err := s.CreateToken(ctx, "checkout", []string{auth.ScopeConfigRead}, 0, ServiceOwner, testAudit)
	if err != nil {
		t.Fatal(err)
	}
	boID := strconv.FormatInt(bo.ID, 10)
	tests := []struct {
		name    string
		change  func() error
		wantErr func(error) bool // nil: no error
		want    []string
	}{
		{"revoke a token", func() error { _, err := s.RevokeToken(ctx, tok.ID, testAudit); return err }, nil,
			[]string{"forget", "publish access.changed "}},
		{"revoke it again", func() error { _, err := s.RevokeToken(ctx, tok.ID, testAudit); return err },
			func(err error) bool { return errors.Is(err, db.ErrNotFound) }, nil},
		{"sign a user out everywhere", func() error { _, err := s.SignOutEverywhere(ctx, bo.ID, testAudit); return err }, nil,
			[]string{"forget", "publish access.changed " + boID}},
		{"change a role", func() error { _, err := s.SetRole(ctx, bo.ID, "viewer", testAudit); return err }, nil,
			[]string{"forget", "publish access.changed " + boID}},
		{"demote the last admin", func() error { _, err := s.SetRole(ctx, admin.ID, "viewer", testAudit); return err },
			func(err error) bool { return errors.As(err, new(validation.Problem)) }, nil},
		{"disable a user", func() error { _, err := s.SetDisabled(ctx, admin.ID, bo.ID, true, testAudit); return err }, nil,
			[]string{"forget", "publish access.changed " + boID}},
		{"reset a password", func() error { _, err := s.ResetPassword(ctx, bo.ID, "another long password", testAudit); return err }, nil,
			[]string{"forget", "publish access.changed " + boID}},
	}
	for _, tt := range tests {
		steps = nil
		err := tt.change()
		if tt.wantErr == nil && err != nil || tt.wantErr != nil && !tt.wantErr(err) {
			t.Errorf("%s: error %v", tt.name, err)
		}
		if strings.Join(steps, "; ") != strings.Join(tt.want, "; ") {
			t.Errorf("%s: steps %q, want %q", tt.name, steps, tt.want)
		}
	}
	if got, err := d.TokenBySecret(ctx, secret); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("the revoked token still works: %+v %v", got, err)
	}
}

// TestSessionsAndSignInAudit checks the session writes and that AuditSignIn writes only the rows
// of signing in (others belong to the service that acted) and stores nothing else.
func TestSessionsAndSignInAudit(t *testing.T) {
	ctx := context.Background()
	s, d := newService(t)
	u, err := s.CreateUser(ctx, NewUser{Email: "ana@example.com", Name: "Ana", Role: "admin", Password: "correct horse battery"}, testAudit)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.StartSession(ctx, u.ID, "192.0.2.1", "test-agent")
	if err != nil || len(id) < 32 {
		t.Fatalf("start: %q %v", id, err)
	}
	if row, err := d.SessionByID(ctx, id); err != nil || row.UserID != u.ID || row.IP != "192.0.2.1" || row.UserAgent != "test-agent" {
		t.Fatalf("stored session: %+v %v", row, err)
	}
	if err := s.TouchSession(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := s.AuditSignIn(ctx, db.Audit{Actor: "test", Action: "event.replay"}); err == nil || !strings.Contains(err.Error(), "not about signing in") {
		t.Errorf("an audit row of another domain: %v", err)
	}
	if err := s.SignOut(ctx, id, db.Audit{Actor: "test", Action: "session.logout"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.SessionByID(ctx, id); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("the signed-out session is still stored: %v", err)
	}
	for action, want := range map[string]int{"session.logout": 1, "event.replay": 0} {
		rows, _, err := d.ListAudit(ctx, db.AuditFilter{Action: action})
		if err != nil || len(rows) != want {
			t.Errorf("%s: %d audit rows, want %d (%v)", action, len(rows), want, err)
		}
	}
}
