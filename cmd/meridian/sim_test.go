package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/scenarios"
)

// runSim runs 'meridian sim ARGS' in-process.
func runSim(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = simMain(args, &o, &e)
	return code, o.String(), e.String()
}

var shaLine = regexp.MustCompile(`(?m)^sha256 [0-9a-f]{64} `)

func TestSimRunDeterministic(t *testing.T) {
	dir := t.TempDir()
	log1, log2 := filepath.Join(dir, "1.jsonl"), filepath.Join(dir, "2.jsonl")
	rep := filepath.Join(dir, "r.html")
	code1, out1, err1 := runSim(t, "run", "region-cutoff", "--seed", "7", "--log", log1, "--report", rep, "--quiet")
	// Flags before the positional argument work too.
	code2, out2, _ := runSim(t, "run", "--seed", "7", "--log", log2, "--quiet", "region-cutoff")
	if code1 != 0 || code2 != 0 {
		t.Fatalf("exit %d, %d; stderr:\n%s", code1, code2, err1)
	}
	if out1 != out2 {
		t.Errorf("two runs printed different output:\n%s\n---\n%s", out1, out2)
	}
	if !shaLine.MatchString(out1) || !strings.Contains(out1, "result: PASS") {
		t.Errorf("output lacks the summary or sha256 line:\n%s", out1)
	}
	b1, _ := os.ReadFile(log1)
	b2, _ := os.ReadFile(log2)
	if len(b1) == 0 || !bytes.Equal(b1, b2) {
		t.Errorf("event logs differ or are empty (%d, %d bytes)", len(b1), len(b2))
	}
	if html, err := os.ReadFile(rep); err != nil || !bytes.Contains(html, []byte("<svg")) {
		t.Errorf("report: %v", err)
	}
	// A different seed gives a different run.
	_, out3, _ := runSim(t, "run", "region-cutoff", "--seed", "8", "--quiet")
	if shaLine.FindString(out3) == shaLine.FindString(out1) {
		t.Error("seeds 7 and 8 printed the same sha256")
	}
}

func TestSimRunCheckDeterminism(t *testing.T) {
	code, out, errs := runSim(t, "run", "steady-state", "--seed", "1", "--check-determinism", "--quiet")
	if code != 0 || !strings.Contains(out, "determinism: OK") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
}

func TestSimRunImpossibleFails(t *testing.T) {
	code, out, errs := runSim(t, "run", "testdata/impossible.yaml", "--seed", "1", "--quiet")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errs)
	}
	want := "FAIL expectation availability{region=us-east,service=web} = "
	if !strings.Contains(errs, want) || !strings.Contains(errs, "want >= 0.99 (testdata/impossible.yaml:19)") {
		t.Errorf("stderr does not name the failed expectation:\n%s", errs)
	}
	if !strings.Contains(out, "result: FAIL") {
		t.Errorf("summary does not say FAIL:\n%s", out)
	}
}

func TestSimRunValidationError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	data := "duration: 10m\ntopology:\n  regions:\n    - {name: us-east}\n    - {name: eu-west}\nservices:\n  - {name: web}\ntimeline:\n  - {at: 1m, kind: store_down, region: us-wset}\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runSim(t, "run", path, "--seed", "1")
	if code != 2 {
		t.Fatalf("exit %d, want 2; stderr %s", code, errs)
	}
	want := path + `:9: timeline[0].region: unknown region "us-wset" (known: us-east, eu-west)`
	if !strings.Contains(errs, want) {
		t.Errorf("stderr:\n%s\nwant it to contain\n%s", errs, want)
	}
}

func TestSimUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"bogus"},
		{"run"},
		{"run", "no-such-scenario"},
		{"run", "steady-state", "--seed", "x"},
		{"run", "a", "b"},
		{"fuzz"},
		{"fuzz", "--seeds", "0"},
		{"list", "extra"},
		{"run", "region-cutoff", "--duration", "1m"}, // ends before the partition at 3m: needs --truncate
	} {
		if code, _, _ := runSim(t, args...); code != 2 {
			t.Errorf("sim %q: exit %d, want 2", args, code)
		}
	}
}

