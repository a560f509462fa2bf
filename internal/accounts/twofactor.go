package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/secrets"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// Two-factor login with TOTP (RFC 6238 with the parameters every authenticator app supports:
// SHA-1, 6 digits, 30-second steps).
const (
	totpPeriod = 30
	// totpSkew is how many steps either side of now a code may come from, for a phone whose clock
	// is a little off.
	totpSkew = 1
	// EnrolmentTTL is how long a set-up (QR code shown, no code confirmed yet) stays open.
	EnrolmentTTL = 15 * time.Minute
	// LoginStepTTL is how long the second step of a login waits for its code after the password.
	LoginStepTTL = 5 * time.Minute
	// LoginStepAttempts is how many codes one second step accepts before the password is needed
	// again: fewer than CodeLimit allows the account, so a person who mistypes in one sign-in is
	// asked for the password again before the factor locks.
	LoginStepAttempts = 4
	// RecoveryCodeCount is how many recovery codes a user gets at a time.
	RecoveryCodeCount = 10
)

// CodeLimit is the per-account limit on wrong second-factor codes, TOTP and recovery codes alike,
// whatever sign-in, re-check, address or instance they come from: 5 wrong codes in a row lock the
// factor for 15 minutes, each further lock before a right code lasts twice as long, up to a day.
// So an attacker who has the password gets 5 guesses, then 5 more after 15 minutes, 5 after 30 more,
// and so on: at most 10 in the first hour and 40 in the first day. Every lock is audited
// (auth.second_factor_locked), which raises an alert.
var CodeLimit = db.CodeLimit{Attempts: 5, Lock: 15 * time.Minute, MaxLock: 24 * time.Hour}

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// Answers of the second factor, said for a person.
var (
	ErrCodeMissing      error = validation.Problem("enter the 6-digit code from your authenticator app, or one of your recovery codes")
	ErrWrongCode        error = validation.Problem("the two-factor code was incorrect")
	ErrCodeReused       error = validation.Problem("that code was already used; wait for the next one from your app")
	ErrEnrolmentExpired error = validation.Problem("this two-factor set-up has expired; start again")
	ErrLoginExpired     error = validation.Problem("your sign-in has expired; enter your email and password again")
	ErrTooManyCodes     error = validation.Problem("too many wrong codes; enter your email and password again")
	ErrCodesLocked      error = validation.Problem("too many wrong two-factor codes for this account, so codes are refused for a while; try again later, or ask an admin to reset your two-factor authentication")
)

// Method is how a second factor was proven.
type Method string

// The ways to prove the second factor. MethodNone means the user has no second factor.
const (
	MethodNone     Method = ""
	MethodTOTP     Method = "totp"
	MethodRecovery Method = "recovery_code"
)

// TwoFactorConfig is what a TwoFactor needs.
type TwoFactorConfig struct {
	DB  *db.DB
	Box *secrets.Box // seals the TOTP seeds
	Now func() time.Time
	// Issuer names the dashboard in authenticator apps, e.g. "Tensfer go-live (dash.example.com)".
	Issuer string
}

// TwoFactor applies the rules of the second factor: enrolment with a confirmed code, codes that
// count once (replay), recovery codes stored hashed and usable once, the second step of a login,
// and the admins' requirement. Seeds are sealed with the master key and never leave it except to
// the user enrolling.
type TwoFactor struct {
	db     *db.DB
	box    *secrets.Box
	now    func() time.Time
	issuer string
}

// NewTwoFactor returns a TwoFactor.
func NewTwoFactor(cfg TwoFactorConfig) *TwoFactor {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "Tensfer go-live"
	}
	return &TwoFactor{db: cfg.DB, box: cfg.Box, now: cfg.Now, issuer: cfg.Issuer}
}

// State reports whether the user has two-factor on and whether admins require it for everyone.
func (t *TwoFactor) State(ctx context.Context, userID int64) (on, required bool, err error) {
	return t.db.TwoFactorStatus(ctx, userID)
}

