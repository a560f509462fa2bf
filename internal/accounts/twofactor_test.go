package accounts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/dbtest"
	"github.com/tensfer-golive/dashboard/internal/secrets"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// t0 is 10 s into a 30-second step, so "now" and "now ± 30 s" are three distinct steps whatever
// the wall clock says: the tests never sit on a step boundary.
var t0 = time.Date(2026, 3, 2, 9, 0, 10, 0, time.UTC)

type tfFixture struct {
	t   *testing.T
	d   *db.DB
	dir string
	box *secrets.Box
	tf  *TwoFactor
	now time.Time
	u   db.User
}

// startLogin opens a second step for the fixture's user.
func (f *tfFixture) startLogin() string {
	f.t.Helper()
	token, err := f.tf.StartLogin(context.Background(), f.u)
	if err != nil {
		f.t.Fatal(err)
	}
	return token
}

// loginPending reports whether the second step of token can still be finished.
func (f *tfFixture) loginPending(token string) bool {
	f.t.Helper()
	ok, err := f.tf.LoginPending(context.Background(), token)
	if err != nil {
		f.t.Fatal(err)
	}
	return ok
}

func newTFFixture(t *testing.T) *tfFixture {
	t.Helper()
	ctx := context.Background()
	st := dbtest.New(t)
	dir := st.Dir
	d, err := st.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	key, _ := secrets.GenerateKey()
	box, _ := secrets.NewBox(key)
	f := &tfFixture{t: t, d: d, dir: dir, box: box, now: t0}
	f.tf = NewTwoFactor(TwoFactorConfig{DB: d, Box: box, Now: func() time.Time { return f.now }, Issuer: "Test dashboard"})
	f.u = f.addUser("ana@example.com", db.RoleAdmin)
	return f
}

func (f *tfFixture) addUser(email string, role db.Role) db.User {
	f.t.Helper()
	u, err := f.d.InsertUser(context.Background(), db.User{Email: email, Role: role, PasswordHash: "x"}, db.Audit{Actor: "test", Action: "user.create"})
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

// code is the TOTP code of secret at at, as the user's phone shows it.
func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wrongCode is a 6-digit code that is not the code of at or of the steps either side.
func wrongCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if c != code(t, secret, at) && c != code(t, secret, at.Add(-30*time.Second)) && c != code(t, secret, at.Add(30*time.Second)) {
			return c
		}
	}
	t.Fatal("no wrong code found")
	return ""
}

// enrol turns two-factor on for u at the fixture's time and returns the secret and the recovery
// codes.
func (f *tfFixture) enrol(u db.User) (string, []string) {
	f.t.Helper()
	ctx := context.Background()
	e, err := f.tf.BeginEnrolment(ctx, u)
	if err != nil {
		f.t.Fatal(err)
	}
	codes, err := f.tf.ConfirmEnrolment(ctx, u, code(f.t, e.Secret, f.now), db.Audit{Actor: "test", Action: "auth.totp_enabled"})
	if err != nil {
		f.t.Fatal(err)
	}
	return e.Secret, codes
}

