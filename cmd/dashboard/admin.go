package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/rollout"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// openForCLI opens the database of an administrative subcommand: PostgreSQL at databaseURL when
// it is set, else the SQLite file in dir (which also holds the master key unless the environment
// gives it).
func openForCLI(ctx context.Context, dir, databaseURL string, getenv func(string) string) (*db.DB, error) {
	key, err := masterKeyFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	d, _, _, err := openData(ctx, dir, databaseURL, key, "")
	return d, err
}

// storeFlags are --data and --database-url, which every command that opens the database takes.
type storeFlags struct{ dir, url string }

func (s *storeFlags) bind(f *envFlags) {
	dataFlag(f, &s.dir)
	databaseURLFlag(f, &s.url)
}

// parse parses args and completes --database-url (see resolveDatabaseURL).
func (s *storeFlags) parse(f *envFlags, args []string) error {
	if err := f.parse(args); err != nil {
		return err
	}
	return resolveDatabaseURL(f, &s.url)
}

func (s *storeFlags) open(ctx context.Context, getenv func(string) string) (*db.DB, error) {
	return openForCLI(ctx, s.dir, s.url, getenv)
}

// masterKeyFromEnv is the master key given by DASHBOARD_MASTER_KEY or the file named by
// DASHBOARD_MASTER_KEY_FILE; "" means the data directory's master.key.
func masterKeyFromEnv(getenv func(string) string) (string, error) {
	if key := getenv("DASHBOARD_MASTER_KEY"); key != "" {
		return key, nil
	}
	return secretFromFile(getenv, "DASHBOARD_MASTER_KEY")
}

// takeDataDir creates the data directory (0700) if needed and takes its lock, for a command that
// must not run beside a server; what says what the holder must stop for.
func takeDataDir(dir, what string) (release func(), err error) {
	if err := checkDataDir(dir, nil); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	return lockData(dir, what)
}

// pgBackupAdvice refuses backup or restore on PostgreSQL, whose own tools do it consistently
// while instances keep running, and says which to use.
func pgBackupAdvice(cmd, tool string) string {
	return fmt.Sprintf("dashboard %s works on the SQLite file; with --database-url use PostgreSQL's own tools (%s ...), as docs/operations.md shows under \"Backup and restore on PostgreSQL\"", cmd, tool)
}

func cliAudit(action string) db.Audit { return db.Audit{Actor: "cli", Action: action} }

// fieldMessages joins the messages of errs for the named fields, in that order.
func fieldMessages(errs validation.Errors, fields ...string) string {
	var msgs []string
	for _, f := range fields {
		if m := errs[f]; m != "" {
			msgs = append(msgs, m)
		}
	}
	return strings.Join(msgs, "; ")
}

