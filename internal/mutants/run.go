package mutants

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// Options configure a run of the mutant set.
type Options struct {
	Root       string        // module root to copy (the working tree, uncommitted changes included)
	Jobs       int           // mutants tried in parallel (default 2)
	Seeds      []uint64      // seeds of every built-in scenario (default 1, 2, 3)
	FuzzSeeds  int           // seeds of 'meridian sim fuzz' (default 100; 0: no fuzz)
	FuzzBudget time.Duration // wall-time budget of one fuzz run (default 60s)
	RunTimeout time.Duration // one simulation run; longer counts as a hang (default 120s)
	Check      bool          // only verify that every mutant applies and compiles
	Keep       bool          // keep the temporary copies (their paths are printed)
	Stdout     io.Writer     // the table
	Stderr     io.Writer     // progress
}

func (o *Options) fill() {
	if o.Jobs <= 0 {
		o.Jobs = 2
	}
	if o.Seeds == nil {
		o.Seeds = []uint64{1, 2, 3}
	}
	if o.FuzzBudget <= 0 {
		o.FuzzBudget = time.Minute
	}
	if o.RunTimeout <= 0 {
		o.RunTimeout = 2 * time.Minute
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
}

// Status is the outcome of one mutant.
type Status string

// Outcomes. Caught and Missed are verdicts on the simulator; NotApplied and
// BuildFailed are defects of the mutant set (re-anchor or fix the mutant).
const (
	Caught      Status = "caught"
	Missed      Status = "missed"
	BuildFailed Status = "build failed"
	NotApplied  Status = "does not apply"
	Compiles    Status = "ok" // -check: applies and compiles
)

// Result is what happened to one mutant.
type Result struct {
	Mutant  Mutant
	Status  Status
	By      string        // Caught: what caught it; otherwise the reason
	ToCatch time.Duration // wall time of the simulations until the catch (all of them when missed)
	Build   time.Duration
	Runs    int // simulator invocations made
}

// probe is one simulator invocation.
type probe struct {
	fuzz     bool
	scenario string
	seed     uint64
}

func (p probe) String() string {
	if p.fuzz {
		return "sim fuzz"
	}
	return fmt.Sprintf("%s seed %d", p.scenario, p.seed)
}

// Run tries every mutant of ms as Options say and prints the table. It
// returns the results; err is set only when the run itself could not be
// done (no copy, baseline does not build).
func Run(ctx context.Context, ms []Mutant, o Options) ([]Result, error) {
	o.fill()
	if err := Validate(ms); err != nil {
		return nil, err
	}
	began := time.Now()
	tmp, err := os.MkdirTemp("", "meridian-mutants-")
	if err != nil {
		return nil, err
	}
	if o.Keep {
		fmt.Fprintf(o.Stderr, "mutants: temporary copies in %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	files, err := treeFiles(o.Root)
	if err != nil {
		return nil, err
	}
	jobs := min(o.Jobs, max(len(ms), 1))
	workers := make([]string, jobs)
	for i := range workers {
		workers[i] = filepath.Join(tmp, fmt.Sprintf("w%d", i))
		if err := copyTree(o.Root, workers[i], files); err != nil {
			return nil, fmt.Errorf("copying the tree: %w", err)
		}
	}

	var probes []probe
	if !o.Check {
		bin := filepath.Join(tmp, "baseline")
		if out, err := build(ctx, workers[0], bin, "./cmd/meridian"); err != nil {
			return nil, fmt.Errorf("the unmutated tree does not build:\n%s", out)
		}
		probes, err = baseline(ctx, bin, tmp, &o)
		if err != nil {
			return nil, err
		}
	}

	results := make([]Result, len(ms))
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := tryMutant(ctx, ms[i], workers[w], probes, &o)
				results[i] = r
				mu.Lock()
				done++
				fmt.Fprintf(o.Stderr, "mutants: [%d/%d] %s: %s%s\n", done, len(ms), r.Mutant.Name, r.Status, suffix(r))
				mu.Unlock()
			}
		}()
	}
	for i := range ms {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return results, err
	}
	printTable(o.Stdout, results, &o, time.Since(began))
	return results, nil
}