// TestTOTPCodes walks one user's codes in time order: the clock is injected, codes are computed
// for chosen instants, and each answer depends on the previous ones (replay protection).
func TestTOTPCodes(t *testing.T) {
	f := newTFFixture(t)
	secret, _ := f.enrol(f.u)
	step := 30 * time.Second
	wrong := func(at time.Time) string { return wrongCode(t, secret, at) }
	tests := []struct {
		name string
		now  time.Time // the server's clock
		code string
		want error
	}{
		{"the enrolment's code does not count twice", t0, code(t, secret, t0), ErrCodeReused},
		{"a wrong code", t0, wrong(t0), ErrWrongCode},
		{"the next step's code (phone 30 s ahead)", t0, code(t, secret, t0.Add(step)), nil},
		{"that code again, in its own step", t0.Add(step), code(t, secret, t0.Add(step)), ErrCodeReused},
		{"the previous step's code (phone 30 s behind)", t0.Add(3 * step), code(t, secret, t0.Add(2*step)), nil},
		{"a code two steps old", t0.Add(5 * step), code(t, secret, t0.Add(3*step)), ErrWrongCode},
		{"a code two steps ahead", t0.Add(5 * step), code(t, secret, t0.Add(7*step)), ErrWrongCode},
		{"the current code, typed with a space", t0.Add(5 * step), code(t, secret, t0.Add(5*step))[:3] + " " + code(t, secret, t0.Add(5*step))[3:], nil},
		{"an older step after a newer one was used", t0.Add(6 * step), code(t, secret, t0.Add(5*step)), ErrCodeReused},
		{"nothing typed", t0.Add(6 * step), "", ErrCodeMissing},
		{"neither a code nor a recovery code", t0.Add(6 * step), "12345x", ErrCodeMissing},
		{"seven digits", t0.Add(6 * step), "1234567", ErrCodeMissing},
	}
	for _, tt := range tests {
		f.now = tt.now
		m, err := f.tf.Verify(context.Background(), f.u.ID, tt.code, db.Audit{Actor: "test"})
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
		if tt.want == nil && m != MethodTOTP {
			t.Errorf("%s: method %q", tt.name, m)
		}
	}
	// A user without two-factor has nothing to verify.
	other := f.addUser("bo@example.com", db.RoleViewer)
	if m, err := f.tf.Verify(context.Background(), other.ID, "", db.Audit{}); m != MethodNone || err != nil {
		t.Fatalf("user without two-factor: %q %v", m, err)
	}
}

func TestEnrolmentNeedsAConfirmedCode(t *testing.T) {
	f := newTFFixture(t)
	ctx := context.Background()
	e, err := f.tf.BeginEnrolment(ctx, f.u)
	if err != nil || !strings.HasPrefix(e.URL, "otpauth://totp/") || !strings.Contains(e.URL, "secret="+e.Secret) || len(e.Secret) != 32 {
		t.Fatalf("begin: %+v %v", e, err)
	}
	// Reloading the set-up within its time shows the same seed (the QR code already scanned stays good).
	if again, err := f.tf.BeginEnrolment(ctx, f.u); err != nil || again.Secret != e.Secret {
		t.Fatalf("resumed set-up has another secret: %v", err)
	}
	var problem validation.Problem
	if _, err := f.tf.ConfirmEnrolment(ctx, f.u, "abc", db.Audit{Actor: "test", Action: "auth.totp_enabled"}); !errors.As(err, &problem) {
		t.Fatalf("malformed confirmation: %v", err)
	}
	if _, err := f.tf.ConfirmEnrolment(ctx, f.u, code(t, e.Secret, t0.Add(-time.Hour)), db.Audit{Actor: "test", Action: "auth.totp_enabled"}); !errors.As(err, &problem) {
		t.Fatalf("wrong confirmation: %v", err)
	}
	if on, _, _ := f.tf.State(ctx, f.u.ID); on {
		t.Fatal("two-factor on without a confirmed code")
	}
	if m, err := f.tf.Verify(ctx, f.u.ID, code(t, e.Secret, f.now), db.Audit{}); m != MethodNone || err != nil {
		t.Fatalf("a pending seed is asked for at login: %q %v", m, err)
	}
	// Past its time the set-up is gone, and a new one has a new seed.
	f.now = t0.Add(EnrolmentTTL)
	if _, err := f.tf.ConfirmEnrolment(ctx, f.u, code(t, e.Secret, f.now), db.Audit{Actor: "test", Action: "auth.totp_enabled"}); !errors.Is(err, ErrEnrolmentExpired) {
		t.Fatalf("expired set-up: %v", err)
	}
	fresh, err := f.tf.BeginEnrolment(ctx, f.u)
	if err != nil || fresh.Secret == e.Secret {
		t.Fatalf("new set-up after expiry: same secret or %v", err)
	}
	codes, err := f.tf.ConfirmEnrolment(ctx, f.u, code(t, fresh.Secret, f.now), db.Audit{Actor: "test", Action: "auth.totp_enabled"})
	if err != nil || len(codes) != RecoveryCodeCount {
		t.Fatalf("confirm: %d codes, %v", len(codes), err)
	}
	if on, _, _ := f.tf.State(ctx, f.u.ID); !on {
		t.Fatal("two-factor off after a confirmed code")
	}
	if _, err := f.tf.BeginEnrolment(ctx, f.u); !errors.As(err, &problem) {
		t.Fatalf("set-up while on: %v", err)
	}
}