// userAdd adds a user; the password is the first line of stdin so it never shows in the
// process list or shell history.
func userAdd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	var st storeFlags
	var email, name, role string
	f := newFlags("user add", stderr, getenv)
	st.bind(f)
	f.fs.StringVar(&email, "email", "", "email address (required)")
	f.fs.StringVar(&name, "name", "", "display name")
	f.fs.StringVar(&role, "role", "", "admin, operator or viewer (required)")
	if err := st.parse(f, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	r, err := db.ParseRole(role)
	if err != nil {
		return usageError{"--role: " + err.Error()}
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read password from stdin: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		return usageError{"no password on stdin; e.g.: printf '%s\\n' \"$PASSWORD\" | dashboard user add --email " + email + " --role " + role}
	}
	// Check the input before touching the data directory.
	if errs := accounts.ValidateNewUser(strings.TrimSpace(email), name, password); len(errs) > 0 {
		return usageError{fieldMessages(errs, "email", "name", "password")}
	}
	d, err := st.open(ctx, getenv)
	if err != nil {
		return err
	}
	defer d.Close()
	u, err := accounts.New(accounts.Config{DB: d}).CreateUser(ctx, accounts.NewUser{Email: email, Name: name, Role: string(r), Password: password}, cliAudit("user.create"))
	var errs validation.Errors
	if errors.As(err, &errs) {
		return errors.New(fieldMessages(errs, "email", "name", "password", "role"))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added user %d: %s (%s)\n", u.ID, u.Email, u.Role)
	return nil
}

// tokenCreate creates an API token and prints it once, alone on the last line of stdout.
func tokenCreate(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var st storeFlags
	var name, scopeList string
	f := newFlags("token create", stderr, getenv)
	st.bind(f)
	f.fs.StringVar(&name, "name", "", "what the token is for, e.g. checkout-service (required)")
	f.fs.StringVar(&scopeList, "scopes", "", "comma-separated scopes: "+strings.Join(auth.AllScopes, ", "))
	var expires, owner string
	f.fs.StringVar(&expires, "expires", "", "expire the token after this long, e.g. 30d or 720h (default: never)")
	f.fs.StringVar(&owner, "owner", "", "the email of the admin who owns the token: it dies with their admin access (default: a service token, owned by nobody, revoked in Settings)")
	if err := st.parse(f, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	name = strings.TrimSpace(name)
	if err := accounts.ValidateTokenName(name); err != nil {
		return usageError{"--name: " + err.Error()}
	}
	scopes, err := auth.ParseScopes(scopeList)
	if err != nil {
		return usageError{"--scopes: " + err.Error()}
	}
	var life time.Duration
	if expires != "" {
		if life, err = rollout.ParseDuration(expires); err != nil || life < time.Hour || life > accounts.MaxTokenLife {
			return usageError{"--expires: give a duration from 1h to 366d, e.g. 30d"}
		}
	}
	d, err := st.open(ctx, getenv)
	if err != nil {
		return err
	}
	defer d.Close()
	svc := accounts.New(accounts.Config{DB: d})
	createdBy, kind := accounts.ServiceOwner, "service token"
	if owner != "" {
		if createdBy, err = svc.TokenOwner(ctx, owner); err != nil {
			return usageError{"--owner: " + err.Error()}
		}
		kind = "token owned by " + createdBy
	}
	secret, t, err := svc.CreateToken(ctx, name, scopes, life, createdBy, cliAudit("token.create"))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %s %d %q with scopes %s; it is shown only this once:\n%s\n", kind, t.ID, t.Name, strings.Join(scopes, ","), secret)
	return nil
}

// backup writes a consistent, fsync'd copy of the database while the server may keep running.
func backup(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var st storeFlags
	var out string
	f := newFlags("backup", stderr, getenv)
	st.bind(f)
	f.fs.StringVar(&out, "out", "", "file to write (must not exist)")
	if err := st.parse(f, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if out == "" {
		return usageError{"--out FILE is required"}
	}
	if st.url != "" {
		return usageError{pgBackupAdvice("backup", "pg_dump -Fc --no-owner")}
	}
	d, err := st.open(ctx, getenv)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Backup(ctx, out); err != nil {
		return err
	}
	if err := d.InsertAudit(ctx, db.Audit{Actor: "cli", Action: "backup.create", Target: "file:" + out}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote backup %s (secrets inside stay encrypted under master key; keep the key separately)\n", out)
	return nil
}

// auditVerify walks the audit log's hash chain. It prints the head link, which an operator can
// record elsewhere (a rewrite of the whole tail would change it), and fails when a row was changed
// or removed, when no row carries a hash, or when the chain no longer holds a head given with
// --head SEQ:HASH or in a --heads file (the heads the dashboard publishes to its log, /metrics and
// alert channels).
func auditVerify(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var st storeFlags
	var headsFile string
	var heads headList
	f := newFlags("audit verify", stderr, getenv)
	st.bind(f)
	f.fs.Var(&heads, "head", "a published head SEQ:HASH the chain must still hold (repeatable)")
	f.fs.StringVar(&headsFile, "heads", "", "a file of published heads, one SEQ:HASH per line (log lines that carry one will do)")
	if err := st.parse(f, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if headsFile != "" {
		more, err := readHeads(headsFile)
		if err != nil {
			return err
		}
		heads = append(heads, more...)
	}
	d, err := st.open(ctx, getenv)
	if err != nil {
		return err
	}
	defer d.Close()
	rep, err := d.VerifyAudit(ctx, heads...)
	if err != nil {
		return err
	}
	var problems []string
	if rep.BadID != 0 {
		problems = append(problems, fmt.Sprintf("row %d was changed, or a row before it removed (%d rows checked); restore the database from a backup to see what it said", rep.BadID, rep.Rows))
	}
	if rep.Rows > 0 && rep.Unlinked == rep.Rows {
		problems = append(problems, fmt.Sprintf("none of its %d rows stores a hash: every hash was removed, unless no change at all was audited since this install was upgraded to the hash chain (check with a published head: --head SEQ:HASH)", rep.Rows))
	}
	for _, h := range rep.Heads {
		if h.Problem != "" {
			problems = append(problems, "published head "+h.String()+": "+h.Problem)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("audit log: %s", strings.Join(problems, "; "))
	}
	fmt.Fprintf(stdout, "audit log intact: %d rows (%d from before the chain, covered by it); head %s\n", rep.Rows, rep.Unlinked, db.AuditHead{Seq: rep.LastID, Hash: rep.Head})
	if len(heads) > 0 {
		newest := slices.MaxFunc(heads, func(a, b db.AuditHead) int { return cmp.Compare(a.Seq, b.Seq) })
		fmt.Fprintf(stdout, "all %d published heads held, the newest at row %d; rows after it are covered by the chain alone\n", len(heads), newest.Seq)
	}
	return nil
}

// headList is the repeatable --head flag.
type headList []db.AuditHead

func (l *headList) String() string { return fmt.Sprint(*l) }

func (l *headList) Set(s string) error {
	h, err := db.ParseAuditHead(s)
	if err != nil {
		return err
	}
	*l = append(*l, h)
	return nil
}

// headPattern finds a published head in a line: SEQ:HASH, alone or inside a log line.
var headPattern = regexp.MustCompile(`\b([0-9]+:[0-9a-fA-F]{64})\b`)

// readHeads reads published heads from a file: one per line, alone or within a log line (the
// first SEQ:HASH of the line counts). Blank lines and lines starting with # are skipped; any
// other line without a head is an error naming it.
func readHeads(path string) ([]db.AuditHead, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--heads: %w", err)
	}
	var heads []db.AuditHead
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := headPattern.FindString(line)
		if m == "" {
			return nil, usageError{fmt.Sprintf("--heads %s: line %d holds no head SEQ:HASH", path, i+1)}
		}
		h, err := db.ParseAuditHead(m)
		if err != nil {
			return nil, usageError{fmt.Sprintf("--heads %s: line %d: %v", path, i+1, err)}
		}
		heads = append(heads, h)
	}
	if len(heads) == 0 {
		return nil, usageError{fmt.Sprintf("--heads %s holds no head SEQ:HASH", path)}
	}
	return heads, nil
}
