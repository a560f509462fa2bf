package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/db"
)

func TestShortVersionFromBuildInfo(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: "2026-11-30T12:57:01Z"}, {Key: "vcs.modified", Value: modified}}
	}
	tests := []struct {
		name     string
		version  string
		settings []debug.BuildSetting
		override string
		want     string
	}{
		{"a release tag", "v1.4.2", vcs("false"), "", "v1.4.2"},
		{"a release tag with changes", "v1.4.2+dirty", vcs("true"), "", "v1.4.2+dirty"},
		{"between tags", "v0.0.0-20261130125701-0123456789ab", vcs("false"), "", "dev-0123456789ab"},
		{"after a tag, with changes", "v1.4.3-0.20261130125701-0123456789ab+dirty", vcs("true"), "", "dev-0123456789ab+dirty"},
		{"devel with VCS information", "(devel)", vcs("false"), "", "dev-0123456789ab"},
		{"go run or go test", "(devel)", nil, "", "dev"},
		{"set at link time", "(devel)", nil, "v2.0.0-debian1", "v2.0.0-debian1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bi := &debug.BuildInfo{GoVersion: "go1.27.3", Main: debug.Module{Path: "github.com/tensfer-golive/dashboard", Version: tt.version}, Settings: tt.settings}
			if got := buildFrom(bi, true, tt.override).Short(); got != tt.want {
				t.Errorf("Short() = %q, want %q", got, tt.want)
			}
		})
	}
	if got := buildFrom(nil, false, "").Short(); got != "dev" {
		t.Errorf("without build info: %q", got)
	}
}

// TestVersion runs `dashboard version` as go test builds it: no VCS information, which it says.
func TestVersion(t *testing.T) {
	out, _, err := cli(t, nil, "", "version")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"dashboard " + version() + "\n", "revision  unknown (built without VCS information", "go        " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		fmt.Sprintf("schema    %d (", db.KnownSchemaVersion())} {
		if !strings.Contains(out, want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
	if _, _, err := cli(t, nil, "", "version", "--long"); err == nil {
		t.Error("version accepted an argument")
	}
}
