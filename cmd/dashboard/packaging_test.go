package main

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is the repository's root directory, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// needBuilds skips a test that builds the dashboard with the go command: with -short, or when
// the command or the named tools are missing.
func needBuilds(t *testing.T, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the dashboard; skipped with -short")
	}
	for _, tool := range append([]string{"go"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s on PATH", tool)
		}
	}
}

// skipUnlessCI skips a test that needs a tool missing here, but fails it under CI, which installs
// every tool the tests need: a CI run must not pass having checked nothing.
func skipUnlessCI(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal("CI=true but " + why + "; .ci/run must install it")
	}
	t.Skip(why)
}

// dockerfile is the repository's Dockerfile as instructions (continuation lines joined).
type dockerfile struct {
	instructions [][2]string // keyword (upper case), rest of the line
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var df dockerfile
	var cur string
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur += strings.TrimSuffix(trimmed, `\`) + " "
			continue
		}
		cur += trimmed
		kw, rest, _ := strings.Cut(cur, " ")
		df.instructions = append(df.instructions, [2]string{strings.ToUpper(kw), strings.TrimSpace(rest)})
		cur = ""
	}
	return df
}

// all returns the arguments of every instruction with keyword kw, in order.
func (df dockerfile) all(kw string) []string {
	var out []string
	for _, in := range df.instructions {
		if in[0] == kw {
			out = append(out, in[1])
		}
	}
	return out
}

// stage returns the instructions of the build stage named name (FROM ... AS name).
func (df dockerfile) stage(name string) dockerfile {
	var out dockerfile
	in := false
	for _, ins := range df.instructions {
		if ins[0] == "FROM" {
			in = strings.HasSuffix(strings.ToLower(ins[1]), " as "+name)
			continue
		}
		if in {
			out.instructions = append(out.instructions, ins)
		}
	}
	return out
}

// envPairs parses ENV KEY=value pairs (values without spaces, as in our Dockerfile).
func envPairs(lines []string) map[string]string {
	env := map[string]string{}
	for _, l := range lines {
		for _, kv := range strings.Fields(l) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	return env
}

// shellWords splits a command line as sh does for words, double and single quotes (no expansion).
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// goBuildCommand is the Dockerfile's `go build` command (from the build stage's RUN lines) and
// the environment its ENV lines give it.
func goBuildCommand(t *testing.T, df dockerfile) (args []string, env map[string]string) {
	t.Helper()
	build := df.stage("build")
	for _, run := range build.all("RUN") {
		if i := strings.Index(run, "go build "); i >= 0 {
			return shellWords(run[i:]), envPairs(build.all("ENV"))
		}
	}
	t.Fatal("the Dockerfile's build stage has no RUN ... go build")
	return nil, nil
}

// commandEnv is this process's environment without the Go settings a test run may carry,
// plus extra.
func commandEnv(extra map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, set := extra[k]; !set && !strings.HasPrefix(k, "DASHBOARD_") {
			env = append(env, kv)
		}
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// assertShippable checks a built binary as it is shipped: statically linked, with no path of
// the build machine in it, and `version` saying which commit and Go built it.
func assertShippable(t *testing.T, bin, root string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	libs, _ := f.ImportedLibraries()
	interp := slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
	f.Close()
	if interp || len(libs) > 0 {
		t.Errorf("%s is dynamically linked (interpreter %v, libraries %v)", bin, interp, libs)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(root)) {
		t.Errorf("%s holds the build machine's path %s (-trimpath missing)", bin, root)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s version: %v\n%s", bin, err, out)
	}
	if head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output(); err == nil {
		if rev := strings.TrimSpace(string(head)); !strings.Contains(string(out), "revision  "+rev) {
			t.Errorf("version does not name the commit %s:\n%s", rev, out)
		}
	}
	if !strings.Contains(string(out), "go        go1.27.3 ") {
		t.Errorf("version does not name the Go it was built with:\n%s", out)
	}
}

// TestDockerfileBuildsAStaticBinary builds the dashboard with the Dockerfile's own go build
// line and build-stage environment (the engine is not needed for that part), checks the binary
// is what the final stage can run (static, no build paths, version stamped) and that the image's
// settings fit together: a non-root numeric user, the exposed port is the one it listens on, the
// data directory is the volume, and the HEALTHCHECK runs a command this binary has.
func TestDockerfileBuildsAStaticBinary(t *testing.T) {
	needBuilds(t, "git")
	root := repoRoot(t)
	df := readDockerfile(t)
	args, env := goBuildCommand(t, df)
	if env["CGO_ENABLED"] != "0" {
		t.Errorf("the build stage sets CGO_ENABLED=%q, want 0 for a static binary", env["CGO_ENABLED"])
	}
	if got, want := env["GOTOOLCHAIN"], "go1.27.3"; got != want {
		t.Errorf("the build stage pins GOTOOLCHAIN=%q, want %s as CI", got, want)
	}
	if from := df.all("FROM"); len(from) < 2 || !strings.HasPrefix(from[0], "golang:1.27.3-") {
		t.Errorf("the builder image %q is not golang:1.27.3", from)
	}
	for _, flag := range []string{"-trimpath", "-ldflags=-s -w -buildid="} {
		if !slices.Contains(args, flag) {
			t.Errorf("the Dockerfile's go build %q lacks %s", args, flag)
		}
	}
	out := filepath.Join(t.TempDir(), "dashboard")
	i := slices.Index(args, "-o")
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("the Dockerfile's go build %q has no -o", args)
	}
	args[i+1] = out
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = root
	cmd.Env = commandEnv(env)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, b)
	}
	assertShippable(t, out, root)

	final := envPairs(df.all("ENV"))
	user := df.all("USER")
	if len(user) != 1 {
		t.Fatalf("USER %q: want one", user)
	}
	if uid, err := strconv.Atoi(strings.Split(user[0], ":")[0]); err != nil || uid == 0 {
		t.Errorf("USER %s: want a numeric user that is not root", user[0])
	}
	_, port, err := net.SplitHostPort(final["DASHBOARD_ADDR"])
	if err != nil || !slices.Contains(df.all("EXPOSE"), port) {
		t.Errorf("EXPOSE %v does not match DASHBOARD_ADDR=%s", df.all("EXPOSE"), final["DASHBOARD_ADDR"])
	}
	if v := df.all("VOLUME"); len(v) != 1 || v[0] != final["DASHBOARD_DATA"] {
		t.Errorf("VOLUME %v is not DASHBOARD_DATA=%s", v, final["DASHBOARD_DATA"])
	}
	entry := df.all("ENTRYPOINT")
	hc := df.all("HEALTHCHECK")
	if len(entry) != 1 || len(hc) != 1 {
		t.Fatalf("ENTRYPOINT %q, HEALTHCHECK %q: want one of each", entry, hc)
	}
	binary := strings.Trim(strings.Trim(entry[0], "[]"), `"`)
	if !strings.Contains(hc[0], `CMD ["`+binary+`", "healthcheck"]`) {
		t.Errorf("HEALTHCHECK %q does not run %s healthcheck", hc[0], binary)
	}
	if copies := strings.Join(df.all("COPY"), "\n"); !strings.Contains(copies, " "+binary) {
		t.Errorf("no COPY puts the binary at %s:\n%s", binary, copies)
	}
	// The health check, as the image runs it (DASHBOARD_ADDR from the image), with nothing
	// listening: it must exist in this binary and report unhealthy with exit status 1.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	closed.Close()
	check := exec.Command(out, "healthcheck")
	check.Env = commandEnv(map[string]string{"DASHBOARD_ADDR": addr})
	b, err := check.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(b), "unhealthy") {
		t.Errorf("healthcheck with nothing listening: %v\n%s", err, b)
	}
}