// RecoveryCodesLeft counts the user's unused recovery codes.
func (t *TwoFactor) RecoveryCodesLeft(ctx context.Context, userID int64) (int, error) {
	return t.db.RecoveryCodesLeft(ctx, userID)
}

// Enrolment is what a user enrolling copies into their authenticator app: the secret (for typing
// in) and the otpauth:// URL (for the QR code). Both are secrets: never log or store them.
type Enrolment struct {
	Secret string
	URL    string
}

// BeginEnrolment starts (or, within EnrolmentTTL, resumes) setting up the user's second factor:
// a new seed is sealed and kept as pending until ConfirmEnrolment. A user who has two-factor on
// already gets a validation.Problem.
func (t *TwoFactor) BeginEnrolment(ctx context.Context, u db.User) (Enrolment, error) {
	row, err := t.db.TOTPByUser(ctx, u.ID)
	switch {
	case err == nil && row.Enabled():
		return Enrolment{}, validation.Problem("two-factor authentication is already on for your account")
	case err == nil && t.now().Sub(row.CreatedAt) < EnrolmentTTL:
		return t.enrolment(u, row)
	case err != nil && !errors.Is(err, db.ErrNotFound):
		return Enrolment{}, err
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: t.issuer, AccountName: u.Email, Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return Enrolment{}, fmt.Errorf("accounts: generate totp seed: %w", err)
	}
	sealed, err := t.box.Seal([]byte(key.Secret()), secrets.TOTPSeedContext(u.ID))
	if err != nil {
		return Enrolment{}, err
	}
	if err := t.db.PutPendingTOTP(ctx, u.ID, sealed, t.now()); errors.Is(err, db.ErrConflict) {
		return Enrolment{}, validation.Problem("two-factor authentication is already on for your account")
	} else if err != nil {
		return Enrolment{}, err
	}
	return Enrolment{Secret: key.Secret(), URL: key.URL()}, nil
}

// PendingEnrolment returns the user's set-up in progress again (to show it after a wrong code);
// ErrEnrolmentExpired when there is none.
func (t *TwoFactor) PendingEnrolment(ctx context.Context, u db.User) (Enrolment, error) {
	row, err := t.pending(ctx, u.ID)
	if err != nil {
		return Enrolment{}, err
	}
	return t.enrolment(u, row)
}

func (t *TwoFactor) pending(ctx context.Context, userID int64) (db.TOTP, error) {
	row, err := t.db.TOTPByUser(ctx, userID)
	if errors.Is(err, db.ErrNotFound) || err == nil && (row.Enabled() || t.now().Sub(row.CreatedAt) >= EnrolmentTTL) {
		return db.TOTP{}, ErrEnrolmentExpired
	}
	return row, err
}

func (t *TwoFactor) enrolment(u db.User, row db.TOTP) (Enrolment, error) {
	secret, err := t.seed(row)
	if err != nil {
		return Enrolment{}, err
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		return Enrolment{}, fmt.Errorf("accounts: stored totp seed: %w", err)
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: t.issuer, AccountName: u.Email, Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, Secret: raw})
	if err != nil {
		return Enrolment{}, fmt.Errorf("accounts: totp url: %w", err)
	}
	return Enrolment{Secret: key.Secret(), URL: key.URL()}, nil
}

func (t *TwoFactor) seed(row db.TOTP) (string, error) {
	b, err := t.box.Open(row.Sealed, secrets.TOTPSeedContext(row.UserID))
	if err != nil {
		return "", fmt.Errorf("accounts: open totp seed of user %d: %w", row.UserID, err)
	}
	return string(b), nil
}

