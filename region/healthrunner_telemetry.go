package region

import (
	"context"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// DefaultTracePassingEvery is how many passing probes make one traced
// probe (1%) when HealthRunnerOptions.TracePassingEvery is 0.
const DefaultTracePassingEvery = 100

const instrumentationName = "github.com/meridian-sd/meridian/region"

// probeTelemetry records health-check probes as spans and metrics.
//
// Sampling: a probe's span is made after the probe, once its result is
// known, with the probe's start and end times: every probe that did not
// pass is traced, and one passing probe in TracePassingEvery. The span is a
// root ("health.check"); the tracer provider's sampler still applies to it
// (with a ratio sampler, at rate 1 every failure shows up). Metrics count
// every probe.
type probeTelemetry struct {
	tracer   trace.Tracer // nil: no spans
	every    uint64
	passing  atomic.Uint64
	checks   metric.Int64Counter
	duration metric.Float64Histogram
	region   attribute.KeyValue
}

func newProbeTelemetry(opt HealthRunnerOptions) *probeTelemetry {
	t := &probeTelemetry{region: attribute.String("region", opt.Region), every: uint64(opt.TracePassingEvery)}
	if t.every == 0 {
		t.every = DefaultTracePassingEvery
	}
	if opt.TracerProvider != nil {
		t.tracer = opt.TracerProvider.Tracer(instrumentationName)
	}
	if opt.MeterProvider != nil {
		m := opt.MeterProvider.Meter(instrumentationName)
		// Errors come only from invalid names or units, fixed here; the
		// SDK returns a working instrument alongside them anyway.
		t.checks, _ = m.Int64Counter("meridian.health.checks", metric.WithUnit("{check}"),
			metric.WithDescription("Health-check probes run by this gateway, by kind (http, tcp) and result (passing, warning, critical)."))
		t.duration, _ = m.Float64Histogram("meridian.health.check.duration", metric.WithUnit("s"),
			metric.WithDescription("Duration of health-check probes, by kind."),
			metric.WithExplicitBucketBoundaries(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
	}
	return t
}

// observe records one probe of e that ran from start to end.
func (t *probeTelemetry) observe(ctx context.Context, e Effect, res ProbeResult, start, end time.Time) {
	if t.checks != nil {
		kind := attribute.String("kind", e.CheckKind)
		t.checks.Add(ctx, 1, metric.WithAttributes(t.region, kind, attribute.String("result", string(res.Status))))
		t.duration.Record(ctx, end.Sub(start).Seconds(), metric.WithAttributes(t.region, kind))
	}
	if t.tracer == nil {
		return
	}
	if res.Status == StatusPassing && t.passing.Add(1)%t.every != 1%t.every {
		return
	}
	_, span := t.tracer.Start(ctx, "health.check", trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("meridian.region", t.region.Value.AsString()),
			attribute.String("meridian.instance", e.Key.String()),
			attribute.String("meridian.check.kind", e.CheckKind),
			attribute.String("meridian.check.target", e.Target),
			attribute.String("meridian.check.status", string(res.Status)),
			attribute.String("meridian.check.output", res.Output),
			attribute.Int64("meridian.check.timeout_ms", e.Timeout.Milliseconds()),
		))
	if res.Status == StatusCritical {
		span.SetStatus(codes.Error, res.Output)
	}
	span.End(trace.WithTimestamp(end))
}