func TestSimList(t *testing.T) {
	code, out, _ := runSim(t, "list")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(scenarios.Names()) || len(lines) < 13 {
		t.Fatalf("%d lines, want one per built-in (%d):\n%s", len(lines), len(scenarios.Names()), out)
	}
	for i, in := range scenarios.List() {
		if f := strings.Fields(lines[i]); len(f) < 2 || f[0] != in.Name {
			t.Errorf("line %d = %q, want %s and its description", i, lines[i], in.Name)
		}
	}
}

func TestSimFuzz(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := runSim(t, "fuzz", "--seeds", "3", "--out", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "fuzz: 3/3 seeds (1..3), 0 failed") || !strings.Contains(out, "fuzz: OK: 3 seeds") {
		t.Errorf("output:\n%s", out)
	}
}

// TestShrinkAndReplayFile checks the failure path of fuzz with a scenario
// that fails on purpose: the shrunk scenario keeps failing the same way,
// drops the faults that do not matter, and is written as a replayable file.
func TestShrinkAndReplayFile(t *testing.T) {
	sc, err := scenarios.Load("testdata/impossible.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sc.Timeline = append(sc.Timeline,
		scenarios.Fault{At: scenarios.Duration(60e9), Kind: scenarios.FaultStoreSlow, Region: "eu-west", Latency: scenarios.Duration(5e6)},
		scenarios.Fault{At: scenarios.Duration(90e9), Kind: scenarios.FaultHeal})
	fail := fuzzOne(sc, 1)
	if !strings.HasPrefix(fail, "expectation availability") {
		t.Fatalf("fuzzOne = %q", fail)
	}
	small, runs := shrink(sc, 1, fail, 10, time.Time{})
	if len(small.Timeline) != 1 || small.Timeline[0].Kind != scenarios.FaultInstancesFail || runs == 0 {
		t.Errorf("shrunk to %+v in %d runs, want only the instances_fail", small.Timeline, runs)
	}
	path := filepath.Join(t.TempDir(), "min.yaml")
	if err := writeScenario(path, small, 1); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runSim(t, "run", path, "--seed", "1", "--quiet")
	if code != 1 || !strings.Contains(errs, "FAIL expectation availability") {
		t.Errorf("replaying the shrunk file: exit %d\n%s", code, errs)
	}
}

func TestSimRunTraceFile(t *testing.T) {
	dir := t.TempDir()
	f1, f2 := filepath.Join(dir, "1.json"), filepath.Join(dir, "2.json")
	_, plain, _ := runSim(t, "run", "gateway-crash-restart", "--seed", "3", "--quiet")
	c1, out1, e1 := runSim(t, "run", "gateway-crash-restart", "--seed", "3", "--quiet", "--trace-file", f1)
	c2, _, _ := runSim(t, "run", "gateway-crash-restart", "--seed", "3", "--quiet", "--trace-file", f2)
	if c1 != 0 || c2 != 0 {
		t.Fatalf("exit %d, %d\n%s", c1, c2, e1)
	}
	if out1 != plain {
		t.Error("tracing changed the run's output")
	}
	b1, _ := os.ReadFile(f1)
	b2, _ := os.ReadFile(f2)
	if !bytes.Contains(b1, []byte(`"resourceSpans"`)) || !bytes.Equal(b1, b2) {
		t.Errorf("trace files empty or different (%d, %d bytes)", len(b1), len(b2))
	}
}

func TestProgressPrinterThrottles(t *testing.T) {
	var b bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	p := progressPrinter("x", &b, clock)
	for i := 1; i <= 10; i++ {
		now = now.Add(500 * time.Millisecond) // 5s of wall time in all
		p(time.Duration(i)*time.Minute, 10*time.Minute)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "sim: x 4m0s of 10m0s simulated (40%") {
		t.Errorf("progress lines:\n%s", b.String())
	}
}
