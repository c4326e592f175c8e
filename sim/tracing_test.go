package sim

import (
	"bytes"
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-sd/meridian/scenarios"
)

func TestTracing(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	providers := map[string]*sdktrace.TracerProvider{}
	tracer := func(service string) trace.Tracer {
		tp := providers[service]
		if tp == nil {
			tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			providers[service] = tp
		}
		return tp.Tracer(service)
	}
	sc := threeRegions(3 * time.Minute)
	sc.Timeline = []scenarios.Fault{{At: dur(time.Minute), Kind: scenarios.FaultPartition, Groups: [][]string{{"eu-west"}}, For: dur(time.Minute)}}
	var traced, plain bytes.Buffer
	_, sumTraced := runOK(t, sc, Options{Seed: 8, EventLog: &traced, Tracer: tracer, TraceSampleRate: 0.05})
	_, sumPlain := runOK(t, sc, Options{Seed: 8, EventLog: &plain})
	if traced.String() != plain.String() || sumTraced != sumPlain {
		t.Fatalf("tracing changed the run; first difference:\n%s", firstDiff(traced.String(), plain.String()))
	}
	for _, tp := range providers {
		tp.Shutdown(context.Background())
	}
	spans := rec.Ended()
	byName := map[string]int{}
	ids := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()]++
		ids[s.SpanContext().SpanID()] = s
	}
	t.Logf("spans: %v", byName)
	for _, name := range []string{"GET /v1/lookup/{service}", "federation.sync", "GET /v1/federation/catalog", "fault partition"} {
		if byName[name] == 0 {
			t.Errorf("no %q span", name)
		}
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	children := 0
	for _, s := range spans {
		if s.StartTime().Before(start) || s.EndTime().Before(s.StartTime()) || s.EndTime().After(start.Add(5*time.Minute)) {
			t.Errorf("span %s: %s .. %s: not in simulated time", s.Name(), s.StartTime(), s.EndTime())
		}
		switch s.Name() {
		case "GET /v1/federation/catalog":
			p, ok := ids[s.Parent().SpanID()]
			if !ok || p.Name() != "federation.sync" || p.SpanContext().TraceID() != s.SpanContext().TraceID() {
				t.Errorf("serve span without its fetch parent")
			}
			children++
		case "fault partition":
			if d := s.EndTime().Sub(s.StartTime()); d != time.Minute {
				t.Errorf("fault span lasts %s, want 1m", d)
			}
		}
	}
	if children == 0 {
		t.Error("no serve span was checked")
	}
	// About 5% of the lookups are traced.
	if n := byName["GET /v1/lookup/{service}"]; n < 300 || n > 900 {
		t.Errorf("%d lookup spans, want about 5%% of ~10800", n)
	}
}