// ConfirmEnrolment turns two-factor on once the user typed a current code of the pending seed,
// ends every session of the user (the caller starts a fresh one for this browser) and returns the
// new recovery codes, which are shown once: only their hashes are kept. a.Action names it.
func (t *TwoFactor) ConfirmEnrolment(ctx context.Context, u db.User, code string, a db.Audit) ([]string, error) {
	row, err := t.pending(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	kind, code := parseCode(code)
	if kind != MethodTOTP {
		return nil, validation.Problem("enter the 6-digit code your authenticator app shows for this account")
	}
	secret, err := t.seed(row)
	if err != nil {
		return nil, err
	}
	step, ok := matchStep(secret, code, t.now())
	if !ok {
		return nil, validation.Problem("that code does not match; check that your phone's clock is right and type the newest code")
	}
	codes := newRecoveryCodes()
	if err := t.db.EnableTOTP(ctx, u.ID, step, codes, a); errors.Is(err, db.ErrNotFound) {
		return nil, ErrEnrolmentExpired
	} else if err != nil {
		return nil, err
	}
	return codes, nil
}

// Verify checks a second factor of the user: a current TOTP code (each step's code counts once)
// or an unused recovery code, which is then used up and audited with a (its Action is set here).
// Every code counts against the account's CodeLimit; while the factor is locked the answer is
// ErrCodesLocked, unchecked, and the lock itself is audited with a.
// It answers MethodNone and no error for a user without two-factor on.
func (t *TwoFactor) Verify(ctx context.Context, userID int64, input string, a db.Audit) (Method, error) {
	row, err := t.db.TOTPByUser(ctx, userID)
	if errors.Is(err, db.ErrNotFound) || err == nil && !row.Enabled() {
		return MethodNone, nil
	}
	if err != nil {
		return MethodNone, err
	}
	kind, code := parseCode(input)
	if kind == MethodNone {
		return MethodNone, ErrCodeMissing
	}
	// The attempt is taken from the account's budget before the check, so parallel guesses
	// cannot pass CodeLimit (db.TakeCodeAttempt).
	if until, err := t.db.TakeCodeAttempt(ctx, userID, CodeLimit, t.now()); err != nil {
		return MethodNone, err
	} else if !until.IsZero() {
		return MethodNone, ErrCodesLocked
	}
	m, err := t.check(ctx, row, kind, code, a)
	var problem validation.Problem
	switch {
	case err == nil:
		return m, t.db.CodeAccepted(ctx, userID)
	case errors.As(err, &problem):
		if until, err := t.db.CodeRefused(ctx, userID, CodeLimit, t.now(), a); err != nil {
			return MethodNone, err
		} else if !until.IsZero() {
			return MethodNone, ErrCodesLocked
		}
	}
	return MethodNone, err
}

// check checks a code of the kind parseCode found against the user's factor: the TOTP seed of row
// or their unused recovery codes (a use is audited with a).
func (t *TwoFactor) check(ctx context.Context, row db.TOTP, kind Method, code string, a db.Audit) (Method, error) {
	if kind == MethodRecovery {
		a.Action = "auth.recovery_code_used"
		if used, err := t.db.UseRecoveryCode(ctx, row.UserID, code, a); err != nil {
			return MethodNone, err
		} else if !used {
			return MethodNone, ErrWrongCode
		}
		return MethodRecovery, nil
	}
	secret, err := t.seed(row)
	if err != nil {
		return MethodNone, err
	}
	step, ok := matchStep(secret, code, t.now())
	if !ok {
		return MethodNone, ErrWrongCode
	}
	if fresh, err := t.db.UseTOTPStep(ctx, row.UserID, step); err != nil {
		return MethodNone, err
	} else if !fresh {
		return MethodNone, ErrCodeReused
	}
	return MethodTOTP, nil
}

// RegenerateRecoveryCodes replaces every recovery code of the user with new ones, returned to be
// shown once. a.Action names it.
func (t *TwoFactor) RegenerateRecoveryCodes(ctx context.Context, userID int64, a db.Audit) ([]string, error) {
	codes := newRecoveryCodes()
	if err := t.db.ReplaceRecoveryCodes(ctx, userID, codes, a); errors.Is(err, db.ErrNotFound) {
		return nil, validation.Problem("two-factor authentication is not on for your account")
	} else if err != nil {
		return nil, err
	}
	return codes, nil
}

// Disable turns the user's own second factor off, unless admins require it for everyone.
func (t *TwoFactor) Disable(ctx context.Context, userID int64, a db.Audit) error {
	_, required, err := t.db.TwoFactorStatus(ctx, userID)
	if err != nil {
		return err
	}
	if required {
		return validation.Problem("an admin requires two-factor authentication for everyone, so it cannot be turned off; to move it to a new phone, ask an admin to reset it")
	}
	if err := t.db.DeleteTOTP(ctx, userID, false, a); errors.Is(err, db.ErrNotFound) {
		return validation.Problem("two-factor authentication is not on for your account")
	} else if err != nil {
		return err
	}
	return nil
}

// Reset removes another user's second factor (a lost phone) and ends their sessions; they enrol
// again, at their next sign-in when it is required. Nobody resets their own: that is Disable,
// which asks for a code.
func (t *TwoFactor) Reset(ctx context.Context, actorID, userID int64, a db.Audit) (db.User, error) {
	u, err := t.db.UserByID(ctx, userID)
	if err != nil {
		return db.User{}, err
	}
	if actorID == userID {
		return u, validation.Problem("you cannot reset your own two-factor authentication; turn it off under Settings, Your account")
	}
	if err := t.db.DeleteTOTP(ctx, userID, true, a); errors.Is(err, db.ErrNotFound) {
		return u, validation.Problem(u.Email + " has no two-factor authentication to reset")
	} else if err != nil {
		return u, err
	}
	return u, nil
}

// SetRequired turns the requirement that everyone signs in with two-factor on or off. It reports
// whether the setting changed (an unchanged one writes no audit row).
func (t *TwoFactor) SetRequired(ctx context.Context, on bool, a db.Audit) (bool, error) {
	return t.db.SetTwoFactorRequired(ctx, on, a)
}

// StartLogin opens the second step of a login for u, whose password was right, and returns the
// token the browser keeps (in a cookie) to finish it within LoginStepTTL. The step is stored
// (under the token's SHA-256), so any instance can finish it.
func (t *TwoFactor) StartLogin(ctx context.Context, u db.User) (string, error) {
	token := auth.RandomID(32)
	if err := t.db.InsertPendingLogin(ctx, loginStepKey(token), u.ID, t.now().Add(LoginStepTTL), LoginStepAttempts); err != nil {
		return "", err
	}
	return token, nil
}

// loginStepKey is what the store keeps of a second step's token.
func loginStepKey(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// LoginPending reports whether token names a second step that can still be finished.
func (t *TwoFactor) LoginPending(ctx context.Context, token string) (bool, error) {
	return t.db.PendingLoginLive(ctx, loginStepKey(token), t.now())
}

// LoginResult is a finished (or refused) second step.
type LoginResult struct {
	User   db.User
	Method Method
	Left   int // codes the step still accepts after a refusal
}

// FinishLogin checks the code of the second step named by token. On success the step is over and
// the user may be signed in. A refusal costs one of LoginStepAttempts; after the last, or past
// LoginStepTTL, the step is gone (ErrTooManyCodes, ErrLoginExpired) and the password is needed
// again. A recovery code used here is audited with a.
func (t *TwoFactor) FinishLogin(ctx context.Context, token, code string, a db.Audit) (LoginResult, error) {
	key := loginStepKey(token)
	// The code is taken from the step's budget before the check, so parallel guesses, on any
	// instance, cannot exceed it.
	userID, left, err := t.db.TakePendingLoginCode(ctx, key, t.now())
	if errors.Is(err, db.ErrNotFound) {
		return LoginResult{}, ErrLoginExpired
	}
	if err != nil {
		return LoginResult{}, err
	}
	u, err := t.db.UserByID(ctx, userID)
	if errors.Is(err, db.ErrNotFound) || err == nil && u.Disabled() {
		return LoginResult{}, t.endLogin(ctx, key, ErrLoginExpired)
	}
	if err != nil {
		return LoginResult{}, err
	}
	a.Actor = "user:" + fmt.Sprint(u.ID) + " (" + u.Email + ")"
	a.After = map[string]any{"for": "session.login"}
	m, err := t.Verify(ctx, userID, code, a)
	if err != nil {
		var problem validation.Problem
		if !errors.As(err, &problem) {
			return LoginResult{}, err
		}
		if errors.Is(err, ErrCodesLocked) {
			return LoginResult{User: u}, t.endLogin(ctx, key, err)
		}
		if left == 0 {
			return LoginResult{User: u}, t.endLogin(ctx, key, ErrTooManyCodes)
		}
		return LoginResult{User: u, Left: left}, err
	}
	if err := t.db.DeletePendingLogin(ctx, key); err != nil {
		return LoginResult{}, err
	}
	return LoginResult{User: u, Method: m}, nil
}

// endLogin ends the second step stored under key, answering why (or the store's error).
func (t *TwoFactor) endLogin(ctx context.Context, key []byte, why error) error {
	if err := t.db.DeletePendingLogin(ctx, key); err != nil {
		return err
	}
	return why
}

// matchStep returns the 30-second step, within totpSkew of now, whose code is code.
func matchStep(secret, code string, now time.Time) (int64, bool) {
	cur := now.Unix() / totpPeriod
	var step int64
	found := false
	for s := cur - totpSkew; s <= cur+totpSkew; s++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*totpPeriod, 0), totpOpts)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			step, found = s, true
		}
	}
	return step, found
}