func suffix(r Result) string {
	switch r.Status {
	case Caught:
		return fmt.Sprintf(" by %s in %s", r.By, r.ToCatch.Round(100*time.Millisecond))
	case Missed:
		return fmt.Sprintf(" (%d runs, %s)", r.Runs, r.ToCatch.Round(100*time.Millisecond))
	case Compiles:
		return ""
	case NotApplied:
		return ": " + strings.TrimPrefix(r.By, "does not apply: ")
	}
	return ": " + r.By
}

// baseline runs every probe on the unmutated binary and returns those that
// pass: a probe that fails without a mutant cannot tell anything.
func baseline(ctx context.Context, bin, tmp string, o *Options) ([]probe, error) {
	out, err := exec.CommandContext(ctx, bin, "sim", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("meridian sim list: %w", err)
	}
	var names []string
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	if len(names) == 0 {
		return nil, errors.New("meridian sim list: no built-in scenarios")
	}
	var all []probe
	for _, s := range o.Seeds {
		for _, n := range names {
			all = append(all, probe{scenario: n, seed: s})
		}
	}
	if o.FuzzSeeds > 0 {
		all = append(all, probe{fuzz: true})
	}
	fmt.Fprintf(o.Stderr, "mutants: baseline: %d scenarios x %d seeds + sim fuzz --seeds %d on the unmutated tree\n",
		len(names), len(o.Seeds), o.FuzzSeeds)
	start := time.Now()
	var keep []probe
	for _, p := range all {
		if ok, by := runProbe(ctx, bin, tmp, p, o); ok {
			fmt.Fprintf(o.Stderr, "mutants: baseline %s already fails (%s): not used as a detector\n", p, by)
			continue
		}
		keep = append(keep, p)
	}
	fmt.Fprintf(o.Stderr, "mutants: baseline done in %s; %d of %d runs usable\n", time.Since(start).Round(100*time.Millisecond), len(keep), len(all))
	return keep, nil
}

func tryMutant(ctx context.Context, m Mutant, dir string, probes []probe, o *Options) Result {
	r := Result{Mutant: m}
	restore, err := m.Apply(dir)
	if err != nil {
		r.Status, r.By = NotApplied, err.Error()
		if !errors.Is(err, ErrNotApplicable) {
			r.By = "does not apply: " + err.Error()
		}
		return r
	}
	defer func() {
		if err := restore(); err != nil {
			panic(fmt.Sprintf("mutants: restoring %s in %s: %v", m.File, dir, err)) // the copy is unusable now
		}
	}()
	bin := filepath.Join(dir, "meridian.mutant")
	pkg := "./cmd/meridian"
	if o.Check {
		// Only the mutated package: mutants change no exported API, so
		// what compiles there compiles in the binary.
		bin, pkg = os.DevNull, "./"+path.Dir(m.File)
	}
	t0 := time.Now()
	out, err := build(ctx, dir, bin, pkg)
	r.Build = time.Since(t0)
	if err != nil {
		r.Status, r.By = BuildFailed, firstLines(out, 3)
		return r
	}
	if o.Check {
		r.Status = Compiles
		return r
	}
	start := time.Now()
	for _, p := range probes {
		r.Runs++
		if caught, by := runProbe(ctx, bin, dir, p, o); caught {
			r.Status, r.By, r.ToCatch = Caught, by, time.Since(start)
			return r
		}
		if ctx.Err() != nil {
			break
		}
	}
	r.Status, r.ToCatch = Missed, time.Since(start)
	r.By = "missed"
	return r
}

// build compiles the meridian binary of the tree at dir. -trimpath keeps
// the build cache shared between copies of the tree.
func build(ctx context.Context, dir, out, pkg string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false", "GOWORK=off")
	return cmd.CombinedOutput()
}

