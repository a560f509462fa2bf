package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/diskguard"
	"github.com/tensfer-golive/dashboard/internal/events"
	"github.com/tensfer-golive/dashboard/internal/secrets"
)

// envFlags binds flags to DASHBOARD_* environment fallbacks: a flag given on the command line
// wins, else the variable, else the default. It remembers where each value came from, so an
// error names the setting as the user set it (setting, ref).
type envFlags struct {
	fs      *flag.FlagSet
	getenv  func(string) string
	envOf   map[string]string
	fromEnv map[string]bool // flags whose value came from their environment variable
	badBool error           // a boolean flag given a value that is not one, for parse to report
}

func newFlags(name string, stderr io.Writer, getenv func(string) string) *envFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &envFlags{fs: fs, getenv: getenv, envOf: map[string]string{}, fromEnv: map[string]bool{}}
}

func (f *envFlags) string(p *string, name, env, def, help string) {
	f.fs.StringVar(p, name, def, help+" (env "+env+")")
	f.envOf[name] = env
}

func (f *envFlags) bool(p *bool, name, env, help string) {
	f.fs.Var(boolValue{p: p, name: name, f: f}, name, help+" (env "+env+")")
	f.envOf[name] = env
}

// boolValue is a boolean flag whose refusal says what it accepts, where the flag package would
// say only "parse error".
type boolValue struct {
	p    *bool
	name string
	f    *envFlags
}

// boolWords is what a boolean setting accepts (strconv.ParseBool).
const boolWords = "true or false (1 or 0, t or f also work)"

func (b boolValue) IsBoolFlag() bool { return true }

func (b boolValue) String() string {
	if b.p == nil {
		return "false"
	}
	return strconv.FormatBool(*b.p)
}

func (b boolValue) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		err = errors.New("must be " + boolWords)
		if b.f.badBool == nil {
			b.f.badBool = fmt.Errorf("--%s=%q: %w", b.name, s, err)
		}
		return err
	}
	*b.p = v
	return nil
}

// secretString is a flag whose value may also come from ENV or from the file named by ENV_FILE,
// so secrets need not appear in the process list or the environment.
func (f *envFlags) secretString(p *string, name, env, help string) {
	f.fs.StringVar(p, name, "", help+" (env "+env+" or "+env+"_FILE)")
	f.envOf[name] = env
}

