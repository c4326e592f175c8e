package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The meridian binary is built once for all tests of this package instead
// of once per test (each build links for seconds on a busy machine).
var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildOut  []byte
	buildErr  error
)

func builtBinary() (string, []byte, error) {
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "meridian-test-bin-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "meridian")
		buildOut, buildErr = exec.Command("go", "build", "-o", buildBin, ".").CombinedOutput()
	})
	return buildBin, buildOut, buildErr
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		if err := os.RemoveAll(buildDir); err != nil {
			fmt.Fprintln(os.Stderr, "remove test binary:", err)
		}
	}
	os.Exit(code)
}
