package sim

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// fusedOps are the arm64 fused multiply-add instructions. The Go spec lets
// a compiler fuse x*y+z into one of them (one rounding instead of two) unless
// the product is explicitly converted (float64(x*y)), so a simulation would
// replay differently on an ARM laptop than on x86 CI.
var fusedOps = regexp.MustCompile(`\b(FMADD|FMSUB|FNMADD|FNMSUB)[SD]\b`)

// The functions known to have been fused (and rewritten): they must appear
// in the assembly, so that the check cannot pass by looking at nothing.
var fusionWatched = []string{
	"github.com/meridian-sd/meridian/sim/gossip.Profile.suspicionTimeout",
	"github.com/meridian-sd/meridian/failover.(*P2C).Observe",
}

// TestNoFusedFloatOnArm64 compiles the simulator for arm64 with -S and
// fails on any fused multiply-add in Meridian's own code.
func TestNoFusedFloatOnArm64(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the simulator for arm64 (about 10 s)")
	}
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(gobin, "build", "-gcflags=github.com/meridian-sd/meridian/...=-S", "-o", os.DevNull, ".")
	cmd.Env = append(os.Environ(), "GOARCH=arm64", "GOOS=linux", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build for arm64: %v\n%s", err, tail(out))
	}
	fused, seen := fusedFunctions(out)
	for _, fn := range fusionWatched {
		if !seen[fn] {
			t.Errorf("no assembly for %s: renamed? (update fusionWatched)", fn)
		}
	}
	for _, f := range fused {
		t.Errorf("fused multiply-add on arm64 in %s: write products as float64(x*y)", f)
	}
}

// fusedFunctions reads `go build -gcflags=-S` output and returns the
// Meridian functions that contain a fused instruction ("func: line") and
// every function seen.
func fusedFunctions(asm []byte) (fused []string, seen map[string]bool) {
	seen = map[string]bool{}
	fn := ""
	sc := bufio.NewScanner(bytes.NewReader(asm))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) > 1 && f[1] == "STEXT" {
			fn = f[0]
			seen[fn] = true
			continue
		}
		if fusedOps.MatchString(line) && strings.HasPrefix(fn, "github.com/meridian-sd/meridian") {
			fused = append(fused, fn+": "+strings.TrimSpace(line))
		}
	}
	return fused, seen
}

func TestFusedFunctionsParses(t *testing.T) {
	asm := []byte("github.com/meridian-sd/meridian/failover.(*P2C).Observe STEXT size=736\n" +
		"\t0x020c 00524 (/x/failover/picker.go:244)\tFMADDD\tF2, F0, F1, F0\n" +
		"math.Foo STEXT size=10\n\t0x0 00000 (x.go:1)\tFMSUBD\tF1, F2, F3, F4\n")
	fused, seen := fusedFunctions(asm)
	if len(fused) != 1 || !strings.HasPrefix(fused[0], "github.com/meridian-sd/meridian/failover.(*P2C).Observe") || !seen["math.Foo"] {
		t.Fatalf("fused %q seen %v", fused, seen)
	}
}

// TestArm64SameEventLog runs a built-in scenario with an arm64 build under
// qemu-user and compares its hashes with the native run's.
func TestArm64SameEventLog(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles and emulates the binary")
	}
	qemu, err := exec.LookPath("qemu-aarch64")
	if err != nil {
		qemu, err = exec.LookPath("qemu-aarch64-static")
	}
	if err != nil {
		t.Skip("qemu-aarch64 not installed (Debian package qemu-user): the arm64 replay is not run; TestNoFusedFloatOnArm64 checks the assembly instead")
	}
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	dir := t.TempDir()
	build := func(arch string) string {
		bin := filepath.Join(dir, "meridian-"+arch)
		cmd := exec.Command(gobin, "build", "-o", bin, "../cmd/meridian")
		cmd.Env = append(os.Environ(), "GOARCH="+arch, "GOOS=linux", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", arch, err, tail(out))
		}
		return bin
	}
	hash := func(name string, args ...string) string {
		out, _ := exec.Command(name, args...).Output() // a failing scenario exits 1 and still prints
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "sha256 ") {
				return l
			}
		}
		t.Fatalf("%s %v printed no sha256 line:\n%s", name, args, tail(out))
		return ""
	}
	args := []string{"sim", "run", "region-cutoff", "--seed", "1", "--quiet"}
	native := hash(build(runtime.GOARCH), args...)
	arm := hash(qemu, append([]string{build("arm64")}, args...)...)
	if native != arm {
		t.Fatalf("arm64 replays differently:\n  %s: %s\n  arm64: %s", runtime.GOARCH, native, arm)
	}
	t.Logf("same on %s and arm64: %s", runtime.GOARCH, native)
}

func tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