// onCommandLine reports whether the flag was given on the command line.
func (f *envFlags) onCommandLine(name string) bool {
	set := false
	f.fs.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

// given reports whether the flag was set on the command line or by its environment variable.
func (f *envFlags) given(name string) bool {
	return f.onCommandLine(name) || f.envOf[name] != "" && f.getenv(f.envOf[name]) != ""
}

// ref names a setting as the user set it: its environment variable when the value came from
// there, else its flag (also when left at its default).
func (f *envFlags) ref(name string) string {
	if f.fromEnv[name] {
		return f.envOf[name]
	}
	return "--" + name
}

// setting names a setting with its value, for the start of an error message:
// DASHBOARD_ADDR=":99999" from the environment, --addr ":99999" from the command line, and
// --addr ":443" (the default) when neither gave it.
func (f *envFlags) setting(name string) string {
	v := f.fs.Lookup(name).Value.String()
	switch {
	case f.fromEnv[name]:
		return fmt.Sprintf("%s=%q", f.envOf[name], v)
	case f.onCommandLine(name):
		return fmt.Sprintf("--%s %q", name, v)
	}
	return fmt.Sprintf("--%s %q (the default)", name, v)
}

// bad is the error for a setting's value: the setting as the user set it, then what is wrong and
// what to give instead.
func (f *envFlags) bad(name, format string, args ...any) error {
	return fmt.Errorf("%s: %s", f.setting(name), fmt.Sprintf(format, args...))
}

// parse parses args, then fills every flag not given from its environment variable.
func (f *envFlags) parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		if f.badBool != nil {
			return usageError{f.badBool.Error()}
		}
		return usageError{err.Error()}
	}
	if f.fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", f.fs.Arg(0))}
	}
	var errs []error
	f.fs.VisitAll(func(fl *flag.Flag) {
		env := f.envOf[fl.Name]
		if env == "" || f.onCommandLine(fl.Name) {
			return
		}
		if v := f.getenv(env); v != "" {
			f.fromEnv[fl.Name] = true
			if err := fl.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %v", env, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// secretFromFile resolves ENV_FILE for a secret flag left empty: the file's content, trimmed.
func secretFromFile(getenv func(string) string, env string) (string, error) {
	p := getenv(env + "_FILE")
	if p == "" {
		return "", nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", env, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// serveConfig is the validated configuration of the server.
type serveConfig struct {
	addr           string
	dataDir        string
	databaseURL    string // --database-url: PostgreSQL instead of the SQLite file in dataDir ("" SQLite)
	publicURL      *url.URL
	logFormat      string
	logLevel       string
	trustedProxies []netip.Prefix
	sessionIdle    time.Duration
	sessionMax     time.Duration
	retentionDays  int
	publicBudget   events.PublicBudget // unauthenticated input stored, a second, in all
	disk           diskguard.Config    // the disk watermarks
	masterKey      string
	demo           bool
	notifySocket   string // NOTIFY_SOCKET, set by a service manager that waits for readiness
	// TLS served by the dashboard itself (tls.go): --tls-cert/--tls-key, or --domain over ACME.
	tls         tlsConfig
	metricsAddr string // --metrics-addr: a listener serving only /metrics, without authentication ("" off)
	// publicURLDefault: --public-url was not given, so publicURL is made of --addr (and its port
	// is the one bound when --addr asks for port 0).
	publicURLDefault bool
	flags            *envFlags // how each setting was given, for messages at start-up
}

func parseServe(args []string, stderr io.Writer, getenv func(string) string) (serveConfig, error) {
	var c serveConfig
	var public, proxies, idle, max, retention, ingestBytes, ingestRows, soft, hard, tlsCheck, instances string
	f := newFlags("serve", stderr, getenv)
	c.flags = f
	f.string(&c.addr, "addr", "DASHBOARD_ADDR", "127.0.0.1:8080", "address to listen on: 127.0.0.1:PORT for this machine only, :PORT for every network interface")
	f.string(&c.dataDir, "data", "DASHBOARD_DATA", "./data", "data directory (SQLite file and generated master key)")
	databaseURLFlag(f, &c.databaseURL)
	f.string(&public, "public-url", "DASHBOARD_PUBLIC_URL", "", "URL at which browsers and Tensfer reach the dashboard (default http://<addr>)")
	f.string(&c.logFormat, "log-format", "DASHBOARD_LOG_FORMAT", "", "log format: text or json (default text on a terminal, json otherwise)")
	f.string(&c.logLevel, "log-level", "DASHBOARD_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	f.string(&proxies, "trusted-proxies", "DASHBOARD_TRUSTED_PROXIES", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed")
	f.string(&idle, "session-idle", "DASHBOARD_SESSION_IDLE", "12h", "a session unused this long ends")
	f.string(&max, "session-max", "DASHBOARD_SESSION_MAX", "168h", "a session ends this long after login")
	f.string(&retention, "retention-days", "DASHBOARD_RETENTION_DAYS", "30", "events older than this many days are purged")
	f.string(&ingestBytes, "public-ingest-bytes", "DASHBOARD_PUBLIC_INGEST_BYTES", "1MiB", "bytes a second of unauthenticated input (callbacks, return visits, refused deliveries) stored, all together; each environment and input gets half")
	f.string(&instances, "instances", "DASHBOARD_INSTANCES", "1", "how many dashboards share the PostgreSQL database (--database-url); each takes its share of the public ingest budget")
	f.string(&ingestRows, "public-ingest-rows", "DASHBOARD_PUBLIC_INGEST_ROWS", "1000", "rows a second of unauthenticated input stored, all together; each environment and input gets half")
	f.string(&soft, "disk-soft-watermark", "DASHBOARD_DISK_SOFT_WATERMARK", diskguard.DefaultSoft.String(), "free space on the data directory's disk below which unauthenticated input is not stored (an amount, a share like 5%, or both for the smaller; 0 is off)")
	f.string(&hard, "disk-hard-watermark", "DASHBOARD_DISK_HARD_WATERMARK", diskguard.DefaultHard.String(), "free space below which nothing new is stored and signed webhooks are answered 503 so Tensfer retries (same forms; 0 is off)")
	f.bool(&c.demo, "demo", "DASHBOARD_DEMO", "run with the built-in Tensfer simulator wired to the dashboard")
	f.secretString(&c.masterKey, "master-key", "DASHBOARD_MASTER_KEY", "master key, 32 bytes as base64 or hex (default: generated in the data directory)")
	tlsFlags(f, &c.tls, &tlsCheck)
	metricsFlag(f, &c.metricsAddr)
	if err := f.parse(args); err != nil {
		return c, err
	}
	// Demo data lives in its own directory unless one is named, so a demo never mixes with real
	// configuration.
	if c.demo && !f.given("data") {
		c.dataDir = "./data-demo"
	}
	errs := c.tls.check(f, &c.addr, tlsCheck, c.demo)
	if err := checkListenAddr(f, "addr", "127.0.0.1:8080"); err != nil {
		errs = append(errs, err)
	}
	if c.dataDir == "" {
		errs = append(errs, f.bad("data", "must name a directory, e.g. ./data (it is created if missing)"))
	}
	if err := resolveDatabaseURL(f, &c.databaseURL); err != nil {
		errs = append(errs, err)
	}
	c.publicURLDefault = public == ""
	if c.publicURLDefault && len(errs) == 0 {
		host := c.addr
		if h, p, err := net.SplitHostPort(c.addr); err == nil && anyInterface(h) {
			host = net.JoinHostPort("127.0.0.1", p)
		}
		public = c.tls.defaultPublicURL(strings.ReplaceAll(host, "%", "%25")) // an IPv6 zone
	}
	u, err := url.Parse(public)
	switch {
	case public == "":
		// made of --addr or --domain, refused above
	case err != nil || !u.IsAbs() || u.Host == "":
		errs = append(errs, f.bad("public-url", "must be an absolute URL such as https://dashboard.example.com"))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, f.bad("public-url", "must use http or https, not %q", u.Scheme))
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
		errs = append(errs, f.bad("public-url", "must be scheme://host[:port] only, without a path, query or credentials"))
	default:
		u.Path = ""
		c.publicURL = u
		if err := c.tls.checkPublicURL(f, u); err != nil {
			errs = append(errs, err)
		}
	}
	switch c.logFormat {
	case "", "text", "json":
	default:
		errs = append(errs, f.bad("log-format", "must be text or json"))
	}
	switch c.logLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, f.bad("log-level", "must be debug, info, warn or error"))
	}
	for _, p := range strings.Split(proxies, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !strings.Contains(p, "/") {
			if a, err := netip.ParseAddr(p); err == nil {
				p = netip.PrefixFrom(a, a.BitLen()).String()
			}
		}
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			errs = append(errs, f.bad("trusted-proxies", "%q is not an IP address or CIDR; give addresses or networks separated by commas, e.g. 10.0.0.5,172.16.0.0/12", p))
			continue
		}
		c.trustedProxies = append(c.trustedProxies, pfx.Masked())
	}
	switch c.sessionIdle, err = time.ParseDuration(idle); {
	case err != nil:
		errs = append(errs, f.bad("session-idle", "not a duration; give one of at least 1m with its unit, e.g. 30m or 12h"))
	case c.sessionIdle < time.Minute:
		errs = append(errs, f.bad("session-idle", "must be at least 1m, e.g. 30m or 12h"))
	}
	switch c.sessionMax, err = time.ParseDuration(max); {
	case err != nil:
		errs = append(errs, f.bad("session-max", "not a duration; give one with its unit, e.g. 168h"))
	case c.sessionMax < c.sessionIdle:
		errs = append(errs, f.bad("session-max", "must be no shorter than %s (%s): a session cannot end by age before it could end unused", f.ref("session-idle"), idle))
	}
	if n, err := strconv.Atoi(retention); err != nil || n < 1 || n > 3650 {
		errs = append(errs, f.bad("retention-days", "must be a whole number of days from 1 to 3650, e.g. 30"))
	} else {
		c.retentionDays = n
	}
	if n, err := diskguard.ParseBytes(ingestBytes); err != nil || n < 16<<10 || n > 1<<40 {
		errs = append(errs, f.bad("public-ingest-bytes", "must be an amount of bytes a second from 16KiB to 1TiB, e.g. 1MiB"))
	} else {
		c.publicBudget.BytesPerSecond = float64(n)
	}
	if n, err := strconv.Atoi(ingestRows); err != nil || n < 1 || n > 1_000_000 {
		errs = append(errs, f.bad("public-ingest-rows", "must be a whole number of rows a second from 1 to 1000000, e.g. 1000"))
	} else {
		c.publicBudget.RowsPerSecond = float64(n)
	}
	// The public budgets hold for the cluster as a whole: each of N instances behind the
	// balancer stores at most its Nth of them (docs/operations.md, "Several instances").
	switch n, err := strconv.Atoi(instances); {
	case err != nil || n < 1 || n > 64:
		errs = append(errs, f.bad("instances", "must be a whole number from 1 to 64: how many dashboards share the database"))
	case n > 1 && c.databaseURL == "":
		errs = append(errs, f.bad("instances", "is %d, but several dashboards can only share a PostgreSQL database: set %s too", n, f.ref("database-url")))
	default:
		c.publicBudget.BytesPerSecond /= float64(n)
		c.publicBudget.RowsPerSecond /= float64(n)
	}
	if c.disk.Soft, err = diskguard.ParseThreshold(soft); err != nil {
		errs = append(errs, f.bad("disk-soft-watermark", "%v", err))
	}
	if c.disk.Hard, err = diskguard.ParseThreshold(hard); err != nil {
		errs = append(errs, f.bad("disk-hard-watermark", "%v", err))
	}
	c.disk.Off = c.disk.Soft == (diskguard.Threshold{}) && c.disk.Hard == (diskguard.Threshold{})
	// The master key is checked here, not when the data directory is opened, so a mistyped key
	// is refused before anything is created. Its value is never repeated.
	keyFrom := f.ref("master-key")
	if c.masterKey == "" {
		if c.masterKey, err = secretFromFile(getenv, "DASHBOARD_MASTER_KEY"); err != nil {
			errs = append(errs, err)
		}
		keyFrom = "DASHBOARD_MASTER_KEY_FILE=" + strconv.Quote(getenv("DASHBOARD_MASTER_KEY_FILE"))
	}
	if c.masterKey != "" {
		if _, err := secrets.ParseKey(c.masterKey); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", keyFrom, err))
		}
	}
	if err := checkMetricsAddr(f, c.metricsAddr, c.addr); err != nil {
		errs = append(errs, err)
	}
	if c.notifySocket = getenv("NOTIFY_SOCKET"); !validNotifySocket(c.notifySocket) {
		errs = append(errs, fmt.Errorf("NOTIFY_SOCKET=%q must be an absolute socket path or an abstract socket name starting with @; unset it if no service manager waits for readiness", c.notifySocket))
	}
	return c, errors.Join(errs...)
}

