package tensfer

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsNoInternalPackage guards the layering rule of DESIGN.md §3:
// tensfer sits at the bottom and imports no other internal package.
func TestImportsNoInternalPackage(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("glob: %v (%d files)", err, len(files))
	}
	fset := token.NewFileSet()
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/tensfer-golive/dashboard/") {
				t.Errorf("%s imports %s; tensfer must not import other internal packages", name, path)
			}
			if !strings.HasPrefix(strings.Split(path, "/")[0], "golang.org") && strings.Contains(strings.Split(path, "/")[0], ".") {
				t.Errorf("%s imports %s; tensfer uses only the standard library", name, path)
			}
		}
	}
}
