package main

import (
	"fmt"
	"io"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/tensfer-golive/dashboard/internal/db"
)

// buildVersion may be set at link time (-ldflags "-X main.buildVersion=v1.2.3") by a packager
// building without the repository's history; otherwise the build info says.
var buildVersion = ""

// build describes the running binary, from what the Go toolchain embeds in it.
type build struct {
	Module    string // module path
	Version   string // module version: a tag (v1.2.3), a pseudo-version, or "(devel)"
	Revision  string // VCS commit; "" when built without VCS information (go run, go test)
	Time      string // commit time, RFC 3339; a reproducible build has no other build time
	Modified  bool   // built from sources with uncommitted changes
	GoVersion string
	Platform  string // GOOS/GOARCH
	Override  string // buildVersion
}

func readBuild() build {
	bi, ok := debug.ReadBuildInfo()
	return buildFrom(bi, ok, buildVersion)
}

func buildFrom(bi *debug.BuildInfo, ok bool, override string) build {
	b := build{GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH, Override: override}
	if !ok || bi == nil {
		return b
	}
	goos, goarch := runtime.GOOS, runtime.GOARCH
	b.Module, b.Version = bi.Main.Path, bi.Main.Version
	if bi.GoVersion != "" {
		b.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	b.Platform = goos + "/" + goarch
	return b
}

// pseudoVersion matches the end of a Go pseudo-version (v0.0.0-20261130120000-0123456789ab): a
// build between tags, named after its commit.
var pseudoVersion = regexp.MustCompile(`(^|[-.])\d{14}-[0-9a-f]{12}$`)

// Short is the version shown in the sidebar, /healthz, logs and the User-Agent: the release tag
// (v1.2.3), else "dev-" and the commit's first 12 characters, else "dev"; with "+dirty" when
// built from modified sources.
func (b build) Short() string {
	if b.Override != "" {
		return b.Override
	}
	v := strings.TrimSuffix(b.Version, "+dirty")
	switch {
	case v != "" && v != "(devel)" && !pseudoVersion.MatchString(v):
	case len(b.Revision) >= 12:
		v = "dev-" + b.Revision[:12]
	default:
		v = "dev"
	}
	if b.Modified {
		v += "+dirty"
	}
	return v
}

// print writes what `dashboard version` shows.
func (b build) print(w io.Writer) {
	unknown := func(s, why string) string {
		if s == "" {
			return "unknown (" + why + ")"
		}
		return s
	}
	noVCS := "built without VCS information, as by go run or go test"
	rev := unknown(b.Revision, noVCS)
	if b.Modified {
		rev += " (+dirty: uncommitted changes)"
	}
	fmt.Fprintf(w, "dashboard %s\n", b.Short())
	fmt.Fprintf(w, "  module    %s %s\n", unknown(b.Module, "no build information"), unknown(b.Version, "no build information"))
	fmt.Fprintf(w, "  revision  %s\n", rev)
	fmt.Fprintf(w, "  time      %s\n", unknown(b.Time, noVCS))
	fmt.Fprintf(w, "  go        %s %s\n", b.GoVersion, b.Platform)
	fmt.Fprintf(w, "  schema    %d (the newest database schema this binary knows)\n", db.KnownSchemaVersion())
}

// version is the short version of the running binary.
func version() string { return readBuild().Short() }
