package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	stamped := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-11-30T20:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}, true
	}
	devel := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, true
	}
	for _, c := range []struct {
		name                string
		v, c, d             string
		read                func() (*debug.BuildInfo, bool)
		wantV, wantC, wantD string
		wantModified        bool
	}{
		{"from the toolchain", "", "", "", stamped, "v1.2.3", "0123456789abcdef0123", "2026-11-30T20:00:00Z", true},
		{"ldflags win", "v9.9.9", "abc", "2026-01-01T00:00:00Z", stamped, "v9.9.9", "abc", "2026-01-01T00:00:00Z", true},
		{"nothing known", "", "", "", devel, "dev", "unknown", "unknown", false},
		{"no build info", "", "", "", func() (*debug.BuildInfo, bool) { return nil, false }, "dev", "unknown", "unknown", false},
	} {
		version, commit, date = c.v, c.c, c.d
		got := get(c.read)
		if got.Version != c.wantV || got.Commit != c.wantC || got.Date != c.wantD || got.Modified != c.wantModified {
			t.Errorf("%s: got %+v, want version %s commit %s date %s modified %v", c.name, got, c.wantV, c.wantC, c.wantD, c.wantModified)
		}
	}
	version, commit, date = "", "", ""
	if s := Get().String(); !strings.HasPrefix(s, "meridian ") || !strings.Contains(s, "commit ") {
		t.Errorf("String: %q", s)
	}
}
