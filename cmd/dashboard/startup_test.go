package main

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/secrets"
)

// TestSettingErrorsNameWhatWasSet gives each setting that has an environment variable a bad
// value once as a flag and once as the variable: the error names the setting as it was set, with
// the value, and says what is accepted.
func TestSettingErrorsNameWhatWasSet(t *testing.T) {
	for _, tt := range []struct {
		flag, env, bad string
		args           []string // other flags the setting needs
		want           string
	}{
		{"addr", "DASHBOARD_ADDR", ":99999", nil, "port 99999 is out of range: a port is a number from 1 to 65535"},
		{"public-url", "DASHBOARD_PUBLIC_URL", "ftp://x", nil, `must use http or https, not "ftp"`},
		{"log-format", "DASHBOARD_LOG_FORMAT", "xml", nil, "must be text or json"},
		{"log-level", "DASHBOARD_LOG_LEVEL", "loud", nil, "must be debug, info, warn or error"},
		{"trusted-proxies", "DASHBOARD_TRUSTED_PROXIES", "10.0.0.0/8,banana", nil, `"banana" is not an IP address or CIDR; give addresses or networks separated by commas`},
		{"session-idle", "DASHBOARD_SESSION_IDLE", "abc", nil, "not a duration; give one of at least 1m with its unit, e.g. 30m or 12h"},
		{"session-idle", "DASHBOARD_SESSION_IDLE", "30s", nil, "must be at least 1m"},
		{"session-max", "DASHBOARD_SESSION_MAX", "1h", nil, "must be no shorter than --session-idle (12h)"},
		{"retention-days", "DASHBOARD_RETENTION_DAYS", "0", nil, "must be a whole number of days from 1 to 3650"},
		{"public-ingest-bytes", "DASHBOARD_PUBLIC_INGEST_BYTES", "1KiB", nil, "must be an amount of bytes a second from 16KiB to 1TiB"},
		{"public-ingest-rows", "DASHBOARD_PUBLIC_INGEST_ROWS", "lots", nil, "must be a whole number of rows a second"},
		{"disk-soft-watermark", "DASHBOARD_DISK_SOFT_WATERMARK", "512MiB,half", nil, `"half" is not an amount of space`},
		{"disk-hard-watermark", "DASHBOARD_DISK_HARD_WATERMARK", "100%", nil, `"100%" is not a share of the disk`},
		{"demo", "DASHBOARD_DEMO", "maybe", nil, "must be true or false (1 or 0, t or f also work)"},
		{"tls-check-interval", "DASHBOARD_TLS_CHECK_INTERVAL", "often", nil, "must be a duration such as 5s"},
		{"domain", "DASHBOARD_DOMAIN", "https://dash.example.com", nil, "must be a DNS name such as dashboard.example.com"},
		{"acme-ca", "DASHBOARD_ACME_CA", "http://ca.example.com/directory", []string{"--domain", "dash.example.com"}, "must be the https URL of an ACME directory"},
		{"acme-email", "DASHBOARD_ACME_EMAIL", "ops at example", []string{"--domain", "dash.example.com"}, "must be a plain email address"},
		{"http-addr", "DASHBOARD_HTTP_ADDR", "eighty", []string{"--domain", "dash.example.com"}, `must be host:port and the port is missing; e.g. :80 (or "off" for no plain http)`},
		{"metrics-addr", "DASHBOARD_METRICS_ADDR", "127.0.0.1:http", nil, "the port must be a number from 1 to 65535, e.g. 127.0.0.1:9090"},
	} {
		t.Run(tt.flag+"="+tt.bad, func(t *testing.T) {
			for _, from := range []struct {
				how, setting, other string
				args                []string
				env                 map[string]string
			}{
				{"flag", `--` + tt.flag + ` "` + tt.bad + `": `, tt.env, append([]string{"--" + tt.flag + "=" + tt.bad}, tt.args...), nil},
				{"env", tt.env + `="` + tt.bad + `": `, "--" + tt.flag + " ", tt.args, map[string]string{tt.env: tt.bad}},
			} {
				if tt.flag == "demo" && from.how == "flag" {
					from.setting = `--demo="maybe": `
				}
				_, err := parseServe(from.args, io.Discard, func(k string) string { return from.env[k] })
				if err == nil || !strings.Contains(err.Error(), from.setting+tt.want) {
					t.Fatalf("from the %s: error %v, want one with %q", from.how, err, from.setting+tt.want)
				}
				if strings.Contains(err.Error(), from.other) {
					t.Fatalf("from the %s: error %q names %s, which was not set", from.how, err, from.other)
				}
			}
		})
	}
}