// runProbe runs one simulation and says whether it failed, and how: the
// scenario's failed invariants and expectations, the fuzz seed and what it
// violated, a panic, a run error or a hang.
func runProbe(ctx context.Context, bin, dir string, p probe, o *Options) (failed bool, by string) {
	timeout := o.RunTimeout
	var args []string
	if p.fuzz {
		fdir := filepath.Join(dir, "fuzz-out")
		os.MkdirAll(fdir, 0o755)
		args = []string{"sim", "fuzz", "--seeds", strconv.Itoa(o.FuzzSeeds), "--shrink-attempts", "0",
			"--time-budget", o.FuzzBudget.String(), "--out", fdir}
		timeout = o.FuzzBudget + o.RunTimeout
	} else {
		args = []string{"sim", "run", p.scenario, "--seed", strconv.FormatUint(p.seed, 10), "--quiet"}
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, bin, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	var err error
	if p.fuzz {
		// Stop at the first failing seed instead of running the rest.
		var by string
		if by, err = fuzzFirstFailure(cmd, &out); by != "" {
			return true, by
		}
	} else {
		err = cmd.Run()
	}
	if ctx.Err() != nil {
		return false, ""
	}
	if rctx.Err() != nil {
		return true, fmt.Sprintf("%s: hang (no end within %s)", p, timeout)
	}
	if err == nil {
		return false, ""
	}
	text := out.String()
	if i := strings.Index(text, "panic:"); i >= 0 {
		return true, fmt.Sprintf("%s: %s", p, firstLines([]byte(text[i:]), 1))
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		return true, fmt.Sprintf("%s: run error: %s", p, firstLines(out.Bytes(), 1))
	}
	if p.fuzz {
		for line := range strings.Lines(text) {
			if rest, ok := strings.CutPrefix(line, "FAIL seed "); ok {
				return true, "fuzz seed " + strings.TrimSpace(rest)
			}
		}
		return true, "sim fuzz: " + firstLines(out.Bytes(), 1)
	}
	return true, fmt.Sprintf("%s: %s", p, scenarioFailures(text))
}

// scenarioFailures lists what failed in a 'meridian sim run' summary:
// "invariant NAME" and "expect METRIC" items, joined by ", ".
func scenarioFailures(text string) string {
	var got []string
	section := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		switch strings.TrimSpace(line) {
		case "expectations:":
			section = "expect "
			continue
		case "invariants:":
			section = "invariant "
			continue
		}
		if strings.HasPrefix(line, "result:") {
			section = ""
		}
		if rest, ok := strings.CutPrefix(line, "  FAIL"); ok && section != "" {
			if f := strings.Fields(rest); len(f) > 0 {
				got = append(got, section+f[0])
			}
		}
		if strings.HasPrefix(line, "determinism") && strings.Contains(line, "FAIL") {
			got = append(got, "determinism")
		}
	}
	if len(got) == 0 {
		return "failed (" + firstLines([]byte(text), 1) + ")"
	}
	return strings.Join(got, ", ")
}

func firstLines(b []byte, n int) string {
	var out []string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue // go build's "# package" headers
		}
		out = append(out, line)
		if len(out) == n {
			break
		}
	}
	return strings.Join(out, " | ")
}