// TestReleaseIsReproducible runs scripts/release twice for this machine's architecture into two
// directories: the binaries and their SHA256SUMS must be identical, static, free of build paths
// and stamped with the commit. NB: both runs share the Go build cache, so this checks that
// linking and stamping add nothing of the moment or the place (the compiled packages' own
// independence from the directory is what -trimpath gives them).
func TestReleaseIsReproducible(t *testing.T) {
	needBuilds(t, "bash", "git", "sha256sum")
	if runtime.GOOS != "linux" {
		t.Skip("scripts/release builds linux binaries; this test runs one")
	}
	root := repoRoot(t)
	if err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Run(); err != nil {
		t.Skip("needs a git checkout: the release is stamped with the commit")
	}
	target := "linux/" + runtime.GOARCH
	name := "dashboard-linux-" + runtime.GOARCH
	var sums [2]string
	var bins [2]string
	for i := range 2 {
		dist := t.TempDir()
		cmd := exec.Command("bash", filepath.Join(root, "scripts", "release"), target)
		cmd.Env = commandEnv(map[string]string{"DIST": dist})
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("scripts/release: %v\n%s", err, out)
		}
		b, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
		if err != nil {
			t.Fatal(err)
		}
		sums[i], bins[i] = string(b), filepath.Join(dist, name)
	}
	if sums[0] != sums[1] {
		t.Fatalf("two release builds differ:\n%s\n%s", sums[0], sums[1])
	}
	bin, _ := os.ReadFile(bins[0])
	sum := sha256.Sum256(bin)
	if want := hex.EncodeToString(sum[:]) + "  " + name + "\n"; sums[0] != want {
		t.Errorf("SHA256SUMS says %q, the binary is %q", sums[0], want)
	}
	assertShippable(t, bins[0], root)
}

// systemdUnit is the shipped unit file's path.
func systemdUnit(t *testing.T) string {
	return filepath.Join(repoRoot(t), "packaging", "systemd", "tensfer-dashboard.service")
}