// TestSettingErrorsNameOtherSettingsAsSet: an error about one setting that depends on another
// names the other as it was set, and a setting left at its default says so.
func TestSettingErrorsNameOtherSettingsAsSet(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"session max shorter than an idle time from the environment", map[string]string{"DASHBOARD_SESSION_IDLE": "200h"}, nil,
			`--session-max "168h" (the default): must be no shorter than DASHBOARD_SESSION_IDLE (200h)`},
		{"metrics on an address from the environment", map[string]string{"DASHBOARD_ADDR": "127.0.0.1:8080"}, []string{"--metrics-addr", "127.0.0.1:8080"},
			`--metrics-addr "127.0.0.1:8080": must differ from DASHBOARD_ADDR`},
		{"http address from the environment without TLS", map[string]string{"DASHBOARD_HTTP_ADDR": ":80"}, nil,
			"DASHBOARD_HTTP_ADDR redirects to https: it needs --tls-cert or --domain"},
		{"demo from the environment with a domain", map[string]string{"DASHBOARD_DEMO": "1", "DASHBOARD_DOMAIN": "dash.example.com"}, nil,
			"DASHBOARD_DEMO serves plain http on loopback: leave out --tls-cert and DASHBOARD_DOMAIN"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseServe(tt.args, io.Discard, func(k string) string { return tt.env[k] })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one with %q", err, tt.want)
			}
		})
	}
}

// TestListenAddressShapes: a listen address that cannot be bound for its shape alone is refused
// with what a valid one looks like; valid ones of every form are taken.
func TestListenAddressShapes(t *testing.T) {
	for _, tt := range []struct {
		flag, addr string
		want       string // "" for an address that is valid
	}{
		{"addr", ":8080", ""},
		{"addr", "0.0.0.0:0", ""},
		{"addr", "[::1]:8080", ""},
		{"addr", "[fe80::1%eth0]:8080", ""},
		{"addr", "localhost:8080", ""},
		{"addr", "8080", `--addr "8080": give host:port, not a port alone: :8080 for every network interface, 127.0.0.1:8080 for this machine only`},
		{"addr", "127.0.0.1", `--addr "127.0.0.1": the port is missing; give host:port, e.g. 127.0.0.1:8080`},
		{"addr", "[::1]", `--addr "[::1]": the port is missing; give host:port, e.g. [::1]:8080`},
		{"addr", "::1:8080", `--addr "::1:8080": write an IPv6 address in brackets before its port, e.g. [::1]:8080`},
		{"addr", ":99999", `--addr ":99999": port 99999 is out of range: a port is a number from 1 to 65535 (0 picks a free one)`},
		{"addr", ":abc", `--addr ":abc": the port must be a number from 1 to 65535, e.g. :8080`},
		{"addr", "127.0.0.1:", `--addr "127.0.0.1:": the port must be a number from 1 to 65535, e.g. 127.0.0.1:8080`},
		{"addr", "dash board:80", `--addr "dash board:80": "dash board" is not an IP address or a host name; give one of this machine's addresses with the port, e.g. 127.0.0.1:8080, or :8080 for every network interface`},
		{"addr", "", `--addr "": must be host:port and the port is missing; e.g. 127.0.0.1:8080, or :8080 for every network interface`},
		{"metrics-addr", "127.0.0.1:9090", ""},
		{"metrics-addr", "127.0.0.1:-1", `--metrics-addr "127.0.0.1:-1": the port must be a number from 1 to 65535, e.g. 127.0.0.1:9090`},
		{"http-addr", "[::]:80", ""},
		{"http-addr", "10.0.0.5", `--http-addr "10.0.0.5": the port is missing; give host:port, e.g. 10.0.0.5:80 (or "off" for no plain http)`},
	} {
		t.Run(tt.flag+"="+tt.addr, func(t *testing.T) {
			args := []string{"--" + tt.flag, tt.addr}
			if tt.flag == "http-addr" {
				args = append(args, "--domain", "dash.example.com")
			}
			_, err := parseServe(args, io.Discard, func(string) string { return "" })
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("valid address refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one with %q", err, tt.want)
			}
		})
	}
}