// recoveryAlphabet is Crockford's base32 in lower case: no i, l, o or u, so a code read aloud or
// copied by hand is not misread.
const recoveryAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// recoveryCodeLen is the characters of a recovery code: 16 of 32 symbols, 80 random bits, shown
// as four groups of four.
const recoveryCodeLen = 16

// newRecoveryCodes makes RecoveryCodeCount random codes, grouped for reading: "7k2m-x9qd-…".
func newRecoveryCodes() []string {
	codes := make([]string, RecoveryCodeCount)
	for i := range codes {
		b := make([]byte, recoveryCodeLen)
		if _, err := rand.Read(b); err != nil {
			panic("accounts: crypto/rand failed: " + err.Error()) // NB: rand.Read never fails on Linux
		}
		var sb strings.Builder
		for j, c := range b {
			if j > 0 && j%4 == 0 {
				sb.WriteByte('-')
			}
			sb.WriteByte(recoveryAlphabet[c&31])
		}
		codes[i] = sb.String()
	}
	return codes
}

// parseCode reads what a person typed as a second factor: six digits (spaces allowed) are a TOTP
// code; otherwise a recovery code, in any case, with or without dashes and spaces, where o, i and
// l are read as 0, 1 and 1. It returns the kind and the code in its stored form (MethodNone: it is
// neither).
func parseCode(in string) (Method, string) {
	var sb strings.Builder
	for _, r := range strings.ToLower(in) {
		switch r {
		case ' ', '-', '\t':
			continue
		case 'o':
			r = '0'
		case 'i', 'l':
			r = '1'
		}
		if !strings.ContainsRune(recoveryAlphabet, r) || sb.Len() > recoveryCodeLen {
			return MethodNone, ""
		}
		sb.WriteRune(r)
	}
	s := sb.String()
	switch {
	case len(s) == 6 && strings.Trim(s, "0123456789") == "":
		return MethodTOTP, s
	case len(s) == recoveryCodeLen:
		var g strings.Builder
		for i := 0; i < len(s); i += 4 {
			if i > 0 {
				g.WriteByte('-')
			}
			g.WriteString(s[i : i+4])
		}
		return MethodRecovery, g.String()
	}
	return MethodNone, ""
}
