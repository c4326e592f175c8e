package sim

import (
	"fmt"
	"io"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-sd/meridian/scenarios"
)

// Options tune one run. The zero value runs the scenario as written, with
// no event log, no progress and no tracing.
type Options struct {
	Seed     uint64
	Duration time.Duration // 0: the scenario's
	// Truncate allows a Duration that ends before some of the timeline's
	// faults (they do not happen); without it such a run is an error.
	Truncate bool
	// EventLog receives the JSON Lines event log; nil: none.
	EventLog io.Writer
	// Progress is called about once per simulated minute with the
	// simulated time done and the total; nil: none.
	Progress func(done, total time.Duration)
	// Tracer returns the tracer of a service: "sim" for faults,
	// "meridian-<gateway>" (e.g. "meridian-us-east-1") for a gateway. nil:
	// no tracing. Spans carry simulated timestamps; nothing read from the
	// tracer reaches the simulation.
	Tracer func(service string) trace.Tracer
	// TraceSampleRate is the share of lookups traced (default 0.01), drawn
	// from a random stream of its own so that tracing never changes a run.
	TraceSampleRate float64

	// MaxEvents bounds the events one run may process (default 2e9): a
	// run that exceeds it stops with an error instead of looping forever.
	MaxEvents int64
}

// Run simulates the scenario with the real region, federation and
// failover cores, and returns what it measured. The same binary, scenario
// and seed give a byte-identical event log and summary. Zero fields of the
// scenario take their documented defaults; an invalid scenario is an error.
func Run(sc *scenarios.Scenario, opts Options) (*Result, error) {
	if sc == nil {
		return nil, fmt.Errorf("sim: no scenario")
	}
	cfg, err := prepare(sc, opts)
	if err != nil {
		return nil, fmt.Errorf("sim: scenario %q: %w", sc.Name, err)
	}
	w, err := newWorld(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("sim: scenario %q: %w", sc.Name, err)
	}
	defer w.closeStores()
	if err := w.run(); err != nil {
		return nil, fmt.Errorf("sim: scenario %q seed %d: %w", sc.Name, opts.Seed, err)
	}
	return w.result(), nil
}