// dataFlag is the --data flag shared by the administrative subcommands.
func dataFlag(f *envFlags, p *string) {
	f.string(p, "data", "DASHBOARD_DATA", "./data", "data directory")
}

// databaseURLFlag is --database-url, taken by every command that opens the database: PostgreSQL
// instead of the SQLite file in the data directory. It is a secret (it may carry a password), so
// it may also come from the file named by DASHBOARD_DATABASE_URL_FILE.
func databaseURLFlag(f *envFlags, p *string) {
	f.secretString(p, "database-url", "DASHBOARD_DATABASE_URL", "PostgreSQL database to use instead of the SQLite file in the data directory: postgres://USER:PASSWORD@HOST:5432/DATABASE?sslmode=require")
}

// resolveDatabaseURL completes --database-url after parsing: from DASHBOARD_DATABASE_URL_FILE
// when neither the flag nor the variable gave it, then checked to name PostgreSQL. The URL's
// password never appears in the error.
func resolveDatabaseURL(f *envFlags, p *string) error {
	from := f.ref("database-url")
	if *p == "" {
		v, err := secretFromFile(f.getenv, "DASHBOARD_DATABASE_URL")
		if err != nil {
			return err
		}
		*p, from = v, "DASHBOARD_DATABASE_URL_FILE="+strconv.Quote(f.getenv("DASHBOARD_DATABASE_URL_FILE"))
	}
	if *p != "" && !db.IsPostgresURL(*p) {
		// NB: only the scheme is repeated: a value that is not a URL may be nothing but a password.
		got := "it has no scheme"
		if scheme, _, ok := strings.Cut(*p, "://"); ok && len(scheme) <= 20 {
			got = fmt.Sprintf("not %q", scheme+"://")
		}
		return usageError{fmt.Sprintf("%s must be a PostgreSQL URL starting with postgres:// or postgresql://, %s; e.g. postgres://USER:PASSWORD@HOST:5432/DATABASE?sslmode=require (leave it unset to use the SQLite file in the data directory)", from, got)}
	}
	return nil
}
