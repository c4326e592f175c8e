package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meridian-sd/meridian/observability"
	"github.com/meridian-sd/meridian/scenarios"
	"github.com/meridian-sd/meridian/sim"
	"github.com/meridian-sd/meridian/sim/report"
)

const simUsage = `Usage:
  meridian sim run FILE|NAME [--seed N] [--duration D [--truncate]] [--log events.jsonl] [--report report.html]
                             [--check-determinism] [--trace-file F] [--otlp-endpoint URL] [--quiet]
  meridian sim list
  meridian sim fuzz --seeds N [--start S] [--time-budget D] [--out DIR] [--shrink-attempts K]

run   simulates a scenario file or a built-in scenario (see 'meridian sim list'),
      prints its summary and the SHA-256 of its event log and summary; exits 1
      when an expectation or invariant fails, 2 on a usage or scenario error.
list  lists the built-in scenarios.
fuzz  swarm-tests the simulator's invariants on generated scenarios, one per
      seed; writes each failing scenario (and a shrunk one) as YAML with the
      command that replays it; exits 1 when any seed failed.
`

// Exit statuses of 'meridian sim'.
const (
	exitOK    = 0
	exitFail  = 1 // an expectation, invariant or determinism check failed
	exitUsage = 2 // bad flags, unknown scenario, invalid scenario file
)

// cmdSim is the 'meridian sim' subcommand; it exits with simMain's status.
func cmdSim(args []string) error {
	if wantsHelp(args) { // cli.go: help goes to stdout with status 0
		fmt.Print(simUsage)
		return nil
	}
	if code := simMain(args, os.Stdout, os.Stderr); code != exitOK {
		os.Exit(code)
	}
	return nil
}

// simMain runs 'meridian sim ARGS' and returns the exit status. Tests call
// it in-process.
func simMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, simUsage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return simRun(args[1:], stdout, stderr)
	case "list":
		return simList(args[1:], stdout, stderr)
	case "fuzz":
		return simFuzz(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, simUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "meridian sim: unknown subcommand %q\n\n%s", args[0], simUsage)
		return exitUsage
	}
}

// parseInterspersed parses flags that may come before or after the
// positional arguments, which it returns in order.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for range len(args) + 1 { // each round consumes at least one argument
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return pos, nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("meridian sim "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, simUsage) }
	return fs
}