// TestMasterKeyErrorsNameItsSourceNotItsValue: a master key that is not one is refused at start,
// before anything is created, naming where it came from and never repeating it.
func TestMasterKeyErrorsNameItsSourceNotItsValue(t *testing.T) {
	const bad = "not-a-key-but-secret-ish"
	keyFile := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(keyFile, []byte(bad+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"flag", nil, []string{"--master-key", bad}, "--master-key: master key must be 32 bytes"},
		{"environment", map[string]string{"DASHBOARD_MASTER_KEY": bad}, nil, "DASHBOARD_MASTER_KEY: master key must be 32 bytes"},
		{"file", map[string]string{"DASHBOARD_MASTER_KEY_FILE": keyFile}, nil, `DASHBOARD_MASTER_KEY_FILE="` + keyFile + `": master key must be 32 bytes`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			_, _, err := cli(t, tt.env, "", append([]string{"serve", "--data", dir, "--addr", "127.0.0.1:0"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), bad) {
				t.Fatalf("error %v, want one with %q and without the key", err, tt.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused key created the data directory: %v", err)
			}
		})
	}
}

// occupied is a loopback address a real listener holds for the test.
func occupied(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// TestFailedStartLeavesNothingBehind: a start refused for any of its addresses (a port held by
// another listener, an address not on this machine) says why, naming the setting as it was set,
// and leaves no data directory and no master key.
func TestFailedStartLeavesNothingBehind(t *testing.T) {
	files := t.TempDir()
	certFile, keyFile := writePair(t, files, newTestCert(t, 7001, nil))
	for _, tt := range []struct {
		name string
		env  func(busy string) map[string]string
		args func(busy string) []string
		want func(busy string) string
	}{
		{"port in use",
			nil,
			func(busy string) []string { return []string{"--addr", busy} },
			func(busy string) string {
				_, p, _ := net.SplitHostPort(busy)
				return `--addr "` + busy + `": port ` + p + ` is already in use by another program (is another dashboard running?`
			}},
		{"port in use, from the environment",
			func(busy string) map[string]string { return map[string]string{"DASHBOARD_ADDR": busy} },
			nil,
			func(busy string) string {
				return `DASHBOARD_ADDR="` + busy + `": port `
			}},
		{"address not on this machine",
			nil,
			func(string) []string { return []string{"--addr", "192.0.2.1:8080"} },
			func(string) string {
				return `--addr "192.0.2.1:8080": 192.0.2.1 is not an address of this machine; give one of its own addresses`
			}},
		{"metrics port in use",
			nil,
			func(busy string) []string { return []string{"--addr", "127.0.0.1:0", "--metrics-addr", busy} },
			func(busy string) string { return `--metrics-addr "` + busy + `": port ` }},
		{"plain http port in use",
			func(busy string) map[string]string { return map[string]string{"DASHBOARD_HTTP_ADDR": busy} },
			func(string) []string {
				return []string{"--addr", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile, "--public-url", "https://localhost"}
			},
			func(busy string) string {
				return `DASHBOARD_HTTP_ADDR="` + busy + `": port `
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			busy := occupied(t)
			dir := filepath.Join(t.TempDir(), "data")
			var env map[string]string
			if tt.env != nil {
				env = tt.env(busy)
			}
			args := []string{"serve", "--data", dir}
			if tt.args != nil {
				args = append(args, tt.args(busy)...)
			}
			_, _, err := cli(t, env, "", args...)
			if err == nil || !strings.Contains(err.Error(), tt.want(busy)) {
				t.Fatalf("error %v, want one with %q", err, tt.want(busy))
			}
			if strings.Contains(tt.name, "in use") != strings.Contains(err.Error(), "is another dashboard running?") {
				t.Fatalf("another dashboard is suspected for the wrong reason: %v", err)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a failed start left the data directory behind: %v", err)
			}
		})
	}
}

// TestListenErrorSaysWhy: each reason a bind fails for gets its own explanation and fix; only a
// port in use suspects another dashboard.
func TestListenErrorSaysWhy(t *testing.T) {
	bind := func(errno syscall.Errno) error {
		return &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", errno)}
	}
	for _, tt := range []struct {
		name, addr string
		err        error
		want       []string
	}{
		{"privileged port", ":80", bind(syscall.EACCES), []string{
			`--addr ":80": permission denied: only a privileged process may listen on a port below 1024`,
			"choose a port from 1024 up (e.g. :8080, with a reverse proxy in front for port 80)", "CAP_NET_BIND_SERVICE"}},
		{"port refused by a policy", ":8080", bind(syscall.EACCES), []string{`--addr ":8080": permission denied by the system`, "choose another port with --addr"}},
		{"port in use", "127.0.0.1:8080", bind(syscall.EADDRINUSE), []string{`port 8080 is already in use by another program (is another dashboard running?`, "choose another port with --addr"}},
		{"address of another machine", "192.0.2.1:8080", bind(syscall.EADDRNOTAVAIL), []string{"192.0.2.1 is not an address of this machine", "127.0.0.1:8080 for this machine only, or :8080 for every network interface"}},
		{"host that does not resolve", "dash.invalid:8080", &net.OpError{Op: "listen", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "dash.invalid", IsNotFound: true}},
			[]string{"host dash.invalid cannot be resolved (no such host); give one of this machine's IP addresses, e.g. 127.0.0.1:8080"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlags("serve", io.Discard, func(string) string { return "" })
			var addr string
			f.string(&addr, "addr", "DASHBOARD_ADDR", "127.0.0.1:8080", "")
			if err := f.parse([]string{"--addr", tt.addr}); err != nil {
				t.Fatal(err)
			}
			msg := listenError(f, "addr", tt.addr, tt.err).Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q\nwant it to say %q", msg, w)
				}
			}
			if tt.name != "port in use" && strings.Contains(msg, "another dashboard") {
				t.Errorf("%q suspects another dashboard", msg)
			}
		})
	}
}

