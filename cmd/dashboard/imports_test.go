package main

import (
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// allowedImports is the import rule of docs/architecture.md: imports only go downward, from
// cmd to web to the domain packages (events, environment, accounts, secrets) to the leaves (db,
// tensfer, feed, auth, ratelimit, validation, metrics, cluster), and templates import only static. Keys and values
// are paths below the module; a package missing here may import no other package of the module.
var allowedImports = map[string][]string{
	"cmd/dashboard": {"internal/web", "internal/app", "internal/events", "internal/environment", "internal/accounts", "internal/db",
		"internal/secrets", "internal/auth", "internal/tensfer", "internal/tensfer/tensfersim", "internal/rollout", "internal/launch", "internal/feed", "internal/validation", "internal/diskguard", "internal/tlsserve", "internal/metrics", "internal/cluster"},
	"internal/web": {"internal/app", "internal/events", "internal/environment", "internal/accounts", "internal/db", "internal/secrets",
		"internal/auth", "internal/tensfer", "internal/safehttp", "internal/rollout", "internal/launch", "internal/feed", "internal/ratelimit", "internal/validation",
		"internal/diskguard", "internal/alerts", "internal/metrics", "internal/auditdiff", "internal/cluster", "web/templates", "web/static"},
	"internal/alerts": {"internal/db", "internal/secrets", "internal/tensfer", "internal/auth", "internal/validation", "internal/environment",
		"internal/safehttp", "internal/diskguard", "internal/ratelimit", "internal/metrics", "internal/cluster"},
	"internal/events":             {"internal/db", "internal/secrets", "internal/tensfer", "internal/feed", "internal/auth", "internal/ratelimit", "internal/validation", "internal/diskguard", "internal/metrics", "internal/cluster"},
	"internal/tensfer/tensfersim": {"internal/tensfer"},
	"internal/safehttp":           nil,
	"internal/environment":        {"internal/db", "internal/secrets", "internal/tensfer", "internal/auth", "internal/validation", "internal/metrics", "internal/safehttp"},
	"internal/app": {"internal/accounts", "internal/alerts", "internal/auth", "internal/cluster", "internal/db", "internal/diskguard",
		"internal/environment", "internal/events", "internal/launch", "internal/metrics", "internal/safehttp", "internal/secrets"},
	"internal/accounts":   {"internal/db", "internal/secrets", "internal/auth", "internal/validation", "internal/ratelimit", "internal/cluster"},
	"internal/launch":     {"internal/db", "internal/rollout", "internal/validation", "internal/metrics", "internal/cluster"},
	"internal/secrets":    {"internal/db", "internal/tensfer"},
	"web/templates":       {"web/static"},
	"internal/db":         nil,
	"internal/auth":       nil,
	"internal/tensfer":    nil,
	"internal/rollout":    nil,
	"internal/feed":       nil,
	"internal/ratelimit":  nil,
	"internal/diskguard":  nil,
	"internal/tlsserve":   nil,
	"internal/validation": nil,
	"internal/auditdiff":  nil, // pure: an audit row's before/after as field changes
	"internal/metrics":    nil, // Prometheus' client only: domain packages record into it
	"internal/cluster":    nil, // the Bus and Leader seams: standard library only
	"web/static":          nil,
	"internal/pgtest":     nil,                                // tests only: a throwaway PostgreSQL cluster
	"internal/dbtest":     {"internal/db", "internal/pgtest"}, // tests only: a store of the suite's kind
	"scripts/screenshots": nil,                                // a tool that drives Chromium against a running dashboard
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

// webReadsFromStore is every *db.DB method internal/web may call: reads, for its lists and
// pages. Writes (audit rows, sessions, tokens, setup, sign-out) go through the service that owns
// them (accounts, events, environment, launch), which also tells the other instances when it
// must; so a write method called from internal/web fails TestWebWritesOnlyThroughServices. Add
// a method here only if it changes nothing stored. Each entry must be called (a stale one fails
// too), so the list says exactly what web reads.
var webReadsFromStore = []string{
	"CountUserSessions", "CountUsers", "Cohort", "EnvironmentByName", "EventByID", "ListAudit", "ListEvents",
	"ListRejected", "ListReplayAttempts", "ListTokens", "ListUsers", "Ping", "RecentUserIDs",
	"SchemaVersion", "SessionByID", "SetupTokenValid", "TokenBySecret", "TwoFactorUsers", "UserByID",
}

const dbPath = "github.com/tensfer-golive/dashboard/internal/db"

// storeCalls type-checks the given files as package path (against the compiled export data of
// what it imports) and returns, sorted, each use of a *db.DB method as "file:line Method".
func storeCalls(t *testing.T, path string, fset *token.FileSet, files []*ast.File) []string {
	t.Helper()
	info := &types.Info{Selections: map[*ast.SelectorExpr]*types.Selection{}}
	conf := types.Config{Importer: exportImporter(t, fset)}
	if _, err := conf.Check(path, fset, files, info); err != nil {
		t.Fatalf("type-check %s: %v", path, err)
	}
	var out []string
	for sel, s := range info.Selections {
		if s.Kind() != types.MethodVal && s.Kind() != types.MethodExpr {
			continue
		}
		if !isStore(s.Obj().(*types.Func).Type().(*types.Signature).Recv().Type()) {
			continue
		}
		p := fset.Position(sel.Sel.Pos())
		out = append(out, fmt.Sprintf("%s:%d %s", filepath.Base(p.Filename), p.Line, s.Obj().Name()))
	}
	sort.Strings(out)
	return out
}

// isStore reports whether a method receiver is db.DB or *db.DB.
func isStore(recv types.Type) bool {
	if p, ok := recv.(*types.Pointer); ok {
		recv = p.Elem()
	}
	n, ok := recv.(*types.Named)
	return ok && n.Obj().Name() == "DB" && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == dbPath
}

// exportImporter imports packages from the compiler's export data, which `go list -export`
// builds (or finds in the build cache) for internal/web and everything it depends on.
func exportImporter(t *testing.T, fset *token.FileSet) types.Importer {
	t.Helper()
	out, err := exec.Command("go", "list", "-export", "-deps", "-f", "{{.ImportPath}}={{.Export}}", "github.com/tensfer-golive/dashboard/internal/web").Output()
	if err != nil {
		t.Fatalf("go list -export: %v", err)
	}
	exports := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if p, file, ok := strings.Cut(line, "="); ok && file != "" {
			exports[p] = file
		}
	}
	return importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(file)
	})
}

