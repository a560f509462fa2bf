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

	"github.com/tensfer-golive/dashboard/internal/diskguard"
	"github.com/tensfer-golive/dashboard/internal/events"
)

// envFlags binds flags to DASHBOARD_* environment fallbacks: a flag given on the command line
// wins, else the variable, else the default.
type envFlags struct {
	fs     *flag.FlagSet
	getenv func(string) string
	envOf  map[string]string
}

func newFlags(name string, stderr io.Writer, getenv func(string) string) *envFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &envFlags{fs: fs, getenv: getenv, envOf: map[string]string{}}
}

func (f *envFlags) string(p *string, name, env, def, help string) {
	f.fs.StringVar(p, name, def, help+" (env "+env+")")
	f.envOf[name] = env
}

func (f *envFlags) bool(p *bool, name, env, help string) {
	f.fs.BoolVar(p, name, false, help+" (env "+env+")")
	f.envOf[name] = env
}

// secretString is a flag whose value may also come from ENV or from the file named by ENV_FILE,
// so secrets need not appear in the process list or the environment.
func (f *envFlags) secretString(p *string, name, env, help string) {
	f.fs.StringVar(p, name, "", help+" (env "+env+" or "+env+"_FILE)")
	f.envOf[name] = env
}

// given reports whether the flag was set on the command line or by its environment variable.
func (f *envFlags) given(name string) bool {
	set := f.envOf[name] != "" && f.getenv(f.envOf[name]) != ""
	f.fs.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

// parse parses args, then fills every flag not given from its environment variable.
func (f *envFlags) parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if f.fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", f.fs.Arg(0))}
	}
	given := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	var errs []error
	f.fs.VisitAll(func(fl *flag.Flag) {
		env := f.envOf[fl.Name]
		if given[fl.Name] || env == "" {
			return
		}
		if v := f.getenv(env); v != "" {
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
}

func parseServe(args []string, stderr io.Writer, getenv func(string) string) (serveConfig, error) {
	var c serveConfig
	var public, proxies, idle, max, retention, ingestBytes, ingestRows, soft, hard, tlsCheck string
	f := newFlags("serve", stderr, getenv)
	f.string(&c.addr, "addr", "DASHBOARD_ADDR", "127.0.0.1:8080", "address to listen on")
	f.string(&c.dataDir, "data", "DASHBOARD_DATA", "./data", "data directory (SQLite file and generated master key)")
	f.string(&public, "public-url", "DASHBOARD_PUBLIC_URL", "", "URL at which browsers and Tensfer reach the dashboard (default http://<addr>)")
	f.string(&c.logFormat, "log-format", "DASHBOARD_LOG_FORMAT", "", "log format: text or json (default text on a terminal, json otherwise)")
	f.string(&c.logLevel, "log-level", "DASHBOARD_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	f.string(&proxies, "trusted-proxies", "DASHBOARD_TRUSTED_PROXIES", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed")
	f.string(&idle, "session-idle", "DASHBOARD_SESSION_IDLE", "12h", "a session unused this long ends")
	f.string(&max, "session-max", "DASHBOARD_SESSION_MAX", "168h", "a session ends this long after login")
	f.string(&retention, "retention-days", "DASHBOARD_RETENTION_DAYS", "30", "events older than this many days are purged")
	f.string(&ingestBytes, "public-ingest-bytes", "DASHBOARD_PUBLIC_INGEST_BYTES", "1MiB", "bytes a second of unauthenticated input (callbacks, return visits, refused deliveries) stored, all together; each environment and input gets half")
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
	if _, _, err := net.SplitHostPort(c.addr); err != nil {
		errs = append(errs, fmt.Errorf("--addr %q must be host:port, e.g. 127.0.0.1:8080", c.addr))
	}
	if c.dataDir == "" {
		errs = append(errs, errors.New("--data must name a directory"))
	}
	if public == "" {
		host := c.addr
		if h, p, err := net.SplitHostPort(c.addr); err == nil && (h == "" || h == "0.0.0.0" || h == "::") {
			host = net.JoinHostPort("127.0.0.1", p)
		}
		public = c.tls.defaultPublicURL(host)
	}
	u, err := url.Parse(public)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		errs = append(errs, fmt.Errorf("--public-url %q must be an absolute URL such as https://dashboard.example.com", public))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("--public-url must use http or https, not %q", u.Scheme))
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
		errs = append(errs, fmt.Errorf("--public-url %q must be scheme://host[:port] only, without a path, query or credentials", public))
	default:
		u.Path = ""
		c.publicURL = u
		if err := c.tls.checkPublicURL(u); err != nil {
			errs = append(errs, err)
		}
	}
	switch c.logFormat {
	case "", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("--log-format must be text or json, not %q", c.logFormat))
	}
	switch c.logLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log-level must be debug, info, warn or error, not %q", c.logLevel))
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
			errs = append(errs, fmt.Errorf("--trusted-proxies: %q is not an IP address or CIDR", p))
			continue
		}
		c.trustedProxies = append(c.trustedProxies, pfx.Masked())
	}
	if c.sessionIdle, err = time.ParseDuration(idle); err != nil || c.sessionIdle < time.Minute {
		errs = append(errs, fmt.Errorf("--session-idle %q must be a duration of at least 1m, e.g. 12h", idle))
	}
	if c.sessionMax, err = time.ParseDuration(max); err != nil || c.sessionMax < c.sessionIdle {
		errs = append(errs, fmt.Errorf("--session-max %q must be a duration no shorter than --session-idle, e.g. 168h", max))
	}
	if n, err := strconv.Atoi(retention); err != nil || n < 1 || n > 3650 {
		errs = append(errs, fmt.Errorf("--retention-days %q must be a whole number of days from 1 to 3650", retention))
	} else {
		c.retentionDays = n
	}
	if n, err := diskguard.ParseBytes(ingestBytes); err != nil || n < 16<<10 || n > 1<<40 {
		errs = append(errs, fmt.Errorf("--public-ingest-bytes %q must be an amount of bytes a second from 16KiB to 1TiB, e.g. 1MiB", ingestBytes))
	} else {
		c.publicBudget.BytesPerSecond = float64(n)
	}
	if n, err := strconv.Atoi(ingestRows); err != nil || n < 1 || n > 1_000_000 {
		errs = append(errs, fmt.Errorf("--public-ingest-rows %q must be a whole number of rows a second from 1 to 1000000, e.g. 1000", ingestRows))
	} else {
		c.publicBudget.RowsPerSecond = float64(n)
	}
	if c.disk.Soft, err = diskguard.ParseThreshold(soft); err != nil {
		errs = append(errs, fmt.Errorf("--disk-soft-watermark: %v", err))
	}
	if c.disk.Hard, err = diskguard.ParseThreshold(hard); err != nil {
		errs = append(errs, fmt.Errorf("--disk-hard-watermark: %v", err))
	}
	c.disk.Off = c.disk.Soft == (diskguard.Threshold{}) && c.disk.Hard == (diskguard.Threshold{})
	if c.masterKey == "" {
		if c.masterKey, err = secretFromFile(getenv, "DASHBOARD_MASTER_KEY"); err != nil {
			errs = append(errs, err)
		}
	}
	if err := checkMetricsAddr(c.metricsAddr, c.addr); err != nil {
		errs = append(errs, err)
	}
	if c.notifySocket = getenv("NOTIFY_SOCKET"); !validNotifySocket(c.notifySocket) {
		errs = append(errs, fmt.Errorf("NOTIFY_SOCKET=%q must be an absolute socket path or an abstract socket name starting with @; unset it if no service manager waits for readiness", c.notifySocket))
	}
	return c, errors.Join(errs...)
}

// dataFlags is the --data flag shared by the administrative subcommands.
func dataFlag(f *envFlags, p *string) {
	f.string(p, "data", "DASHBOARD_DATA", "./data", "data directory")
}
