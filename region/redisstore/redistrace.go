package redisstore

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// instrumentRedis adds OpenTelemetry hooks to a go-redis client: a client
// span per command or pipeline, and go-redis's connection-pool and command
// duration metrics.
//
// Only commands run on behalf of something already traced get a span (an
// API request, a sync, a sampled health check): the cache's catch-up reads
// and pub/sub, which run every second whether or not anyone asks, would
// otherwise start a root trace each. Spans carry no db.statement (writes
// hold whole instance documents) and no caller (it costs a stack walk per
// command, traced or not).
func instrumentRedis(c redis.UniversalClient, tp trace.TracerProvider, mp metric.MeterProvider) error {
	if tp != nil {
		err := redisotel.InstrumentTracing(c,
			redisotel.WithTracerProvider(childOnlyProvider{tp}),
			redisotel.WithDBStatement(false),
			redisotel.WithCallerEnabled(false),
			// The group commit traces its own round trips (commitSpan):
			// go-redis would format every argument of a pipeline, the
			// instance documents included, into a string it then drops
			// (without db.statement), on every round trip, traced or not.
			redisotel.WithCommandsFilter(isGroupCommit),
		)
		if err != nil {
			return fmt.Errorf("tracing redis commands: %w", err)
		}
	}
	if mp != nil {
		if err := redisotel.InstrumentMetrics(c, redisotel.WithMeterProvider(mp)); err != nil {
			return fmt.Errorf("redis metrics: %w", err)
		}
	}
	return nil
}

// childOnlyProvider hands out tracers that start spans only under a valid
// parent span context; without one they return the context unchanged and a
// non-recording span.
type childOnlyProvider struct{ trace.TracerProvider }

func (p childOnlyProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childOnlyTracer{p.TracerProvider.Tracer(name, opts...)}
}

type childOnlyTracer struct{ trace.Tracer }

func (t childOnlyTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, trace.SpanFromContext(ctx)
	}
	return t.Tracer.Start(ctx, name, opts...)
}

// isGroupCommit reports whether a pipeline is a group-commit round trip:
// script calls only.
func isGroupCommit(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if n := c.Name(); n != "evalsha" && n != "eval" {
			return false
		}
	}
	return len(cmds) > 0
}

// commitSpan starts the client span of a group-commit round trip of n
// writes in calls script calls, under ctx's span; without one, or without
// a tracer, it returns ctx and a span that records nothing.
func (s *RedisStore) commitSpan(ctx context.Context, calls, n int) (context.Context, trace.Span) {
	if s.tracer == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, trace.SpanFromContext(ctx)
	}
	return s.tracer.Start(ctx, "redis.pipeline evalsha", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system", "redis"), attribute.Int("db.redis.num_cmd", calls),
			attribute.Int("meridian.writes", n)))
}
