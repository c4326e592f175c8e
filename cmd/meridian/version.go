package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/meridian-sd/meridian/internal/buildinfo"
)

// cmdVersion prints the version, commit and build date: stamped by
// `make build`/`make release` (-ldflags -X .../internal/buildinfo.version=...),
// else read from the Go build info.
func cmdVersion(args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the build information as JSON")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("usage: meridian version [--json]")
	}
	bi := buildinfo.Get()
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(bi)
	}
	fmt.Println(bi.String())
	return nil
}
