package redisstore

import (
	"context"
	"testing"

	"github.com/alicebob/miniredis/v2"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/meridian-sd/meridian/region"
)

// TestRedisCommandsTracedUnderASpanOnly: a Redis command gets a client
// span when its context carries a span, and none otherwise (the cache's
// background reads must not start traces).
func TestRedisCommandsTracedUnderASpanOnly(t *testing.T) {
	mr := miniredis.RunT(t)
	exp, tp := newTestTracer(t)
	s, err := NewRedisStore(RedisOptions{URL: "redis://" + mr.Addr() + "/0", Region: "us-east", TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	if spans := exp.GetSpans(); len(spans) != 0 {
		t.Fatalf("untraced Snapshot made %d spans (first %q), want none", len(spans), spans[0].Name)
	}
	ctx, parent := tp.Tracer("test").Start(context.Background(), "register")
	if _, err := s.Put(ctx, region.Instance{Service: "web", ID: "w1", Address: "10.0.0.1", Port: 80, Status: region.StatusPassing}, region.Cond{}); err != nil {
		t.Fatal(err)
	}
	parent.End()
	// The command (and the dial, with the connection handshake under it)
	// are children of the request's span, in its trace.
	var children int
	for _, sp := range exp.GetSpans() {
		if sp.Name == "register" {
			continue
		}
		if sp.SpanContext.TraceID() != parent.SpanContext().TraceID() || !sp.Parent.IsValid() {
			t.Errorf("redis span %q in trace %s under %s, want it in %s", sp.Name, sp.SpanContext.TraceID(), sp.Parent.SpanID(), parent.SpanContext().TraceID())
		}
		if sp.Parent.SpanID() == parent.SpanContext().SpanID() {
			children++
		}
		for _, kv := range sp.Attributes {
			if kv.Key == "db.statement" {
				t.Errorf("redis span %q records db.statement %q; instance documents must stay out of traces", sp.Name, kv.Value.AsString())
			}
		}
	}
	if children == 0 {
		t.Fatal("Put under a span made no redis span directly under it")
	}
}

func newTestTracer(t *testing.T) (*tracetest.InMemoryExporter, *sdktrace.TracerProvider) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return exp, tp
}
