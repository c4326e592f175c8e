package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/meridian-sd/meridian/scenarios"
	"github.com/meridian-sd/meridian/sim"
)

// maxFuzzSeeds bounds one 'sim fuzz' invocation.
const maxFuzzSeeds = 1_000_000

type fuzzFlags struct {
	seeds          int
	start          uint64
	budget         time.Duration
	out            string
	shrinkAttempts int
	deadline       time.Time // the time budget's end (zero: none); shrinking stops there too
}

func simFuzz(args []string, stdout, stderr io.Writer) int {
	var f fuzzFlags
	fs := newFlagSet("fuzz", stderr)
	fs.IntVar(&f.seeds, "seeds", 0, "number of seeds to run (required)")
	fs.Uint64Var(&f.start, "start", 1, "first seed")
	fs.DurationVar(&f.budget, "time-budget", 0, "stop starting new seeds, and shrinking, after this much wall time (0: no limit)")
	fs.StringVar(&f.out, "out", os.TempDir(), "directory for the YAML of failing scenarios")
	fs.IntVar(&f.shrinkAttempts, "shrink-attempts", 40, "runs spent shrinking each failing scenario (0: no shrinking)")
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	switch {
	case len(pos) != 0:
		fmt.Fprintf(stderr, "meridian sim fuzz: takes no arguments, got %q\n", pos)
		return exitUsage
	case f.seeds < 1 || f.seeds > maxFuzzSeeds:
		fmt.Fprintf(stderr, "meridian sim fuzz: --seeds must be within [1, %d], got %d\n", maxFuzzSeeds, f.seeds)
		return exitUsage
	case f.budget < 0:
		fmt.Fprintf(stderr, "meridian sim fuzz: --time-budget must not be negative, got %s\n", f.budget)
		return exitUsage
	case f.shrinkAttempts < 0:
		fmt.Fprintf(stderr, "meridian sim fuzz: --shrink-attempts must not be negative, got %d\n", f.shrinkAttempts)
		return exitUsage
	case f.start > ^uint64(0)-uint64(f.seeds)+1:
		fmt.Fprintf(stderr, "meridian sim fuzz: --start %d + --seeds %d overflows\n", f.start, f.seeds)
		return exitUsage
	}
	if st, err := os.Stat(f.out); err != nil || !st.IsDir() {
		fmt.Fprintf(stderr, "meridian sim fuzz: --out %s is not a directory\n", f.out)
		return exitUsage
	}

	began := time.Now()
	if f.budget > 0 {
		f.deadline = began.Add(f.budget)
	}
	lastProgress := began
	var failed []uint64
	ran := 0
	var judged, judgedSeeds int64
	for i := range f.seeds {
		if f.budget > 0 && time.Since(began) >= f.budget {
			fmt.Fprintf(stdout, "fuzz: time budget %s reached after %d of %d seeds\n", f.budget, ran, f.seeds)
			break
		}
		seed := f.start + uint64(i)
		sc := scenarios.Generate(seed)
		fail, res := fuzzRun(sc, seed)
		ran++
		if res != nil && res.Metrics.OracleJudged > 0 {
			judged += res.Metrics.OracleJudged
			judgedSeeds++
		}
		if fail != "" {
			failed = append(failed, seed)
			reportFuzzFailure(sc, seed, fail, &f, stdout, stderr)
		}
		if t := time.Now(); t.Sub(lastProgress) >= 2*time.Second || i == f.seeds-1 {
			lastProgress = t
			fmt.Fprintf(stdout, "fuzz: %d/%d seeds (%d..%d), %d failed, %s elapsed\n",
				ran, f.seeds, f.start, seed, len(failed), t.Sub(began).Round(100*time.Millisecond))
		}
	}
	if len(failed) > 0 {
		ids := make([]string, len(failed))
		for i, s := range failed {
			ids[i] = fmt.Sprint(s)
		}
		fmt.Fprintf(stdout, "fuzz: FAIL: %d of %d seeds failed: %s\n", len(failed), ran, strings.Join(ids, " "))
		return exitFail
	}
	fmt.Fprintf(stdout, "fuzz: availability oracle: %d lookups judged in %d of %d seeds\n", judged, judgedSeeds, ran)
	fmt.Fprintf(stdout, "fuzz: OK: %d seeds, no invariant violated (%s)\n", ran, time.Since(began).Round(100*time.Millisecond))
	return exitOK
}

// fuzzOne runs one generated scenario and returns "" when every invariant
// held, or what failed: the invariant names (sorted, joined by ",") or
// "error: ..." when the run itself failed.
func fuzzOne(sc *scenarios.Scenario, seed uint64) string {
	fail, _ := fuzzRun(sc, seed)
	return fail
}

