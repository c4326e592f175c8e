// Package buildinfo says which build of Meridian is running: the version,
// commit and build date stamped by `make build`/`make release` with
// -ldflags -X, else what the Go toolchain recorded (runtime/debug).
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set at link time, e.g.
//
//	go build -ldflags "-X github.com/meridian-sd/meridian/internal/buildinfo.version=v0.3.0
//	  -X github.com/meridian-sd/meridian/internal/buildinfo.commit=0123abcd
//	  -X github.com/meridian-sd/meridian/internal/buildinfo.date=2026-11-30T20:00:00Z"
var (
	version string
	commit  string
	date    string
)

// Info describes the running binary.
type Info struct {
	Version  string `json:"version"`  // v0.3.0, or "dev"
	Commit   string `json:"commit"`   // the VCS revision, or "unknown"
	Date     string `json:"date"`     // build (or commit) time, RFC 3339, or "unknown"
	Go       string `json:"go"`       // the Go toolchain, e.g. go1.26.8
	Modified bool   `json:"modified"` // built from a tree with uncommitted changes
	Platform string `json:"platform"` // GOOS/GOARCH
}

// Get returns the build's information: -ldflags -X values first, then the
// module version and VCS stamps of debug.ReadBuildInfo.
func Get() Info {
	return get(debug.ReadBuildInfo)
}

func get(read func() (*debug.BuildInfo, bool)) Info {
	in := Info{Version: version, Commit: commit, Date: date, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := read(); ok {
		in.Go = bi.GoVersion
		if in.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			in.Version = bi.Main.Version // go install module@version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if in.Commit == "" {
					in.Commit = s.Value
				}
			case "vcs.time":
				if in.Date == "" {
					in.Date = s.Value
				}
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
	}
	if in.Version == "" {
		in.Version = "dev"
	}
	if in.Commit == "" {
		in.Commit = "unknown"
	}
	if in.Date == "" {
		in.Date = "unknown"
	}
	return in
}

// ShortCommit is the commit's first 12 characters.
func (in Info) ShortCommit() string {
	if len(in.Commit) > 12 {
		return in.Commit[:12]
	}
	return in.Commit
}

// String is the one line `meridian version` prints.
func (in Info) String() string {
	dirty := ""
	if in.Modified {
		dirty = " (modified)"
	}
	return fmt.Sprintf("meridian %s\ncommit %s%s\nbuilt %s\n%s %s", in.Version, in.Commit, dirty, in.Date, in.Go, in.Platform)
}
