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

// The spans of a simulation use the live gateway's vocabulary (gateway
// telemetry.go, federation syncproto.go), so one Jaeger query finds both:
// a lookup is the server span "GET /v1/lookup/{service}" with the
// meridian.route.* attributes, a catalog fetch the client span
// "federation.sync" with meridian.sync.*, its serving side the server span
// "GET /v1/federation/catalog"; every span carries meridian.region, and
// the server spans meridian.node (the live federation.sync span has no
// node). Attributes only a simulation has are meridian.sim.* (the endpoint
// a simulated caller picked, whether it was alive, why a fetch ran).
const (
	spanSync    = "federation.sync"
	routeLookup = "/v1/lookup/{service}"
)

var (
	attrRegion     = attribute.Key("meridian.region")
	attrNode       = attribute.Key("meridian.node")
	attrHTTPMethod = attribute.Key("http.request.method")
	attrHTTPRoute  = attribute.Key("http.route")
)

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
	ctx, sp := t.tracer("meridian-"+g.name).Start(context.Background(), spanSync,
		trace.WithTimestamp(t.start.Add(at)), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attrRegion.String(g.rs.name),
			attribute.String("meridian.sync.peer_region", e.Region), attribute.String("meridian.sync.peer_gateway", e.Gateway),
			attribute.Int64("meridian.sync.version_from", int64(e.Since)), attribute.String("meridian.sim.sync_reason", e.Reason)))
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
	return []attribute.KeyValue{attribute.Int64("meridian.sync.version_from", int64(a.from)), attribute.Int64("meridian.sync.version_to", int64(a.to)),
		attribute.Int64("meridian.sync.bytes", a.bytes), attribute.Int("meridian.sync.changes", a.changes), attribute.Bool("meridian.sync.full", a.full)}
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
	_, sp := t.tracer("meridian-"+srv.name).Start(ctx, "GET "+federation.CatalogPath, trace.WithTimestamp(t.start.Add(start)),
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrRegion.String(srv.rs.name), attrNode.String(srv.name),
			attrHTTPMethod.String("GET"), attrHTTPRoute.String(federation.CatalogPath)))
	// As the live handler: versions, changes, full; not the bytes, which
	// only the fetching side counts.
	sp.SetAttributes(attribute.Int64("meridian.sync.version_from", int64(e.Since)), attribute.Int64("meridian.sync.version_to", int64(res.Version)),
		attribute.Int("meridian.sync.changes", n), attribute.Bool("meridian.sync.full", res.Full))
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
	_, sp := t.tracer("meridian-"+g.name).Start(context.Background(), "GET "+routeLookup, trace.WithTimestamp(t.start.Add(at)),
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attrRegion.String(s.from.name), attrNode.String(g.name),
			attrHTTPMethod.String("GET"), attrHTTPRoute.String(routeLookup),
			attribute.String("meridian.service", s.svcName),
			attribute.String("meridian.route.policy", string(s.cfg.policy.Mode)), attribute.Bool("meridian.route.failover", d.Failover),
			attribute.Bool("meridian.route.panic", d.Panic), attribute.Int("meridian.route.endpoints", len(d.Endpoints)),
			attribute.String("meridian.route.explanation", d.Explanation),
			attribute.String("meridian.sim.endpoint", ep.Region+"/"+ep.Service+"/"+ep.ID),
			attribute.Bool("meridian.sim.endpoint_alive", alive)))
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
		trace.WithAttributes(attribute.String("meridian.sim.fault_kind", kind), attribute.String("meridian.sim.fault_label", label)))
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