// treeFiles lists the files of the tree at root: git's tracked and
// untracked-but-not-ignored files when root is a git checkout (uncommitted
// edits included), else every file outside .git and bin.
func treeFiles(root string) ([]string, error) {
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil {
		var files []string
		for f := range strings.SplitSeq(strings.TrimRight(string(out), "\x00"), "\x00") {
			if f != "" {
				files = append(files, f)
			}
		}
		return files, nil
	}
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() && (rel == ".git" || rel == "bin" || rel == "tmp") {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	return files, err
}

func copyTree(root, dst string, files []string) error {
	for _, f := range files {
		src := filepath.Join(root, filepath.FromSlash(f))
		st, err := os.Lstat(src)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // deleted in the working tree, not committed yet
			}
			return err
		}
		if !st.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		d := filepath.Join(dst, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(d), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(d, b, st.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

func printTable(w io.Writer, rs []Result, o *Options, wall time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if o.Check {
		fmt.Fprintln(tw, "MUTANT\tFILE\tCHECK\tBUILD")
		for _, r := range rs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Mutant.Name, r.Mutant.File, oneLine(r), r.Build.Round(100*time.Millisecond))
		}
		tw.Flush()
		ok := count(rs, Compiles)
		fmt.Fprintf(w, "\ncheck: %d of %d mutants apply and compile (%s)\n", ok, len(rs), wall.Round(time.Second))
		return
	}
	fmt.Fprintln(tw, "MUTANT\tAREA\tFILE\tCAUGHT BY\tTIME TO CATCH\tRUNS")
	for _, r := range rs {
		t := "-"
		if r.Status == Caught {
			t = r.ToCatch.Round(10 * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", r.Mutant.Name, r.Mutant.Area, r.Mutant.File, clip(oneLine(r), 110), t, r.Runs)
	}
	tw.Flush()
	caught := count(rs, Caught)
	fmt.Fprintf(w, "\nscore: %d/%d caught by the simulator (%s)", caught, len(rs), pctOf(caught, len(rs)))
	inReach, caughtIn := 0, 0
	for _, r := range rs {
		if r.Mutant.Reach == "" {
			inReach++
			if r.Status == Caught {
				caughtIn++
			}
		}
	}
	if inReach < len(rs) {
		fmt.Fprintf(w, "; %d/%d (%s) of those in code the simulator runs today", caughtIn, inReach, pctOf(caughtIn, inReach))
	}
	fmt.Fprintf(w, "\nseeds %v per scenario, sim fuzz --seeds %d; wall time %s with -j %d\n", o.Seeds, o.FuzzSeeds, wall.Round(time.Second), o.Jobs)
	var notes []string
	for _, r := range rs {
		switch {
		case r.Status == NotApplied || r.Status == BuildFailed:
			notes = append(notes, fmt.Sprintf("DEFECT %s: %s: %s", r.Mutant.Name, r.Status, r.By))
		case r.Status == Missed && r.Mutant.Reach != "":
			notes = append(notes, fmt.Sprintf("missed %s: expected until %s", r.Mutant.Name, reachText(r.Mutant.Reach)))
		}
	}
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
}

func reachText(reach string) string {
	switch reach {
	case ReachSeam:
		return "the simulator runs the production drivers (rt seam)"
	case ReachRedis:
		return "the simulator runs the Redis store's Lua (it runs MemStore)"
	case ReachHandler:
		return "the simulator registers through the handlers' decoding and validation"
	}
	return reach
}

func oneLine(r Result) string {
	if r.Status == Caught || r.Status == Compiles {
		if r.Status == Compiles {
			return "ok"
		}
		return r.By
	}
	switch r.Status {
	case Missed:
		return "missed"
	case NotApplied:
		return r.By // "does not apply: ..."
	}
	return string(r.Status) + ": " + r.By
}

func count(rs []Result, s Status) int {
	n := 0
	for _, r := range rs {
		if r.Status == s {
			n++
		}
	}
	return n
}

func pctOf(a, b int) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(a)/float64(b))
}

// fuzzFirstFailure runs a 'sim fuzz' command, reading its output as it
// comes; at the first "FAIL seed" line it kills the run and returns what
// failed. Otherwise it waits for the end (the output is left in out) and
// returns "" and the command's error.
func fuzzFirstFailure(cmd *exec.Cmd, out *bytes.Buffer) (string, error) {
	cmd.Stdout = nil
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	sc := bufio.NewScanner(pipe)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if rest, ok := strings.CutPrefix(line, "FAIL seed "); ok {
			cmd.Process.Kill()
			io.Copy(io.Discard, pipe)
			cmd.Wait()
			return "fuzz seed " + clip(strings.TrimSpace(rest), 200), nil
		}
	}
	io.Copy(io.Discard, pipe)
	return "", cmd.Wait()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
