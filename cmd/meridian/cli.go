package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Conventions of every subcommand (parseArgs and main apply them):
//   - -h/--help prints the command's help to stdout and exits 0;
//   - a usage error (unknown flag, bad flag value, missing or extra
//     arguments) prints the error and the help to stderr and exits 2;
//   - any other failure exits 1;
//   - flag help spells flags as --name, as the README does (the flag
//     package accepts both -name and --name).

// usageError is a mistake in how a command was called: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usage error.
func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// isUsage reports whether err is a usage error: a usageError, or one of the
// commands' own "usage: ..." and "unexpected arguments" messages.
func isUsage(err error) bool {
	var ue usageError
	if errors.As(err, &ue) {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, p := range []string{"usage:", "unexpected argument", "need a service", "missing subcommand", "unknown subcommand", "want 'tls"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return strings.HasSuffix(msg, "is required") || strings.Contains(msg, " is required (")
}

// exitStatus maps a command's error to its exit status.
func exitStatus(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case isUsage(err):
		return 2
	}
	return 1
}

// parseFlags parses args with fs, printing help to stdout for -h/--help and
// the error and help to stderr otherwise, with flags shown as --name.
func parseFlags(fs *flag.FlagSet, args []string, parse func([]string) error) error {
	var buf bytes.Buffer
	fs.SetOutput(&dashDash{w: &buf})
	err := parse(args)
	fs.SetOutput(os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Stdout.Write(buf.Bytes())
		return err
	case err != nil:
		os.Stderr.Write(buf.Bytes())
		return usageError{err}
	}
	return nil
}

// dashDash rewrites the flag package's "  -name" help lines to "  --name".
type dashDash struct {
	w       io.Writer
	midLine bool
}

func (d *dashDash) Write(p []byte) (int, error) {
	var out bytes.Buffer
	for i := 0; i < len(p); i++ {
		if !d.midLine && bytes.HasPrefix(p[i:], []byte("  -")) && !bytes.HasPrefix(p[i:], []byte("  --")) {
			out.WriteString("  --")
			i += 2
			d.midLine = true
			continue
		}
		out.WriteByte(p[i])
		d.midLine = p[i] != '\n'
	}
	if _, err := d.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// otherEnv are the MERIDIAN_* variables that are not agent flags: the
// client subcommands' (withEnv), and the tests' and scripts'.
var otherEnv = map[string]bool{
	"MERIDIAN_ADDR": true, "MERIDIAN_TOKEN": true, "MERIDIAN_CACERT": true, "MERIDIAN_CLIENT_CERT": true,
	"MERIDIAN_CLIENT_KEY": true, "MERIDIAN_CONFIG": true, "MERIDIAN_SERF_LOG": true,
	"MERIDIAN_BIN": true, "MERIDIAN_E2E_JAEGER": true, "MERIDIAN_UI_SCREENSHOT": true,
}

// otherEnvPrefixes are families of variables of the tests and scripts.
var otherEnvPrefixes = []string{"MERIDIAN_TEST_", "MERIDIAN_JAEGER_", "MERIDIAN_SERF_DUMP", "MERIDIAN_SYNCTEST_", "MERIDIAN_MODELCHECK_"}

// unknownEnv returns the MERIDIAN_* variables of env (os.Environ form)
// that name neither a flag of fs nor another known variable: most likely
// misspelled, and otherwise silently ignored.
func unknownEnv(fs *flag.FlagSet, env []string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "MERIDIAN_") || otherEnv[name] {
			continue
		}
		flagName := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "MERIDIAN_"), "_", "-"))
		if fs.Lookup(flagName) != nil {
			continue
		}
		known := false
		for _, p := range otherEnvPrefixes {
			known = known || strings.HasPrefix(name, p)
		}
		if !known {
			out = append(out, name)
		}
	}
	return out
}

// warnUnknownEnv prints a warning for each unknown MERIDIAN_* variable.
func warnUnknownEnv(fs *flag.FlagSet) {
	for _, name := range unknownEnv(fs, os.Environ()) {
		fmt.Fprintf(os.Stderr, "meridian %s: warning: ignoring environment variable %s: no flag --%s (see 'meridian %s --help')\n",
			fs.Name(), name, strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "MERIDIAN_"), "_", "-")), fs.Name())
	}
}

// printed reports whether the flag package already printed err (with the
// command's help) to stderr.
func printed(err error) bool {
	var ue usageError
	if !errors.As(err, &ue) {
		return false
	}
	// Errors of flag.FlagSet.Parse, which it prints itself.
	msg := ue.err.Error()
	return strings.HasPrefix(msg, "flag provided but not defined") || strings.HasPrefix(msg, "invalid value") ||
		strings.HasPrefix(msg, "invalid boolean") || strings.HasPrefix(msg, "flag needs an argument") || strings.HasPrefix(msg, "bad flag syntax")
}

// wantsHelp reports whether args ask for help (-h, -help or --help).
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}