// TestSystemdUnitVerifies checks the unit with systemd-analyze verify (a temporary copy whose
// ExecStart names an executable that exists here): no error and no warning, such as a
// misspelt setting, which systemd would ignore.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		skipUnlessCI(t, "systemd-analyze is not installed; the unit is checked where it is (CI)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(systemdUnit(t))
	if err != nil {
		t.Fatal(err)
	}
	const exec0 = "ExecStart=/usr/local/bin/dashboard serve"
	if !bytes.Contains(src, []byte(exec0)) {
		t.Fatalf("the unit has no %q line", exec0)
	}
	unit := filepath.Join(t.TempDir(), "tensfer-dashboard.service")
	os.WriteFile(unit, bytes.Replace(src, []byte(exec0), []byte("ExecStart="+self+" serve"), 1), 0o644)
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSystemdUnitIsHardened reads systemd-analyze security's offline report of the unit: the
// overall exposure stays at or below what was measured (1.4, "OK"), and every check it fails is
// one we accept for a reason written here.
func TestSystemdUnitIsHardened(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		skipUnlessCI(t, "systemd-analyze is not installed; the unit is checked where it is (CI)")
	}
	accepted := map[string]string{
		"RootDirectory=/RootImage=": "a static binary could run in an empty root, but the host's (read-only) keeps the unit simple",
		"AmbientCapabilities=":      "CAP_NET_BIND_SERVICE, to listen on :443",
		"CapabilityBoundingSet=~CAP_NET_(BIND_SERVICE|BROADCAST|RAW)": "CAP_NET_BIND_SERVICE, to listen on :443",
		"RestrictAddressFamilies=~AF_UNIX":                            "journald and the notify socket",
		"RestrictAddressFamilies=~AF_(INET|INET6)":                    "it is a network server",
		"PrivateNetwork=": "it is a network server",
		"PrivateUsers=":   "a user namespace could not bind :443 in the host's network",
		"DeviceAllow=":    "ProtectClock's read access to the RTC",
		"IPAddressDeny=":  "it calls Tensfer and replay targets, whose addresses are the admins' choice",
	}
	cmd := exec.Command(analyze, "security", "--offline=yes", "--no-pager", systemdUnit(t))
	cmd.Env = commandEnv(map[string]string{"SYSTEMD_COLORS": "0"})
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	overall := regexp.MustCompile(`Overall exposure level for \S+: ([0-9]+\.[0-9]) (\S+)`).FindSubmatch(out)
	if overall == nil {
		t.Fatalf("no overall exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(overall[1]), 64)
	if score > 1.4 || string(overall[2]) != "OK" {
		t.Errorf("exposure %s %s, want at most 1.4 OK", overall[1], overall[2])
	}
	failed := 0
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "✗") {
			continue
		}
		failed++
		fields := strings.Fields(strings.TrimPrefix(line, "✗"))
		if len(fields) == 0 {
			continue
		}
		if _, ok := accepted[fields[0]]; !ok {
			t.Errorf("the unit fails the check %s, which is not one we accept:\n%s", fields[0], line)
		}
	}
	if failed == 0 {
		t.Fatalf("no failed check listed; the report's format changed?\n%s", out)
	}
}

// TestPackagedSettingsExist: every DASHBOARD_* setting the packages and the operations guide
// name is one `dashboard serve` reads, and the compose example believes forwarded addresses from
// its Caddy and nobody else.
func TestPackagedSettingsExist(t *testing.T) {
	_, help, _ := cli(t, nil, "", "serve", "-h")
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`env (DASHBOARD_[A-Z_]+)( or (DASHBOARD_[A-Z_]+))?`).FindAllStringSubmatch(help, -1) {
		known[m[1]] = true
		if m[3] != "" {
			known[m[3]] = true
		}
	}
	if !known["DASHBOARD_TRUSTED_PROXIES"] || !known["DASHBOARD_MASTER_KEY_FILE"] {
		t.Fatalf("could not read the settings from serve -h:\n%s", help)
	}
	root := repoRoot(t)
	for _, name := range []string{"Dockerfile", "packaging/docker-compose.yml", "packaging/docker-compose.cluster.yml", "packaging/systemd/tensfer-dashboard.service", "packaging/systemd/dashboard.env", "docs/operations.md", "README.md"} {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range regexp.MustCompile(`DASHBOARD_[A-Z_]*[A-Z]`).FindAllString(string(b), -1) {
			if !known[v] {
				t.Errorf("%s names %s, which dashboard serve does not read", name, v)
			}
		}
	}
	for _, name := range []string{"docker-compose.yml", "docker-compose.cluster.yml"} {
		compose, _ := os.ReadFile(filepath.Join(root, "packaging", name))
		caddy := regexp.MustCompile(`ipv4_address: (\S+)`).FindSubmatch(compose)
		trusted := regexp.MustCompile(`DASHBOARD_TRUSTED_PROXIES: (\S+)`).FindSubmatch(compose)
		if caddy == nil || trusted == nil || string(caddy[1]) != string(trusted[1]) {
			t.Errorf("%s trusts %q as proxy, but Caddy's address is %q", name, trusted, caddy)
		}
	}
}
