package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/observability"
	"github.com/meridian-sd/meridian/scenarios"
	"github.com/meridian-sd/meridian/sim"
)

// simScenario picks a built-in scenario with faults (so the "sim" service
// has spans), preferring a partition.
func simScenario(t *testing.T) *scenarios.Scenario {
	t.Helper()
	var withFaults []*scenarios.Scenario
	for _, name := range scenarios.Names() {
		sc, err := scenarios.Builtin(name)
		if err != nil {
			t.Fatalf("built-in scenario %s: %v", name, err)
		}
		if len(sc.Timeline) > 0 {
			withFaults = append(withFaults, sc)
		}
	}
	if len(withFaults) == 0 {
		t.Fatalf("no built-in scenario has a fault timeline (built-ins: %v)", scenarios.Names())
	}
	for _, sc := range withFaults {
		if strings.Contains(sc.Name, "partition") {
			return sc
		}
	}
	return withFaults[0]
}

// gatewayServices are the simulated gateways' service names:
// meridian-<region>-<n>, n from 1.
func gatewayServices(sc *scenarios.Scenario) []string {
	var out []string
	for _, r := range sc.Topology.Regions {
		n := max(r.Gateways, 1)
		for i := 1; i <= n; i++ {
			out = append(out, "meridian-"+r.Name+"-"+strconv.Itoa(i))
		}
	}
	return out
}

func TestJaegerSimulation(t *testing.T) {
	otlpURL, query := jaegerEnv(t)
	sc := simScenario(t)
	start := sc.Start
	if start.IsZero() {
		start = scenarios.DefaultStart
	}
	const seed = 7
	var file bytes.Buffer
	st, err := observability.NewSimTracing(observability.SimTraceConfig{Seed: seed, Start: start, File: &file, OTLPEndpoint: otlpURL})
	if err != nil {
		t.Fatal(err)
	}
	res, err := sim.Run(sc, sim.Options{Seed: seed, Tracer: st.Tracer, TraceSampleRate: 0.05})
	if err != nil {
		t.Fatalf("sim.Run(%s): %v", sc.Name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := st.Shutdown(ctx); err != nil {
		t.Fatalf("sim tracing shutdown (OTLP to Jaeger): %v", err)
	}

	// The spans are stamped with simulated time: search that window, not
	// the wall clock's.
	from, to := start.Add(-time.Minute), start.Add(res.Duration+time.Hour)
	// Every simulated gateway fetches catalogs from the other regions, so
	// each has spans; fetch spans have children (the serving side).
	gateways := gatewayServices(sc)
	got := waitForTraces(t, query, from, to, append([]string{"sim"}, gateways...), func(s string, spans []v3Span) error {
		if len(spans) == 0 {
			return fmt.Errorf("no spans")
		}
		if s != "sim" {
			return linked(spans)
		}
		return nil
	})
	var svcs v3Services
	if _, err := getJSON(t, query+"/api/v3/services", &svcs); err != nil {
		t.Fatal(err)
	}

	// Every span Jaeger returns lies in the simulated window, and every
	// trace it returns is in the trace file written from the same spans.
	inFile := map[string]bool{}
	reqs, err := observability.ReadTraceFile(&file)
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range reqs {
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					inFile[hex.EncodeToString(s.GetTraceId())] = true
				}
			}
		}
	}
	lo, hi := uint64(start.UnixNano()), uint64(start.Add(res.Duration+time.Hour).UnixNano())
	for svc, spans := range got {
		for _, s := range spans {
			ns, err := strconv.ParseUint(s.Start, 10, 64)
			if err != nil || ns < lo || ns > hi {
				t.Fatalf("%s span %s starts at %q, outside the simulated window from %s", svc, s.Name, s.Start, start)
			}
			if !inFile[s.TraceID] {
				t.Fatalf("%s trace %s is in Jaeger but not in the trace file", svc, s.TraceID)
			}
		}
	}
	counts := map[string]int{}
	for svc, spans := range got {
		counts[svc] = len(spans)
	}
	t.Logf("scenario %s (seed %d, %s simulated): Jaeger services %v; spans in each service's traces: %v",
		sc.Name, seed, res.Duration, svcs.Services, counts)
}
