package sim

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-sd/meridian/failover"
	"github.com/meridian-sd/meridian/federation"
)

// tracing emits OpenTelemetry spans with simulated timestamps. It only
// writes to the tracers: nothing it gets back reaches the simulation, and
// its sampling draws come from a random stream of its own.
type tracing struct {
	f       func(service string) trace.Tracer
	tracers map[string]trace.Tracer
	rng     *rand.Rand
	rate    float64
	start   time.Time
	faults  map[int]trace.Span // open fault spans by fault span index
}

// spanRef is a span and its context, zero when tracing is off.
type spanRef struct {
	span trace.Span
	ctx  context.Context
}

type syncAttrs struct {
	from, to uint64
	bytes    int64
	changes  int
	full     bool
}

func newTracing(f func(string) trace.Tracer, rng *rand.Rand, rate float64, start time.Time) *tracing {
	return &tracing{f: f, tracers: map[string]trace.Tracer{}, rng: rng, rate: rate, start: start, faults: map[int]trace.Span{}}
}

func (t *tracing) on() bool { return t.f != nil }

func (t *tracing) tracer(service string) trace.Tracer {
	tr := t.tracers[service]
	if tr == nil {
		tr = t.f(service)
		t.tracers[service] = tr
	}
	return tr
}

func (t *tracing) ts(at time.Duration) trace.SpanEventOption {
	return trace.WithTimestamp(t.start.Add(at))
}

func (t *tracing) startFetch(g *gateway, e federation.Effect, at time.Duration) spanRef {
	if !t.on() {
		return spanRef{}
	}
	ctx, sp := t.tracer("meridian-"+g.name).Start(context.Background(), "federation.fetch",
		trace.WithTimestamp(t.start.Add(at)), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("peer.region", e.Region), attribute.String("peer.gateway", e.Gateway),
			attribute.Int64("sync.since", int64(e.Since)), attribute.String("sync.reason", e.Reason)))
	return spanRef{span: sp, ctx: ctx}
}

func (t *tracing) endFetch(r spanRef, at time.Duration, errMsg string, a *syncAttrs) {
	if r.span == nil {
		return
	}
	if a != nil {
		r.span.SetAttributes(a.kvs()...)
	}
	if errMsg != "" {
		r.span.SetStatus(codes.Error, errMsg)
	}
	r.span.End(t.ts(at))
}

func (a *syncAttrs) kvs() []attribute.KeyValue {
	return []attribute.KeyValue{attribute.Int64("sync.from_version", int64(a.from)), attribute.Int64("sync.to_version", int64(a.to)),
		attribute.Int64("sync.bytes", a.bytes), attribute.Int("sync.changes", a.changes), attribute.Bool("sync.full", a.full)}
}

// serve records the serving gateway's span, a child of the fetcher's.
func (t *tracing) serve(srv *gateway, parent spanRef, start, end time.Duration, e federation.Effect, res federation.SyncResult, size int64, n int, err error) {
	if !t.on() {
		return
	}
	ctx := parent.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	_, sp := t.tracer("meridian-"+srv.name).Start(ctx, "federation.serve", trace.WithTimestamp(t.start.Add(start)),
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attribute.String("peer.region", srv.rs.name)))
	a := syncAttrs{from: e.Since, to: res.Version, bytes: size, changes: n, full: res.Full}
	sp.SetAttributes(a.kvs()...)
	if err != nil {
		sp.SetStatus(codes.Error, err.Error())
	}
	sp.End(t.ts(end))
}

// lookup traces a sampled share of lookups.
func (t *tracing) lookup(g *gateway, s *stream, ep *failover.Endpoint, d *failover.Decision, alive bool, at time.Duration) {
	if !t.on() || t.rng.Float64() >= t.rate {
		return
	}
	w := g.w
	_, sp := t.tracer("meridian-"+g.name).Start(context.Background(), "lookup", trace.WithTimestamp(t.start.Add(at)),
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("lookup.from_region", s.from.name), attribute.String("lookup.service", s.svcName),
			attribute.String("lookup.policy", string(s.cfg.policy.Mode)), attribute.Bool("lookup.failover", d.Failover),
			attribute.Bool("lookup.panic", d.Panic), attribute.String("endpoint.region", ep.Region),
			attribute.String("endpoint.id", ep.ID), attribute.Bool("endpoint.alive", alive)))
	if !alive {
		sp.SetStatus(codes.Error, "endpoint not alive")
	}
	sp.End(t.ts(at + 2*w.cfg.net.intra))
}

func (t *tracing) startFault(i int, kind, label string, at time.Duration) {
	if !t.on() {
		return
	}
	_, sp := t.tracer("sim").Start(context.Background(), "fault "+kind, trace.WithTimestamp(t.start.Add(at)),
		trace.WithAttributes(attribute.String("fault.kind", kind), attribute.String("fault.label", label)))
	t.faults[i] = sp
}

func (t *tracing) endFault(i int, at time.Duration) {
	if sp := t.faults[i]; sp != nil {
		sp.End(t.ts(at))
		delete(t.faults, i)
	}
}

func (t *tracing) endFaults(at time.Duration) {
	for _, i := range sortedIntKeys(t.faults) {
		t.endFault(i, at)
	}
}

func sortedIntKeys[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// byteCounter counts what is written to it.
type byteCounter int64

func (c *byteCounter) Write(p []byte) (int, error) { *c += byteCounter(len(p)); return len(p), nil }

// jsonSize is the size of v as the sync endpoint writes it (json.Encoder).
func jsonSize(v any) int64 {
	var c byteCounter
	if err := json.NewEncoder(&c).Encode(v); err != nil {
		return 0
	}
	return int64(c)
}
