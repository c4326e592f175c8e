package mutants

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSetIsValid(t *testing.T) {
	if err := Validate(All); err != nil {
		t.Fatal(err)
	}
	if len(All) < 30 {
		t.Errorf("the set has %d mutants, want at least 30", len(All))
	}
	areas := map[string]int{}
	for _, m := range All {
		areas[m.Area]++
	}
	for _, a := range []string{"region", "federation", "failover", "driver", "store"} {
		if areas[a] == 0 {
			t.Errorf("no mutant in area %s", a)
		}
	}
}

// TestEveryMutantApplies is the fast half of 'make mutants-check': each
// snippet occurs exactly once in today's tree. After a refactor, the
// message names the mutant and file to re-anchor.
func TestEveryMutantApplies(t *testing.T) {
	root := filepath.Join("..", "..")
	for _, m := range All {
		src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(m.File)))
		if err != nil {
			t.Errorf("mutant %s: does not apply: %v", m.Name, err)
			continue
		}
		out, err := m.Mutate(string(src))
		if err != nil {
			t.Errorf("mutant %s: %v", m.Name, err)
			continue
		}
		if out == string(src) {
			t.Errorf("mutant %s changes nothing", m.Name)
		}
	}
}

func TestMutate(t *testing.T) {
	m := Mutant{Name: "x", File: "a/b.go", Find: "x := 1", Replace: "x := 2"}
	tests := []struct {
		src, want, err string
	}{
		{src: "a\nx := 1\nb", want: "a\nx := 2\nb"},
		{src: "a\nb", err: "does not apply: snippet not found in a/b.go"},
		{src: "x := 1\nx := 1", err: "does not apply: snippet occurs 2 times in a/b.go (must be once)"},
	}
	for _, tc := range tests {
		got, err := m.Mutate(tc.src)
		switch {
		case tc.err != "":
			if err == nil || err.Error() != tc.err || !errors.Is(err, ErrNotApplicable) {
				t.Errorf("Mutate(%q) error = %v, want %q", tc.src, err, tc.err)
			}
		case err != nil || got != tc.want:
			t.Errorf("Mutate(%q) = %q, %v; want %q", tc.src, got, err, tc.want)
		}
	}
}

func TestApplyRestores(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.go")
	if err := os.WriteFile(p, []byte("package f\nconst x = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := Mutant{Name: "x", File: "f.go", Find: "x = 1", Replace: "x = 2"}
	restore, err := m.Apply(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); !strings.Contains(string(b), "x = 2") {
		t.Fatalf("after Apply: %q", b)
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "package f\nconst x = 1\n" {
		t.Fatalf("after restore: %q", b)
	}
	if _, err := (Mutant{Name: "y", File: "missing.go", Find: "a", Replace: "b"}).Apply(dir); !errors.Is(err, ErrNotApplicable) {
		t.Errorf("Apply of a missing file: %v, want ErrNotApplicable", err)
	}
}

func TestSelect(t *testing.T) {
	ms := []Mutant{{Name: "core-a"}, {Name: "core-b"}, {Name: "route-c"}}
	got, err := Select(ms, "core-*, route-c")
	if err != nil || len(got) != 3 {
		t.Fatalf("Select = %v, %v", got, err)
	}
	got, err = Select(ms, "route-c")
	if err != nil || len(got) != 1 || got[0].Name != "route-c" {
		t.Fatalf("Select(route-c) = %v, %v", got, err)
	}
	if _, err := Select(ms, "nope"); err == nil {
		t.Error("Select(nope): no error for a pattern that matches nothing")
	}
}

func TestScenarioFailures(t *testing.T) {
	out := `expectations:
  PASS  availability = 1, want >= 0.999
  FAIL  dead_share = 0.2, want <= 0.001

invariants:
  FAIL  no_lost_ack  violations=3
  PASS  version_monotonic  violations=0

result: FAIL
FAIL expectation dead_share = 0.2, want <= 0.001 (x.yaml:3)
FAIL invariant no_lost_ack
`
	if got, want := scenarioFailures(out), "expect dead_share, invariant no_lost_ack"; got != want {
		t.Errorf("scenarioFailures = %q, want %q", got, want)
	}
}
