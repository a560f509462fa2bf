package main

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// allowedImports is the import rule of docs/architecture.md: imports only go downward, from
// cmd to web to the domain packages (events, environment, accounts, secrets) to the leaves (db,
// tensfer, feed, auth, ratelimit, validation, metrics, cluster), and templates import only static. Keys and values
// are paths below the module; a package missing here may import no other package of the module.
var allowedImports = map[string][]string{
	"cmd/dashboard": {"internal/web", "internal/events", "internal/environment", "internal/accounts", "internal/db",
		"internal/secrets", "internal/auth", "internal/tensfer", "internal/tensfer/tensfersim", "internal/rollout", "internal/launch", "internal/feed", "internal/validation", "internal/diskguard", "internal/tlsserve", "internal/metrics", "internal/cluster"},
	"internal/web": {"internal/events", "internal/environment", "internal/accounts", "internal/db", "internal/secrets",
		"internal/auth", "internal/tensfer", "internal/safehttp", "internal/rollout", "internal/launch", "internal/feed", "internal/ratelimit", "internal/validation",
		"internal/diskguard", "internal/alerts", "internal/metrics", "internal/auditdiff", "internal/cluster", "web/templates", "web/static"},
	"internal/alerts": {"internal/db", "internal/secrets", "internal/tensfer", "internal/auth", "internal/validation", "internal/environment",
		"internal/safehttp", "internal/diskguard", "internal/ratelimit", "internal/metrics", "internal/cluster"},
	"internal/events":             {"internal/db", "internal/secrets", "internal/tensfer", "internal/feed", "internal/auth", "internal/ratelimit", "internal/validation", "internal/diskguard", "internal/metrics", "internal/cluster"},
	"internal/tensfer/tensfersim": {"internal/tensfer"},
	"internal/safehttp":           nil,
	"internal/environment":        {"internal/db", "internal/secrets", "internal/tensfer", "internal/auth", "internal/validation", "internal/metrics", "internal/safehttp"},
	"internal/accounts":           {"internal/db", "internal/secrets", "internal/auth", "internal/validation", "internal/ratelimit", "internal/cluster"},
	"internal/launch":             {"internal/db", "internal/rollout", "internal/validation", "internal/metrics", "internal/cluster"},
	"internal/secrets":            {"internal/db", "internal/tensfer"},
	"web/templates":               {"web/static"},
	"internal/db":                 nil,
	"internal/auth":               nil,
	"internal/tensfer":            nil,
	"internal/rollout":            nil,
	"internal/feed":               nil,
	"internal/ratelimit":          nil,
	"internal/diskguard":          nil,
	"internal/tlsserve":           nil,
	"internal/validation":         nil,
	"internal/auditdiff":          nil, // pure: an audit row's before/after as field changes
	"internal/metrics":            nil, // Prometheus' client only: domain packages record into it
	"internal/cluster":            nil, // the Bus and Leader seams: standard library only
	"web/static":                  nil,
	"internal/pgtest":             nil,                                // tests only: a throwaway PostgreSQL cluster
	"internal/dbtest":             {"internal/db", "internal/pgtest"}, // tests only: a store of the suite's kind
	"scripts/screenshots":         nil,                                // a tool that drives Chromium against a running dashboard
}

func TestImportsOnlyGoDownward(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/tensfer-golive/dashboard/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/tensfer-golive/dashboard/"
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		allowed, known := allowedImports[pkg]
		if !known {
			t.Errorf("package %s is not in the layout of docs/architecture.md; add it to allowedImports (and docs/architecture.md) deliberately", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			imp = strings.TrimPrefix(imp, mod)
			ok := false
			for _, a := range allowed {
				ok = ok || a == imp
			}
			if !ok {
				t.Errorf("%s imports %s, which the layout forbids", pkg, imp)
			}
		}
	}
}

// TestOnlyServeWiresTheWebServer keeps the CLI's other commands off the HTTP stack: they call
// the domain packages directly.
func TestOnlyServeWiresTheWebServer(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || name == "serve.go" || name == "demo.go" {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if strings.HasSuffix(imp.Path.Value, `/internal/web"`) {
				t.Errorf("%s imports internal/web; commands other than serve call the domain packages", name)
			}
		}
	}
}

// TestWebIsHTTPOnly guards what internal/web must not do itself: SQL, sealing, and rules that
// belong to a domain package. It reads the package's source (tests excepted).
func TestWebIsHTTPOnly(t *testing.T) {
	files, err := filepath.Glob("../../internal/web/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("glob: %v (%d files)", err, len(files))
	}
	forbidden := []struct{ text, why string }{
		{`"database/sql"`, "SQL lives in internal/db"},
		{"SELECT ", "SQL lives in internal/db"},
		{"INSERT INTO", "SQL lives in internal/db"},
		{".Seal(", "sealing lives in internal/secrets and the domain packages"},
		{".Open(k.", "opening sealed values lives in the domain packages"},
		{"Ingester", "ingest goes through internal/events"},
		{"net/http/httptest", "production code does not fake requests"},
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range forbidden {
			if strings.Contains(string(src), f.text) {
				t.Errorf("%s contains %q: %s", filepath.Base(name), f.text, f.why)
			}
		}
	}
}