// loadScenario resolves FILE|NAME: an existing file, anything that looks
// like a path, or else a built-in name.
func loadScenario(arg string) (*scenarios.Scenario, error) {
	if st, err := os.Stat(arg); err == nil && !st.IsDir() {
		return scenarios.Load(arg)
	}
	if strings.ContainsAny(arg, `/\`) || strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml") {
		return scenarios.Load(arg)
	}
	return scenarios.Builtin(arg)
}

type runFlags struct {
	seed        uint64
	duration    time.Duration
	truncate    bool
	logPath     string
	reportPath  string
	determinism bool
	traceFile   string
	otlp        string
	quiet       bool
}

func simRun(args []string, stdout, stderr io.Writer) int {
	var f runFlags
	fs := newFlagSet("run", stderr)
	fs.Uint64Var(&f.seed, "seed", 1, "random seed of the run")
	fs.DurationVar(&f.duration, "duration", 0, "simulated time to run (default: the scenario's)")
	fs.BoolVar(&f.truncate, "truncate", false, "allow a --duration that ends before the scenario's last fault (those faults do not happen)")
	fs.StringVar(&f.logPath, "log", "", "write the JSON Lines event log to this file")
	fs.StringVar(&f.reportPath, "report", "", "write an HTML report to this file")
	fs.BoolVar(&f.determinism, "check-determinism", false, "run twice and compare the event log and summary hashes")
	fs.StringVar(&f.traceFile, "trace-file", "", "write OpenTelemetry spans (OTLP JSON lines) to this file")
	fs.StringVar(&f.otlp, "otlp-endpoint", "", "send OpenTelemetry spans to this OTLP/HTTP endpoint (e.g. http://127.0.0.1:4318)")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress on stderr")
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "meridian sim run: want one scenario file or built-in name, got %d arguments\n\n%s", len(pos), simUsage)
		return exitUsage
	}
	if f.duration < 0 {
		fmt.Fprintf(stderr, "meridian sim run: --duration must not be negative, got %s\n", f.duration)
		return exitUsage
	}
	sc, err := loadScenario(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "meridian sim run: %v\n", err)
		return exitUsage
	}
	if f.duration > scenarios.MaxDuration {
		fmt.Fprintf(stderr, "meridian sim run: --duration %s is longer than the %s allowed\n", f.duration, scenarios.MaxDuration)
		return exitUsage
	}

	if f.duration > 0 && !f.truncate {
		for i, ft := range sc.Timeline {
			if ft.At.D() >= f.duration {
				fmt.Fprintf(stderr, "meridian sim run: --duration %s ends before timeline[%d] of %s (%s at %s), which would silently not happen; give --truncate to run it cut\n",
					f.duration, i, sc.Name, ft.Kind, ft.At.D())
				return exitUsage
			}
		}
	}

	first, code := runOnce(sc, &f, true, stderr)
	if code != exitOK {
		return code
	}
	stdout.Write(first.summary)
	fmt.Fprintf(stdout, "sha256 %s  (event log %s, %d events; summary %s)\n", first.digest(), first.logHash, first.res.EventsLogged, first.summaryHash)

	if f.reportPath != "" {
		if err := writeReport(f.reportPath, first.res, sc); err != nil {
			fmt.Fprintf(stderr, "meridian sim run: %v\n", err)
			return exitFail
		}
		fmt.Fprintf(stderr, "sim: report written to %s\n", f.reportPath)
	}

	status := exitOK
	if f.determinism {
		second, code := runOnce(sc, &f, false, stderr)
		if code != exitOK {
			return code
		}
		if second.logHash != first.logHash || second.summaryHash != first.summaryHash {
			fmt.Fprintf(stderr, "FAIL determinism: two runs of %s with seed %d differ:\n  run 1: event log %s summary %s\n  run 2: event log %s summary %s\n",
				sc.Name, f.seed, first.logHash, first.summaryHash, second.logHash, second.summaryHash)
			status = exitFail
		} else {
			fmt.Fprintf(stdout, "determinism: OK, 2 runs with identical event log and summary (sha256 %s)\n", first.digest())
		}
	}
	if reportFailures(first.res, sc, stderr) {
		status = exitFail
	}
	return status
}

// runResult is one run with the hashes of its outputs.
type runResult struct {
	res         *sim.Result
	summary     []byte
	logHash     string
	summaryHash string
}

// digest is the SHA-256 of the event log's hash and the summary's hash.
func (r *runResult) digest() string {
	h := sha256.Sum256([]byte(r.logHash + "\n" + r.summaryHash + "\n"))
	return hex.EncodeToString(h[:])
}

// runOnce runs the scenario, hashing its event log (and writing it and the
// traces when primary), and returns the result or an exit status.
func runOnce(sc *scenarios.Scenario, f *runFlags, primary bool, stderr io.Writer) (*runResult, int) {
	h := sha256.New()
	var logW io.Writer = h
	var logFile *os.File
	var buf *bufio.Writer
	if primary && f.logPath != "" {
		var err error
		logFile, err = os.Create(f.logPath)
		if err != nil {
			fmt.Fprintf(stderr, "meridian sim run: event log: %v\n", err)
			return nil, exitUsage
		}
		defer logFile.Close()
		buf = bufio.NewWriterSize(logFile, 1<<16)
		logW = io.MultiWriter(h, buf)
	}
	opts := sim.Options{Seed: f.seed, Duration: f.duration, Truncate: f.truncate, EventLog: logW}
	if !f.quiet {
		opts.Progress = progressPrinter(sc.Name, stderr, time.Now)
	}
	var st *observability.SimTracing
	var traceFile *os.File
	if primary && (f.traceFile != "" || f.otlp != "") {
		cfg := observability.SimTraceConfig{Seed: f.seed, Start: sc.Start, OTLPEndpoint: f.otlp}
		if f.traceFile != "" {
			var err error
			traceFile, err = os.Create(f.traceFile)
			if err != nil {
				fmt.Fprintf(stderr, "meridian sim run: trace file: %v\n", err)
				return nil, exitUsage
			}
			defer traceFile.Close()
			cfg.File = traceFile
		}
		var err error
		st, err = observability.NewSimTracing(cfg)
		if err != nil {
			fmt.Fprintf(stderr, "meridian sim run: tracing: %v\n", err)
			return nil, exitUsage
		}
		opts.Tracer = st.Tracer
	}
	res, err := sim.Run(sc, opts)
	if st != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		serr := st.Shutdown(ctx)
		cancel()
		if serr != nil && err == nil {
			fmt.Fprintf(stderr, "meridian sim run: exporting traces: %v\n", serr)
			return nil, exitFail
		}
		if traceFile != nil && err == nil {
			fmt.Fprintf(stderr, "sim: traces written to %s\n", f.traceFile)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "meridian sim run: %v\n", err)
		return nil, exitFail
	}
	if buf != nil {
		if err := buf.Flush(); err != nil {
			fmt.Fprintf(stderr, "meridian sim run: event log: %v\n", err)
			return nil, exitFail
		}
		if err := logFile.Close(); err != nil {
			fmt.Fprintf(stderr, "meridian sim run: event log: %v\n", err)
			return nil, exitFail
		}
	}
	var sum bytes.Buffer
	if err := res.WriteSummary(&sum); err != nil {
		fmt.Fprintf(stderr, "meridian sim run: summary: %v\n", err)
		return nil, exitFail
	}
	sh := sha256.Sum256(sum.Bytes())
	return &runResult{res: res, summary: sum.Bytes(), logHash: hex.EncodeToString(h.Sum(nil)), summaryHash: hex.EncodeToString(sh[:])}, exitOK
}

// progressPrinter returns a sim.Options.Progress that prints at most one
// line every two seconds of wall time, and nothing for runs shorter than that.
func progressPrinter(name string, w io.Writer, now func() time.Time) func(done, total time.Duration) {
	start := now()
	last := start
	return func(done, total time.Duration) {
		t := now()
		if t.Sub(last) < 2*time.Second {
			return
		}
		last = t
		pct := 0.0
		if total > 0 {
			pct = 100 * float64(done) / float64(total)
		}
		fmt.Fprintf(w, "sim: %s %s of %s simulated (%.0f%%, %s elapsed)\n", name, done, total, pct, t.Sub(start).Round(100*time.Millisecond))
	}
}

// reportFailures names every failed expectation and invariant on stderr and
// reports whether there was one.
func reportFailures(res *sim.Result, sc *scenarios.Scenario, stderr io.Writer) bool {
	failed := false
	for _, e := range res.Expectations {
		if e.Pass {
			continue
		}
		failed = true
		where := ""
		if sc.File != "" && e.Expectation.Line > 0 {
			where = fmt.Sprintf(" (%s:%d)", sc.File, e.Expectation.Line)
		}
		fmt.Fprintf(stderr, "FAIL expectation %s%s\n", e.Message, where)
	}
	for _, inv := range res.Invariants {
		if inv.Count == 0 {
			continue
		}
		failed = true
		fmt.Fprintf(stderr, "FAIL invariant %s: %d violation(s)%s\n", inv.Name, inv.Count, firstViolation(res, inv.Name))
	}
	return failed
}

func firstViolation(res *sim.Result, name string) string {
	for _, v := range res.Violations {
		if v.Invariant == name {
			return fmt.Sprintf(", first at %s: %s", v.At, v.Detail)
		}
	}
	return ""
}

func writeReport(path string, res *sim.Result, sc *scenarios.Scenario) error {
	var b bytes.Buffer
	if err := report.Write(&b, res, sc); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

func simList(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("list", stderr)
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	if len(pos) != 0 {
		fmt.Fprintf(stderr, "meridian sim list: takes no arguments, got %q\n", pos)
		return exitUsage
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, in := range scenarios.List() {
		fmt.Fprintf(tw, "%s\t%s\n", in.Name, in.Description)
	}
	tw.Flush()
	return exitOK
}