func TestRecoveryCodesAreSingleUseAndHashedAtRest(t *testing.T) {
	f := newTFFixture(t)
	ctx := context.Background()
	secret, codes := f.enrol(f.u)
	format := regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$`)
	seen := map[string]bool{}
	for _, c := range codes {
		if !format.MatchString(c) || seen[c] {
			t.Fatalf("recovery code %q: bad format or repeated", c)
		}
		seen[c] = true
	}
	// Typed in capitals, without dashes, with o for 0: still the code.
	typed := strings.ToUpper(strings.ReplaceAll(codes[0], "-", ""))
	typed = strings.ReplaceAll(typed, "0", "O")
	if m, err := f.tf.Verify(ctx, f.u.ID, typed, db.Audit{Actor: "test", After: map[string]any{"for": "test"}}); m != MethodRecovery || err != nil {
		t.Fatalf("first use: %q %v", m, err)
	}
	if _, err := f.tf.Verify(ctx, f.u.ID, codes[0], db.Audit{Actor: "test"}); !errors.Is(err, ErrWrongCode) {
		t.Fatalf("second use: %v", err)
	}
	if n, _ := f.tf.RecoveryCodesLeft(ctx, f.u.ID); n != RecoveryCodeCount-1 {
		t.Fatalf("%d codes left", n)
	}
	used, _, _ := f.d.ListAudit(ctx, db.AuditFilter{Action: "auth.recovery_code_used"})
	if len(used) != 1 || !strings.Contains(string(used[0].After), `"remaining":9`) {
		t.Fatalf("recovery code use audited as %+v", used)
	}
	// Another user's code is not this user's.
	bo := f.addUser("bo@example.com", db.RoleViewer)
	_, boCodes := f.enrol(bo)
	if _, err := f.tf.Verify(ctx, f.u.ID, boCodes[0], db.Audit{Actor: "test"}); !errors.Is(err, ErrWrongCode) {
		t.Fatalf("another user's code: %v", err)
	}
	// New codes replace every old one.
	fresh, err := f.tf.RegenerateRecoveryCodes(ctx, f.u.ID, db.Audit{Actor: "test", Action: "auth.recovery_codes_regenerated"})
	if err != nil || len(fresh) != RecoveryCodeCount {
		t.Fatal(err)
	}
	if _, err := f.tf.Verify(ctx, f.u.ID, codes[1], db.Audit{Actor: "test"}); !errors.Is(err, ErrWrongCode) {
		t.Fatalf("old code after regeneration: %v", err)
	}
	if m, err := f.tf.Verify(ctx, f.u.ID, fresh[1], db.Audit{Actor: "test"}); m != MethodRecovery || err != nil {
		t.Fatalf("new code: %v", err)
	}
	// At rest: neither the seed nor any code, in any form, is in the database file or its WAL.
	values := append(append(append([]string{secret}, codes...), fresh...), boCodes...)
	if f.d.Postgres() {
		assertNotStored(t, f.d, values)
	} else {
		assertNotInDataFiles(t, f.dir, values)
	}
}

// assertNotInDataFiles fails when any of values (or a code without its dashes) is in the
// database files of dir.
func assertNotInDataFiles(t *testing.T, dir string, values []string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, db.FileName+"*"))
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		lower := bytes.ToLower(b)
		for _, v := range values {
			for _, form := range []string{v, strings.ReplaceAll(v, "-", "")} {
				if bytes.Contains(lower, []byte(strings.ToLower(form))) {
					t.Fatalf("%s holds %q in plain text", filepath.Base(name), form)
				}
			}
		}
	}
}

// TestTOTPSeedSealedAndRotated: the seed is sealed for its user, and a master-key rotation
// re-encrypts it, so codes keep working under the new key alone.
func TestTOTPSeedSealedAndRotated(t *testing.T) {
	f := newTFFixture(t)
	ctx := context.Background()
	secret, _ := f.enrol(f.u)
	row, err := f.d.TOTPByUser(ctx, f.u.ID)
	if err != nil || strings.Contains(row.Sealed, secret) {
		t.Fatalf("seed row: %v", err)
	}
	if _, err := f.box.Open(row.Sealed, secrets.TOTPSeedContext(f.u.ID+1)); !errors.Is(err, secrets.ErrOpen) {
		t.Fatalf("seed opens in another user's context: %v", err)
	}
	newKey, _ := secrets.GenerateKey()
	newBox, _ := secrets.NewBox(newKey)
	if _, err := secrets.RotateMasterKey(ctx, f.d, f.box, newBox, db.Audit{Actor: "test", Action: "master_key.rotate"}); err != nil {
		t.Fatal(err)
	}
	rotated, _ := f.d.TOTPByUser(ctx, f.u.ID)
	if id, _ := secrets.KeyIDOf(rotated.Sealed); id != newKey.ID {
		t.Fatalf("seed still sealed with key %s", id)
	}
	f.now = t0.Add(time.Minute)
	onlyNew := NewTwoFactor(TwoFactorConfig{DB: f.d, Box: newBox, Now: func() time.Time { return f.now }})
	if m, err := onlyNew.Verify(ctx, f.u.ID, code(t, secret, f.now), db.Audit{}); m != MethodTOTP || err != nil {
		t.Fatalf("code after rotation: %q %v", m, err)
	}
	f.now = t0.Add(2 * time.Minute)
	if _, err := f.tf.Verify(ctx, f.u.ID, code(t, secret, f.now), db.Audit{}); err == nil {
		t.Fatal("the old key still opens the rotated seed")
	}
}

func TestLoginSecondStep(t *testing.T) {
	f := newTFFixture(t)
	ctx := context.Background()
	secret, codes := f.enrol(f.u)
	f.now = t0.Add(time.Minute)
	a := db.Audit{Actor: "anonymous", Action: "session.login"}

	// Wrong codes count down; the last one ends the step.
	token := f.startLogin()
	bad := wrongCode(t, secret, f.now)
	for left := LoginStepAttempts - 1; left > 0; left-- {
		res, err := f.tf.FinishLogin(ctx, token, bad, a)
		if !errors.Is(err, ErrWrongCode) || res.Left != left {
			t.Fatalf("wrong code: %v, %d left, want %d", err, res.Left, left)
		}
	}
	if !f.loginPending(token) {
		t.Fatal("step ended before its last attempt")
	}
	if _, err := f.tf.FinishLogin(ctx, token, bad, a); !errors.Is(err, ErrTooManyCodes) {
		t.Fatalf("last wrong code: %v", err)
	}
	if _, err := f.tf.FinishLogin(ctx, token, code(t, secret, f.now), a); !errors.Is(err, ErrLoginExpired) || f.loginPending(token) {
		t.Fatalf("the right code after the budget: %v", err)
	}

	// A step times out.
	token = f.startLogin()
	f.now = f.now.Add(LoginStepTTL)
	if _, err := f.tf.FinishLogin(ctx, token, code(t, secret, f.now), a); !errors.Is(err, ErrLoginExpired) {
		t.Fatalf("expired step: %v", err)
	}

	// The right code ends the step; the token is then worthless.
	token = f.startLogin()
	res, err := f.tf.FinishLogin(ctx, token, code(t, secret, f.now), a)
	if err != nil || res.Method != MethodTOTP || res.User.ID != f.u.ID {
		t.Fatalf("right code: %+v %v", res, err)
	}
	if _, err := f.tf.FinishLogin(ctx, token, codes[0], a); !errors.Is(err, ErrLoginExpired) {
		t.Fatalf("token reused: %v", err)
	}
	// A recovery code signs in too; an unknown token never does.
	token = f.startLogin()
	if res, err := f.tf.FinishLogin(ctx, token, codes[0], a); err != nil || res.Method != MethodRecovery {
		t.Fatalf("recovery code: %+v %v", res, err)
	}
	if _, err := f.tf.FinishLogin(ctx, auth.RandomID(32), codes[1], a); !errors.Is(err, ErrLoginExpired) {
		t.Fatalf("unknown token: %v", err)
	}
	// A user disabled during the step is not signed in.
	token = f.startLogin()
	other := f.addUser("admin2@example.com", db.RoleAdmin)
	disabled := true
	if _, err := f.d.UpdateUser(ctx, f.u.ID, db.UserChange{Disabled: &disabled}, db.Audit{Actor: "user:" + strconv.FormatInt(other.ID, 10), Action: "user.disable"}); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(time.Minute)
	if _, err := f.tf.FinishLogin(ctx, token, code(t, secret, f.now), a); !errors.Is(err, ErrLoginExpired) {
		t.Fatalf("disabled user: %v", err)
	}
}

func TestTwoFactorRequirementAndReset(t *testing.T) {
	f := newTFFixture(t)
	ctx := context.Background()
	admin := f.u
	bo := f.addUser("bo@example.com", db.RoleViewer)
	f.enrol(bo)
	var problem validation.Problem

	if changed, err := f.tf.SetRequired(ctx, true, db.Audit{Actor: "test", Action: "settings.two_factor_required"}); !changed || err != nil {
		t.Fatalf("require: %v %v", changed, err)
	}
	if changed, _ := f.tf.SetRequired(ctx, true, db.Audit{Actor: "test", Action: "settings.two_factor_required"}); changed {
		t.Fatal("requiring twice changed something")
	}
	if rows, _, _ := f.d.ListAudit(ctx, db.AuditFilter{Action: "settings.two_factor_required"}); len(rows) != 1 {
		t.Fatalf("%d audit rows for one change", len(rows))
	}
	if on, required, _ := f.tf.State(ctx, admin.ID); on || !required {
		t.Fatalf("admin state: on=%v required=%v", on, required)
	}
	if err := f.tf.Disable(ctx, bo.ID, db.Audit{Actor: "test", Action: "auth.totp_disabled"}); !errors.As(err, &problem) {
		t.Fatalf("turning off while required: %v", err)
	}
	// An admin resets another user's second factor (and ends their sessions), never their own.
	if err := f.d.InsertSession(ctx, "bo-session", db.Session{UserID: bo.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.tf.Reset(ctx, bo.ID, bo.ID, db.Audit{Actor: "test", Action: "auth.totp_reset"}); !errors.As(err, &problem) {
		t.Fatalf("own reset: %v", err)
	}
	if _, err := f.tf.Reset(ctx, admin.ID, bo.ID, db.Audit{Actor: "test", Action: "auth.totp_reset"}); err != nil {
		t.Fatal(err)
	}
	if on, _, _ := f.tf.State(ctx, bo.ID); on {
		t.Fatal("still on after a reset")
	}
	if n, _ := f.d.CountUserSessions(ctx, bo.ID); n != 0 {
		t.Fatalf("%d sessions left after a reset", n)
	}
	if _, err := f.tf.Reset(ctx, admin.ID, bo.ID, db.Audit{Actor: "test", Action: "auth.totp_reset"}); !errors.As(err, &problem) {
		t.Fatalf("resetting nothing: %v", err)
	}
	// Once not required, a user turns their own off.
	f.tf.SetRequired(ctx, false, db.Audit{Actor: "test", Action: "settings.two_factor_required"})
	f.enrol(bo)
	if err := f.tf.Disable(ctx, bo.ID, db.Audit{Actor: "test", Action: "auth.totp_disabled"}); err != nil {
		t.Fatal(err)
	}
	if on, _, _ := f.tf.State(ctx, bo.ID); on {
		t.Fatal("still on after turning off")
	}
}

// TestCodeLimitIsPerAccount: wrong codes count per account, whichever sign-in, re-check or kind
// of code they come from; the 5th locks the factor (even the right code is refused, unchecked),
// locks grow, each is audited once, parallel guesses cannot pass the limit, and a right code
// after a lock starts afresh.
func TestCodeLimitIsPerAccount(t *testing.T) {
	f := newTFFixture(t)
	ctx := context.Background()
	secret, codes := f.enrol(f.u)
	f.now = t0.Add(time.Minute)
	a := db.Audit{Actor: "anonymous", Action: "session.login"}
	locks := func() []db.AuditEntry {
		rows, _, err := f.d.ListAudit(ctx, db.AuditFilter{Action: "auth.second_factor_locked", Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	bad := wrongCode(t, secret, f.now)
	badRecovery := "zzzz-zzzz-zzzz-zzzz"
	// Two sign-ins, a re-check and a wrong recovery code: five wrong codes of one account.
	for i, try := range []func() error{
		func() error { _, err := f.tf.FinishLogin(ctx, f.startLogin(), bad, a); return err },
		func() error { _, err := f.tf.FinishLogin(ctx, f.startLogin(), badRecovery, a); return err },
		func() error { _, err := f.tf.Verify(ctx, f.u.ID, bad, a); return err },
		func() error { _, err := f.tf.FinishLogin(ctx, f.startLogin(), bad, a); return err },
	} {
		if err := try(); !errors.Is(err, ErrWrongCode) {
			t.Fatalf("wrong code %d: %v", i+1, err)
		}
	}
	if len(locks()) != 0 {
		t.Fatal("locked before the limit")
	}
	if _, err := f.tf.Verify(ctx, f.u.ID, bad, a); !errors.Is(err, ErrCodesLocked) {
		t.Fatalf("the 5th wrong code: %v", err)
	}
	rows := locks()
	if len(rows) != 1 || rows[0].Target != "user:"+fmt.Sprint(f.u.ID) || !strings.Contains(string(rows[0].After), `"locked_for_s":900`) {
		t.Fatalf("the lock's audit: %+v", rows)
	}
	// Locked: the right code and a recovery code are refused unchecked, and audit nothing more.
	for _, c := range []string{code(t, secret, f.now), codes[0]} {
		if _, err := f.tf.FinishLogin(ctx, f.startLogin(), c, a); !errors.Is(err, ErrCodesLocked) {
			t.Fatalf("a right code while locked: %v", err)
		}
	}
	if left, _ := f.d.RecoveryCodesLeft(ctx, f.u.ID); left != RecoveryCodeCount || len(locks()) != 1 {
		t.Fatalf("a locked factor used a recovery code (%d left) or audited again", left)
	}

	// After the lock, 5 more guesses lock it for twice as long; parallel ones cannot pass 5.
	f.now = f.now.Add(CodeLimit.Lock)
	bad = wrongCode(t, secret, f.now)
	var checked atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := f.tf.Verify(ctx, f.u.ID, bad, a); errors.Is(err, ErrWrongCode) {
				checked.Add(1)
			}
		})
	}
	wg.Wait()
	if n := checked.Load(); n > int32(CodeLimit.Attempts-1) {
		t.Fatalf("%d parallel wrong codes were checked, limit %d", n, CodeLimit.Attempts)
	}
	if rows := locks(); len(rows) != 2 || !strings.Contains(string(rows[0].After), `"locked_for_s":1800`) {
		t.Fatalf("the second lock: %+v", rows)
	}

	// Once it ends, a right code works and forgets the earlier locks.
	f.now = f.now.Add(2 * CodeLimit.Lock)
	if m, err := f.tf.Verify(ctx, f.u.ID, code(t, secret, f.now), a); err != nil || m != MethodTOTP {
		t.Fatalf("the right code after the lock: %q %v", m, err)
	}
	bad = wrongCode(t, secret, f.now)
	for range CodeLimit.Attempts {
		_, _ = f.tf.Verify(ctx, f.u.ID, bad, a)
	}
	if rows := locks(); len(rows) != 3 || !strings.Contains(string(rows[0].After), `"locked_for_s":900`) {
		t.Fatalf("a lock after a right code: %+v", rows)
	}
}

func TestCodeLimitLocksGrowToADay(t *testing.T) {
	for n, want := range []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 16 * time.Hour, 24 * time.Hour, 24 * time.Hour} {
		if got := CodeLimit.LockFor(n); got != want {
			t.Errorf("lock after %d: %v, want %v", n, got, want)
		}
	}
}

// assertNotStored fails when any of values (or a code without its dashes) is in a row of the
// database (on PostgreSQL, whose files are not the test's to read).
func assertNotStored(t *testing.T, d *db.DB, values []string) {
	t.Helper()
	all := strings.Join(dbtest.StoredRows(t, d), "\n")
	for _, v := range values {
		for _, form := range []string{v, strings.ReplaceAll(v, "-", "")} {
			if strings.Contains(all, form) {
				t.Fatalf("%q is stored in clear", form)
			}
		}
	}
}
