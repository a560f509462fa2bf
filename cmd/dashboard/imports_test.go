package main

import (
	"os/exec"
	"strings"
	"testing"
)

// allowedImports is DESIGN.md's import rule: imports only go downward. Keys and values are paths
// below the module; a package missing here may import no other package of the module.
var allowedImports = map[string][]string{
	"cmd/dashboard":               {"internal/web", "internal/db", "internal/secrets", "internal/auth", "internal/tensfer", "internal/tensfer/tensfersim", "internal/rollout", "internal/feed"},
	"internal/web":                {"internal/db", "internal/secrets", "internal/auth", "internal/tensfer", "internal/tensfer/tensfersim", "internal/safehttp", "internal/rollout", "internal/feed", "web/templates", "web/static"},
	"web/templates":               {"web/static"},
	"internal/db":                 nil,
	"internal/secrets":            nil,
	"internal/auth":               nil,
	"internal/tensfer":            nil,
	"internal/tensfer/tensfersim": {"internal/tensfer"},
	"internal/safehttp":           nil,
	"internal/rollout":            nil,
	"internal/feed":               nil,
	"web/static":                  nil,
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
			t.Errorf("package %s is not in the layout of DESIGN.md section 3; add it to allowedImports deliberately", pkg)
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
