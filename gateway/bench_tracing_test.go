package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// tracingModes are the tracer providers BenchmarkLookupTracing compares:
// no tracing (a no-op provider, as the agent runs without an exporter),
// and the SDK sampling 1% and 100% of new traces, parent-based as the
// agent configures it, with a BatchSpanProcessor feeding an exporter that
// drops the spans.
var tracingModes = []struct {
	name string
	rate float64 // < 0: no-op provider
}{{"off", -1}, {"1pct", 0.01}, {"100pct", 1}}

func tracerProvider(b *testing.B, rate float64) trace.TracerProvider {
	if rate < 0 {
		return tracenoop.NewTracerProvider()
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(rate))),
		sdktrace.WithBatcher(tracetest.NewNoopExporter()),
	)
	b.Cleanup(func() { tp.Shutdown(context.Background()) })
	return tp
}

// BenchmarkLookupTracing measures GET /v1/lookup/web (routing decision,
// with its span attributes when sampled) through the gateway's whole
// handler with tracing off, at 1% and at 100% sampling, and reports each
// mode's cost relative to "off" (x-off; the target is at most 1.10 at 1%).
//
// The sub-benchmarks off, 1pct and 100pct run one after the other; on a
// shared machine their ratio moves with the load, so "interleaved" also
// runs the off and 1pct handlers in turn within one loop, timing each
// request, and reports both costs and their ratio from the same stretch of
// time (off-ns/op, 1pct-ns/op, 1pct/off).
func BenchmarkLookupTracing(b *testing.B) {
	const target = "/v1/lookup/web"
	handlers := make([]http.Handler, len(tracingModes))
	for i, m := range tracingModes {
		handlers[i] = newBenchServerWith(b, Telemetry{TracerProvider: tracerProvider(b, m.rate), Propagator: propagation.TraceContext{}})
	}
	want := len(get(b, handlers[0], target))
	for i, h := range handlers[1:] {
		if got := len(get(b, h, target)); got != want {
			b.Fatalf("%s answers %d bytes, off %d", tracingModes[i+1].name, got, want)
		}
	}
	serve := func(b *testing.B, h http.Handler, req *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || rec.Body.Len() != want {
			b.Fatalf("GET %s: got HTTP %d with %d bytes, want 200 with %d", target, rec.Code, rec.Body.Len(), want)
		}
	}
	var offNs float64
	for i, m := range tracingModes {
		b.Run(m.name, func(b *testing.B) {
			b.ReportAllocs()
			req := httptest.NewRequest(http.MethodGet, target, nil)
			for b.Loop() {
				serve(b, handlers[i], req)
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if i == 0 {
				offNs = ns
			} else if offNs > 0 {
				b.ReportMetric(ns/offNs, "x-off")
			}
		})
	}
	// off and 1pct in turn within one loop: the ratio the target is about,
	// measured over the same stretch of time. (100pct stays out of it: its
	// batch exporter's goroutine and garbage would be billed to the others.)
	b.Run("interleaved", func(b *testing.B) {
		pair := handlers[:2]
		reqs := make([]*http.Request, len(pair))
		for i := range reqs {
			reqs[i] = httptest.NewRequest(http.MethodGet, target, nil)
		}
		total := make([]time.Duration, len(pair))
		n := 0
		for b.Loop() {
			// Alternate which runs first, so neither always finds warm caches.
			for j := range pair {
				i := (n + j) % len(pair)
				start := time.Now()
				serve(b, pair[i], reqs[i])
				total[i] += time.Since(start)
			}
			n++
		}
		off := float64(total[0].Nanoseconds()) / float64(n)
		pct := float64(total[1].Nanoseconds()) / float64(n)
		b.ReportMetric(off, "off-ns/op")
		b.ReportMetric(pct, "1pct-ns/op")
		b.ReportMetric(pct/off, "1pct/off")
	})
}