// fuzzRun is fuzzOne that also returns the run's result (nil when the run
// itself failed).
func fuzzRun(sc *scenarios.Scenario, seed uint64) (string, *sim.Result) {
	res, err := runRecovered(sc, seed)
	if err != nil {
		return "error: " + err.Error(), nil
	}
	var bad []string
	for _, inv := range res.Invariants {
		if inv.Count > 0 {
			bad = append(bad, inv.Name)
		}
	}
	for _, e := range res.Expectations {
		if !e.Pass {
			bad = append(bad, "expectation "+e.Message)
		}
	}
	sort.Strings(bad)
	return strings.Join(bad, ","), res
}

// runRecovered runs sc, turning a panic of the simulator into an error so
// that one bad seed is reported (with its replay command) instead of ending
// the whole fuzz run.
func runRecovered(sc *scenarios.Scenario, seed uint64) (res *sim.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("panic: %v", p)
		}
	}()
	return sim.Run(sc, sim.Options{Seed: seed})
}

// describeFailure runs sc again for the human-readable first violations.
func describeFailure(sc *scenarios.Scenario, seed uint64) string {
	res, err := runRecovered(sc, seed)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, inv := range res.Invariants {
		if inv.Count > 0 {
			fmt.Fprintf(&b, "\n  invariant %s: %d violation(s)%s", inv.Name, inv.Count, firstViolation(res, inv.Name))
		}
	}
	return b.String()
}

func reportFuzzFailure(sc *scenarios.Scenario, seed uint64, fail string, f *fuzzFlags, stdout, stderr io.Writer) {
	fmt.Fprintf(stdout, "FAIL seed %d: %s%s\n", seed, fail, describeFailure(sc, seed))
	fmt.Fprintf(stdout, "  replay: meridian sim fuzz --seeds 1 --start %d\n", seed)
	path := filepath.Join(f.out, fmt.Sprintf("meridian-fuzz-%d.yaml", seed))
	if err := writeScenario(path, sc, seed); err != nil {
		fmt.Fprintf(stderr, "meridian sim fuzz: %v\n", err)
		return
	}
	fmt.Fprintf(stdout, "  replay: meridian sim run %s --seed %d\n", path, seed)
	if f.shrinkAttempts == 0 {
		return
	}
	small, runs := shrink(sc, seed, fail, f.shrinkAttempts, f.deadline)
	if len(small.Timeline) == len(sc.Timeline) {
		fmt.Fprintf(stdout, "  shrinking: no timeline entry could be dropped (%d runs)\n", runs)
		return
	}
	spath := filepath.Join(f.out, fmt.Sprintf("meridian-fuzz-%d-min.yaml", seed))
	if err := writeScenario(spath, small, seed); err != nil {
		fmt.Fprintf(stderr, "meridian sim fuzz: %v\n", err)
		return
	}
	fmt.Fprintf(stdout, "  shrunk to %d of %d timeline entries (%d runs): meridian sim run %s --seed %d\n",
		len(small.Timeline), len(sc.Timeline), runs, spath, seed)
}

func writeScenario(path string, sc *scenarios.Scenario, seed uint64) error {
	data, err := scenarios.Marshal(sc)
	if err != nil {
		return err
	}
	header := fmt.Sprintf("# %s\n# replay: meridian sim run %s --seed %d\n", sc.Description, path, seed)
	if err := os.WriteFile(path, append([]byte(header), data...), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// shrink drops timeline entries one at a time, keeping each drop after
// which the run still fails the same way, for at most attempts runs and
// until deadline (zero: none; a failing run can be slow, e.g. a fetch
// loop). It returns the smallest failing scenario found and the runs
// spent.
func shrink(sc *scenarios.Scenario, seed uint64, fail string, attempts int, deadline time.Time) (*scenarios.Scenario, int) {
	cur := cloneScenario(sc)
	cur.Description = fmt.Sprintf("%s, shrunk (failing: %s)", sc.Description, fail)
	runs := 0
	more := func() bool { return runs < attempts && (deadline.IsZero() || time.Now().Before(deadline)) }
	for progress := true; progress && more(); {
		progress = false
		for i := len(cur.Timeline) - 1; i >= 0 && more(); i-- {
			cand := cloneScenario(cur)
			cand.Timeline = append(cand.Timeline[:i:i], cur.Timeline[i+1:]...)
			if cand.Validate() != nil {
				continue
			}
			runs++
			if fuzzOne(cand, seed) == fail {
				cur, progress = cand, true
			}
		}
	}
	return cur, runs
}

// cloneScenario copies sc deeply enough for shrink to edit the timeline.
func cloneScenario(sc *scenarios.Scenario) *scenarios.Scenario {
	c := *sc
	c.Timeline = append([]scenarios.Fault(nil), sc.Timeline...)
	c.Lines = nil
	return &c
}
