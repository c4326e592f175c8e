// Command mutants runs the mutant set of internal/mutants against the
// simulator: each deliberate bug is applied alone in a temporary copy of the
// tree, the meridian binary is built, and every built-in scenario (a few
// seeds) and 'meridian sim fuzz' (a small budget) are run until one fails.
// It prints a table (mutant, file, what caught it, time to catch) and the
// score. 'make mutants' runs it; see the README, "Mutation testing".
//
//	go run ./internal/mutants/cmd/mutants [-j N] [-check] [-list] [MUTANTS=glob,...]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/meridian-sd/meridian/internal/mutants"
)

func main() { os.Exit(run()) }

func run() int {
	var o mutants.Options
	var seeds, only string
	var list bool
	var target float64
	flag.IntVar(&o.Jobs, "j", 2, "mutants tried in parallel")
	flag.StringVar(&seeds, "seeds", "1,2,3", "comma-separated seeds for every built-in scenario")
	flag.IntVar(&o.FuzzSeeds, "fuzz-seeds", 100, "seeds of 'meridian sim fuzz' per mutant (0: no fuzzing)")
	flag.DurationVar(&o.FuzzBudget, "fuzz-budget", time.Minute, "wall-time budget of one 'sim fuzz' run")
	flag.DurationVar(&o.RunTimeout, "run-timeout", 2*time.Minute, "one simulation; longer counts as a hang (caught)")
	flag.BoolVar(&o.Check, "check", false, "only check that every mutant applies (snippet found once) and compiles")
	flag.BoolVar(&o.Keep, "keep", false, "keep the temporary copies of the tree")
	flag.BoolVar(&list, "list", false, "list the mutants and exit")
	flag.StringVar(&only, "only", os.Getenv("MUTANTS"), "comma-separated names or globs of mutants to run (default $MUTANTS; empty: all)")
	flag.Float64Var(&target, "target", 90, "exit 1 when less than this percentage is caught")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "mutants: takes no arguments, got %q\n", flag.Args())
		return 2
	}
	if err := mutants.Validate(mutants.All); err != nil {
		fmt.Fprintf(os.Stderr, "mutants: the set is invalid:\n%v\n", err)
		return 2
	}
	ms, err := mutants.Select(mutants.All, only)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mutants: %v\n", err)
		return 2
	}
	if list {
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "MUTANT\tAREA\tFILE\tBUG")
		for _, m := range ms {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Name, m.Area, m.File, m.Desc)
		}
		tw.Flush()
		return 0
	}
	o.Seeds = nil
	for s := range strings.SplitSeq(seeds, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "mutants: -seeds: %q is not a seed\n", s)
			return 2
		}
		o.Seeds = append(o.Seeds, n)
	}
	if len(o.Seeds) == 0 {
		o.Seeds = []uint64{}
	}
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "mutants: finding the module root (go list -m): %v\n", err)
		return 2
	}
	o.Root = strings.TrimSpace(string(root))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rs, err := mutants.Run(ctx, ms, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mutants: %v\n", err)
		return 2
	}
	code := 0
	caught := 0
	for _, r := range rs {
		switch r.Status {
		case mutants.NotApplied, mutants.BuildFailed:
			code = 1
		case mutants.Caught:
			caught++
		}
	}
	if !o.Check && len(rs) > 0 && 100*float64(caught)/float64(len(rs)) < target {
		fmt.Fprintf(os.Stderr, "mutants: score %d/%d is below the %g%% target\n", caught, len(rs), target)
		code = 1
	}
	return code
}
