package tensfer

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestImportsStayAtTheBottom guards the layering rule of docs/architecture.md for
// tensfer, its simulator and safehttp at the bottom: each uses only the
// standard library and imports no other package of this module but the
// ones listed (the simulator speaks the client's types). An external test
// package (package x_test) may also import the packages listed here, e.g.
// to run the client against the simulator.
func TestImportsStayAtTheBottom(t *testing.T) {
	const module = "github.com/tensfer-golive/dashboard/"
	bottom := []struct {
		dir, pkg string // dir is relative to this package's
		allowed  []string
	}{
		{".", "internal/tensfer", nil},
		{"tensfersim", "internal/tensfer/tensfersim", []string{"internal/tensfer"}},
		{"../safehttp", "internal/safehttp", nil},
	}
	inLayer := map[string]bool{}
	for _, b := range bottom {
		inLayer[b.pkg] = true
	}
	fset := token.NewFileSet()
	for _, b := range bottom {
		files, err := filepath.Glob(filepath.Join(b.dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("glob %s: %v (%d files)", b.dir, err, len(files))
		}
		for _, name := range files {
			f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			externalTest := strings.HasSuffix(f.Name.Name, "_test")
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				if rel, ok := strings.CutPrefix(path, module); ok {
					if !slices.Contains(b.allowed, rel) && !(externalTest && inLayer[rel]) {
						t.Errorf("%s imports %s, which %s must not import", name, path, b.pkg)
					}
					continue
				}
				if first := strings.Split(path, "/")[0]; !strings.HasPrefix(first, "golang.org") && strings.Contains(first, ".") {
					t.Errorf("%s imports %s; %s uses only the standard library", name, path, b.pkg)
				}
			}
		}
	}
}
