package sim

import (
	"bytes"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/scenarios"
)

// Every built-in scenario runs, twice with the same seed to the same bytes,
// and meets its own expectations.
func TestBuiltinScenarios(t *testing.T) {
	names := scenarios.Names()
	if len(names) == 0 {
		t.Skip("no built-in scenarios yet")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			sc, err := scenarios.Builtin(name)
			if err != nil {
				t.Fatal(err)
			}
			if testing.Short() && sc.Duration.D() > 30*time.Minute {
				t.Skip("-short")
			}
			var b1, b2 bytes.Buffer
			r, sum1 := runOK(t, sc, Options{Seed: 1, EventLog: &b1})
			sc2, _ := scenarios.Builtin(name)
			_, sum2 := runOK(t, sc2, Options{Seed: 1, EventLog: &b2})
			if b1.String() != b2.String() || sum1 != sum2 {
				t.Fatalf("two runs with seed 1 differ; first difference:\n%s", firstDiff(b1.String(), b2.String()))
			}
			t.Logf("\n%s", sum1)
			if !r.Passed() {
				t.Errorf("%s does not pass with seed 1:\n%s", name, sum1)
			}
		})
	}
}
