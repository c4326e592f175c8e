package region

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func newTestTracer(t *testing.T) (*tracetest.InMemoryExporter, *sdktrace.TracerProvider) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return exp, tp
}

// TestProbeTelemetrySampling: every probe is counted; failed probes are
// all traced, passing ones one in TracePassingEvery, with the probe's own
// start and end times.
func TestProbeTelemetrySampling(t *testing.T) {
	exp, tp := newTestTracer(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	pt := newProbeTelemetry(HealthRunnerOptions{TracerProvider: tp, MeterProvider: mp, Region: "us-east", TracePassingEvery: 10})
	e := Effect{Kind: EffectProbe, Key: Key{Service: "web", ID: "w1"}, CheckKind: "http", Target: "http://127.0.0.1:1/health", Timeout: time.Second}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 25 {
		pt.observe(context.Background(), e, ProbeResult{Status: StatusPassing, Output: "HTTP GET: 200 OK"}, t0.Add(time.Duration(i)*time.Second), t0.Add(time.Duration(i)*time.Second+time.Millisecond))
	}
	for range 3 {
		pt.observe(context.Background(), e, ProbeResult{Status: StatusCritical, Output: "connection refused"}, t0, t0.Add(2*time.Millisecond))
	}
	var passing, critical int
	for _, s := range exp.GetSpans() {
		if s.Name != "health.check" {
			t.Fatalf("span %q, want health.check", s.Name)
		}
		if got := s.EndTime.Sub(s.StartTime); got != time.Millisecond && got != 2*time.Millisecond {
			t.Errorf("span lasts %s, want the probe's 1ms or 2ms", got)
		}
		for _, kv := range s.Attributes {
			if kv.Key == "meridian.check.status" {
				switch kv.Value.AsString() {
				case "passing":
					passing++
				case "critical":
					critical++
					if s.Status.Code.String() != "Error" {
						t.Errorf("critical probe span status %v, want Error", s.Status)
					}
				}
			}
		}
	}
	// Passing probes 1, 11 and 21 of 25.
	if passing != 3 || critical != 3 {
		t.Fatalf("traced %d passing and %d critical probes, want 3 and 3", passing, critical)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "meridian.health.checks" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				res, _ := dp.Attributes.Value(attribute.Key("result"))
				reg, _ := dp.Attributes.Value(attribute.Key("region"))
				counts[reg.AsString()+"/"+res.AsString()] += dp.Value
			}
		}
	}
	if counts["us-east/passing"] != 25 || counts["us-east/critical"] != 3 {
		t.Fatalf("meridian.health.checks = %v, want 25 passing and 3 critical in us-east", counts)
	}
}