// TestWebWritesOnlyThroughServices is the seam of docs/architecture.md: internal/web reads
// through the store for its pages, and writes only through the services.
func TestWebWritesOnlyThroughServices(t *testing.T) {
	names, err := filepath.Glob("../../internal/web/*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	allowed := map[string]bool{}
	for _, m := range webReadsFromStore {
		allowed[m] = true
	}
	seen := map[string]bool{}
	for _, call := range storeCalls(t, "github.com/tensfer-golive/dashboard/internal/web", fset, files) {
		_, method, _ := strings.Cut(call, " ")
		seen[method] = true
		if !allowed[method] {
			t.Errorf("%s: internal/web calls the store's %s, which is not a read in webReadsFromStore; write through the service that owns it (accounts, events, environment, launch)", call, method)
		}
	}
	// The scan proves itself: it finds every read it allows, so a scan that finds nothing fails.
	for _, m := range webReadsFromStore {
		if !seen[m] {
			t.Errorf("webReadsFromStore allows %s, but internal/web does not call it (or the scan missed it); remove it from the list", m)
		}
	}
}

// TestStoreCallsFindsWrites shows that the scan catches a write in each form it can take: a call,
// a method value handed on (as a callback), and a call through a *db.DB held in a field.
func TestStoreCallsFindsWrites(t *testing.T) {
	const src = `package web

import (
	"context"

	"github.com/tensfer-golive/dashboard/internal/db"
)

type holder struct{ d *db.DB }

func writes(ctx context.Context, d *db.DB, h holder) {
	_ = d.InsertAudit(ctx, db.Audit{})
	write := d.DeleteSession
	_ = write
	_, _ = h.d.RevokeToken(ctx, 1, db.Audit{})
	_, _ = d.SessionByID(ctx, "x")
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "writes.go", src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(storeCalls(t, "github.com/tensfer-golive/dashboard/internal/web", fset, []*ast.File{f}), "; ")
	want := "writes.go:12 InsertAudit; writes.go:13 DeleteSession; writes.go:15 RevokeToken; writes.go:16 SessionByID"
	if got != want {
		t.Errorf("store calls found:\n got %s\nwant %s", got, want)
	}
}
