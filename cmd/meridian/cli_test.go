package main

import (
	"bytes"
	"errors"
	"flag"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestDashDash(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.String("addr", "", "gateway `address`, e.g. -addr 127.0.0.1:8700")
	fs.Bool("json", false, "print JSON")
	var buf bytes.Buffer
	fs.SetOutput(&dashDash{w: &buf})
	fs.PrintDefaults()
	got := buf.String()
	if !strings.Contains(got, "  --addr address\n") || !strings.Contains(got, "  --json\n") || strings.Contains(got, "\n  -addr") {
		t.Errorf("help:\n%s", got)
	}
	if !strings.Contains(got, "e.g. -addr 127") {
		t.Errorf("a dash inside a description was rewritten:\n%s", got)
	}
}

func TestExitStatus(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, 0}, {flag.ErrHelp, 0}, {usageError{errors.New("flag provided but not defined: -x")}, 2},
		{errors.New("usage: meridian regions [forget REGION]"), 2}, {errors.New("--region is required (or MERIDIAN_REGION)"), 2},
		{errors.New(`unexpected arguments ["x"]`), 2}, {errors.New("need a service and an instance id: SERVICE ID"), 2},
		{errors.New("HTTP 404: instance web/x is not registered"), 1}, {usagef("usage: meridian completion bash|zsh"), 2},
	} {
		if got := exitStatus(c.err); got != c.want {
			t.Errorf("exitStatus(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

func TestUnknownEnv(t *testing.T) {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.String("region", "", "")
	fs.String("serf-bind", "", "")
	env := []string{"MERIDIAN_REGION=a", "MERIDIAN_SERF_BIND=x", "MERIDIAN_REGOIN=a", "MERIDIAN_ADDR=x", "MERIDIAN_TEST_REDIS=x",
		"MERIDIAN_JAEGER_QUERY=x", "PATH=/bin", "MERIDIAN_SERF_BND=y"}
	if got := strings.Join(unknownEnv(fs, env), ","); got != "MERIDIAN_REGOIN,MERIDIAN_SERF_BND" {
		t.Errorf("unknown: %s, want MERIDIAN_REGOIN,MERIDIAN_SERF_BND", got)
	}
}

// TestCLIConventions runs the binary, built as make build builds it: help
// on stdout with status 0, usage errors with status 2, --version with
// the stamped version, and the bash completion script completing commands
// and flags.
func TestCLIConventions(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "meridian")
	pkg := "github.com/meridian-sd/meridian/internal/buildinfo"
	ld := "-X " + pkg + ".version=v9.8.7 -X " + pkg + ".commit=0123456789abcdef -X " + pkg + ".date=2026-11-30T20:00:00Z"
	if out, err := exec.Command("go", "build", "-ldflags", ld, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(env []string, args ...string) (stdout, stderr string, code int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(cmd.Environ(), env...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), code
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, _, code := run(nil, args...)
		if code != 0 || !strings.Contains(out, "meridian v9.8.7\n") || !strings.Contains(out, "commit 0123456789abcdef") || !strings.Contains(out, "built 2026-11-30T20:00:00Z") {
			t.Errorf("%v: status %d\n%s", args, code, out)
		}
	}
	for _, args := range [][]string{{"--help"}, {"agent", "--help"}, {"register", "-h"}, {"instances", "--help"}, {"tls", "--help"}, {"completion", "--help"},
		{"sim", "run", "--help"}, {"sim", "--help"}, {"acl", "--help"}, {"acl", "token", "create", "--help"}, {"keyring", "--help"}, {"dev", "--help"}} {
		out, errOut, code := run(nil, args...)
		if code != 0 || out == "" || errOut != "" {
			t.Errorf("%v: status %d, stdout %d bytes, stderr %q; want help on stdout and 0", args, code, len(out), errOut)
		}
		if args[0] == "agent" && (!strings.Contains(out, "\n  --region string") || strings.Contains(out, "\n  -region")) {
			t.Errorf("agent --help does not show --region:\n%s", out)
		}
	}
	for _, args := range [][]string{{}, {"nope"}, {"agent", "--bogus"}, {"agent"}, {"register"}, {"regions", "a", "b"}, {"completion", "fish"}, {"version", "extra"},
		{"sim", "run"}, {"sim", "nope"}, {"keyring"}, {"tls"}, {"instances"}, {"acl", "token", "list", "--bogus"}} {
		if _, errOut, code := run(nil, args...); code != 2 || errOut == "" {
			t.Errorf("%v: status %d, stderr %q; want a usage error, 2", args, code, errOut)
		}
	}
	if _, errOut, _ := run([]string{"MERIDIAN_REGOIN=us-east"}, "agent"); !strings.Contains(errOut, "ignoring environment variable MERIDIAN_REGOIN") {
		t.Errorf("a misspelled variable is not warned about: %s", errOut)
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	script := `source <("$BIN" completion bash)
c() { COMP_WORDS=("$BIN" "$@"); COMP_CWORD=$(( $# )); _meridian; echo "${COMPREPLY[*]}"; }
c ag; c agent --reg; c sim r; c sim run region-c; c keyring i`
	cmd := exec.Command(bash, "-c", script)
	cmd.Env = append(cmd.Environ(), "BIN="+bin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash completion: %v\n%s", err, out)
	}
	want := "agent\n--region --region-reap-after\nrun\nregion-cutoff\ninstall\n"
	if string(out) != want {
		t.Errorf("bash completion:\n%s\nwant:\n%s", out, want)
	}
	if zsh, err := exec.LookPath("zsh"); err == nil {
		s, _, _ := run(nil, "completion", "zsh")
		cmd := exec.Command(zsh, "-n")
		cmd.Stdin = strings.NewReader(s)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("zsh -n: %v\n%s", err, out)
		}
	}
}