// TestDataDirectoryModes: an existing data directory that every user may write to is refused by
// serve and by the commands that open it, saying how to fix it, with nothing created in it; one
// its group may write to starts with a warning; an owner-only or a read-only-for-others one starts
// quietly.
func TestDataDirectoryModes(t *testing.T) {
	for _, tt := range []struct {
		mode os.FileMode
		want string // the refusal, or "" when it starts
		warn string // a warning logged when it starts
	}{
		{0o777, "is writable by every user (mode 0777), so anyone on this machine could replace its database or master key; run: chmod 700 ", ""},
		{0o703, "is writable by every user (mode 0703)", ""},
		{0o770, "", "is writable by its group (mode 0770)"},
		{0o755, "", ""},
		{0o700, "", ""},
	} {
		t.Run(tt.mode.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tt.mode); err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				s := startServing(t, dir)
				if err := s.stop(t); err != nil {
					t.Fatal(err)
				}
				p := strings.Join(logProblems(s.stderr.String()), "\n")
				if tt.warn == "" && p != "" || !strings.Contains(p, tt.warn) {
					t.Fatalf("logged %q, want %q", p, tt.warn)
				}
				return
			}
			for _, args := range [][]string{
				{"serve", "--addr", "127.0.0.1:0"},
				{"user", "add", "--email", "ana@example.com", "--role", "admin"},
				{"rotate-master-key"},
			} {
				_, _, err := cli(t, nil, "a long enough password\n", append(args, "--data", dir)...)
				if err == nil || !strings.Contains(err.Error(), "data directory "+dir+" "+tt.want) {
					t.Fatalf("%s: error %v, want one with %q", args[0], err, tt.want)
				}
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Fatalf("refused starts left %v in the data directory", left)
			}
			if _, err := os.Stat(filepath.Join(dir, secrets.KeyFileName)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a master key was created: %v", err)
			}
		})
	}
}

// TestPrintedURLsAreTheOnesServed: the default public URL, and the setup link made of it, carry
// the port bound (not port 0); an address on every network interface is logged as a warning
// while the public URL is the default made of 127.0.0.1 (and the setup link then says it works on
// this machine only), as information when a public URL is set.
func TestPrintedURLsAreTheOnesServed(t *testing.T) {
	for _, tt := range []struct {
		name      string
		args      []string
		warnings  []string
		localOnly bool
	}{
		{"loopback", nil, nil, false},
		{"every interface", []string{"--addr", ":0"}, []string{
			`listening on every network interface (--addr \":0\"): anyone who can reach this machine on port `,
			"the public URL http://127.0.0.1:",
		}, true},
		// The normal public set-up (the container image's): information, not a warning.
		{"every interface with a public URL", []string{"--addr", "0.0.0.0:0", "--public-url", "https://dash.example.com"}, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startServing(t, t.TempDir(), tt.args...)
			_, port, _ := net.SplitHostPort(s.addr)
			link := ""
			for _, line := range strings.Split(s.stdout.String(), "\n") {
				if strings.Contains(line, "/setup?token=") {
					link = strings.TrimSpace(line)
				}
			}
			if tt.localOnly || tt.args == nil {
				if want := "http://127.0.0.1:" + port + "/setup?token="; !strings.HasPrefix(link, want) {
					t.Fatalf("setup link %q, want it on the port served, %s", link, want)
				}
				res, err := http.Get(link)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					t.Fatalf("the setup link printed answers %d", res.StatusCode)
				}
			}
			if got := strings.Contains(s.stdout.String(), "The link works in a browser on this machine only"); got != tt.localOnly {
				t.Fatalf("setup link said it works on this machine only: %v, want %v\n%s", got, tt.localOnly, s.stdout)
			}
			if err := s.stop(t); err != nil {
				t.Fatal(err)
			}
			if want := `listening on every network interface (--addr \"0.0.0.0:0\") for the public URL https://dash.example.com`; tt.name == "every interface with a public URL" && !strings.Contains(s.stderr.String(), want) {
				t.Errorf("no information line %q in the log:\n%s", want, s.stderr)
			}
			problems := logProblems(s.stderr.String())
			if len(problems) != len(tt.warnings) {
				t.Fatalf("logged %d warnings, want %d: %q", len(problems), len(tt.warnings), problems)
			}
			for i, w := range tt.warnings {
				if !strings.Contains(problems[i], w) {
					t.Errorf("warning %q, want %q", problems[i], w)
				}
			}
		})
	}
}
