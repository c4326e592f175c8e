package observability

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// SimTracerName is the instrumentation scope of the simulator's tracers.
const SimTracerName = "github.com/meridian-sd/meridian/sim"

// SimBatchSize is how many spans of one service go into one exported batch
// (one trace-file line, one OTLP request).
const SimBatchSize = 256

// Resource attribute keys on simulated services.
const (
	AttrSimSeed  = attribute.Key("meridian.sim.seed")
	AttrSimStart = attribute.Key("meridian.sim.start")
)

// SimTraceConfig configures the simulator's tracing.
type SimTraceConfig struct {
	// Seed derives every trace and span id.
	Seed uint64
	// Start is the simulated start time, recorded on each resource as
	// meridian.sim.start (RFC 3339). Spans carry their own simulated
	// timestamps, given with trace.WithTimestamp.
	Start time.Time
	// File, when set, receives the spans as OTLP JSON lines (see
	// NewFileExporter). It is not closed.
	File io.Writer
	// OTLPEndpoint, when set, is an OTLP/HTTP receiver's base URL (such as
	// http://127.0.0.1:4318) that receives the same batches.
	OTLPEndpoint string
}

// SimTracing produces deterministic traces for the simulator: ids come from
// a PCG stream seeded with Seed, every span is sampled, resources hold only
// explicit attributes, and ended spans are written synchronously, grouped by
// service in end order, in batches of SimBatchSize. A batch is written when
// it is full; Shutdown writes the rest, services in name order. With the
// same seed and the same sequence of span operations (from one goroutine,
// with explicit timestamps) the file is byte-identical.
type SimTracing struct {
	cfg  SimTraceConfig
	ids  *seededIDs
	proc *simProcessor

	mu        sync.Mutex
	providers map[string]*sdktrace.TracerProvider
	tracers   map[string]trace.Tracer
	closed    bool
	shutErr   error
}

// NewSimTracing returns simulator tracing writing to cfg.File and/or
// cfg.OTLPEndpoint. With neither set spans are built and dropped.
func NewSimTracing(cfg SimTraceConfig) (*SimTracing, error) {
	p := &simProcessor{pending: map[string][]sdktrace.ReadOnlySpan{}, resources: map[string]*resource.Resource{}}
	if cfg.File != nil {
		p.file = otlptrace.NewUnstarted(&fileClient{w: nopCloser{cfg.File}})
	}
	if cfg.OTLPEndpoint != "" {
		ep, err := parseEndpoint(cfg.OTLPEndpoint)
		if err != nil {
			return nil, fmt.Errorf("otlp-endpoint: %w", err)
		}
		exp, err := otlptracehttp.New(context.Background(),
			otlptracehttp.WithEndpointURL(ep.signalURL("/v1/traces")),
			otlptracehttp.WithTimeout(10*time.Second),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{
				Enabled:         true,
				InitialInterval: 100 * time.Millisecond,
				MaxInterval:     time.Second,
				MaxElapsedTime:  10 * time.Second,
			}))
		if err != nil {
			return nil, fmt.Errorf("observability: sim otlp exporter: %w", err)
		}
		p.otlp = exp
	}
	return &SimTracing{
		cfg:       cfg,
		ids:       newSeededIDs(cfg.Seed),
		proc:      p,
		providers: map[string]*sdktrace.TracerProvider{},
		tracers:   map[string]trace.Tracer{},
	}, nil
}

// Tracer returns the tracer for a simulated service; each service has its
// own resource, whose service.name is service ("meridian-us-east-1", "sim").
// After Shutdown a service not seen before gets a no-op tracer.
func (s *SimTracing) Tracer(service string) trace.Tracer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tracers[service]; ok {
		return t
	}
	if s.closed {
		return noop.NewTracerProvider().Tracer(SimTracerName)
	}
	attrs := []attribute.KeyValue{
		semconv.ServiceName(service),
		AttrSimSeed.String(strconv.FormatUint(s.cfg.Seed, 10)),
	}
	if !s.cfg.Start.IsZero() {
		attrs = append(attrs, AttrSimStart.String(s.cfg.Start.UTC().Format(time.RFC3339Nano)))
	}
	res := resource.NewWithAttributes(semconv.SchemaURL, attrs...)
	s.proc.setResource(service, res)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithIDGenerator(s.ids),
		// Fixed limits: OTEL_SPAN_*_LIMIT must not change the output.
		sdktrace.WithRawSpanLimits(sdktrace.SpanLimits{
			AttributeValueLengthLimit:   -1,
			AttributeCountLimit:         sdktrace.DefaultAttributeCountLimit,
			EventCountLimit:             sdktrace.DefaultEventCountLimit,
			LinkCountLimit:              sdktrace.DefaultLinkCountLimit,
			AttributePerEventCountLimit: sdktrace.DefaultAttributePerEventCountLimit,
			AttributePerLinkCountLimit:  sdktrace.DefaultAttributePerLinkCountLimit,
		}),
		sdktrace.WithSpanProcessor(&serviceProcessor{service: service, p: s.proc}),
	)
	s.providers[service] = tp
	t := tp.Tracer(SimTracerName)
	s.tracers[service] = t
	return t
}

// Shutdown writes the spans not yet written, flushes and closes the
// exporters (not cfg.File). Spans not ended by then are dropped. It
// returns the first write or export error; later calls return it again.
func (s *SimTracing) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.shutErr
	}
	s.closed = true
	errs := []error{s.proc.flushAll(ctx)}
	names := make([]string, 0, len(s.providers))
	for n := range s.providers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		errs = append(errs, s.providers[n].Shutdown(ctx))
	}
	errs = append(errs, s.proc.shutdown(ctx))
	if err := errors.Join(errs...); err != nil {
		s.shutErr = fmt.Errorf("observability: sim tracing shutdown: %w", err)
	}
	return s.shutErr
}

// seededIDs is a deterministic sdktrace.IDGenerator: a PCG stream seeded
// from the simulation seed. Ids are never zero.
type seededIDs struct {
	mu  sync.Mutex
	rng *rand.Rand
}

var _ sdktrace.IDGenerator = (*seededIDs)(nil)

// idStream separates the id stream from other streams seeded with the same
// seed ("meridian" in ASCII).
const idStream = 0x6d65726964696e6e

func newSeededIDs(seed uint64) *seededIDs {
	return &seededIDs{rng: rand.New(rand.NewPCG(seed, idStream))}
}

func (g *seededIDs) nonZero() uint64 {
	for {
		if v := g.rng.Uint64(); v != 0 {
			return v
		}
	}
}

func (g *seededIDs) NewIDs(context.Context) (trace.TraceID, trace.SpanID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var tid trace.TraceID
	binary.BigEndian.PutUint64(tid[:8], g.nonZero())
	binary.BigEndian.PutUint64(tid[8:], g.rng.Uint64())
	var sid trace.SpanID
	binary.BigEndian.PutUint64(sid[:], g.nonZero())
	return tid, sid
}

func (g *seededIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	g.mu.Lock()
	defer g.mu.Unlock()
	var sid trace.SpanID
	binary.BigEndian.PutUint64(sid[:], g.nonZero())
	return sid
}

// simProcessor collects ended spans per service and exports full batches
// synchronously, so output order follows the order spans end.
type simProcessor struct {
	mu        sync.Mutex
	pending   map[string][]sdktrace.ReadOnlySpan
	resources map[string]*resource.Resource
	file      *otlptrace.Exporter
	otlp      *otlptrace.Exporter
	fileErr   error
	otlpErr   error
	closed    bool
}

func (p *simProcessor) setResource(service string, r *resource.Resource) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resources[service] = r
}

func (p *simProcessor) onEnd(service string, s sdktrace.ReadOnlySpan) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	// The provider's resource is merged with OTEL_RESOURCE_ATTRIBUTES by the
	// SDK; export the explicit one so the environment cannot change bytes.
	p.pending[service] = append(p.pending[service], simSpan{ReadOnlySpan: s, res: p.resources[service]})
	if len(p.pending[service]) >= SimBatchSize {
		p.exportLocked(context.Background(), service)
	}
}

func (p *simProcessor) exportLocked(ctx context.Context, service string) {
	batch := p.pending[service]
	if len(batch) == 0 {
		return
	}
	p.pending[service] = nil
	if p.file != nil && p.fileErr == nil {
		if err := p.file.ExportSpans(ctx, batch); err != nil {
			p.fileErr = fmt.Errorf("trace file: %w", err)
		}
	}
	if p.otlp != nil && p.otlpErr == nil {
		// After a failure, stop sending: each attempt can take seconds.
		if err := p.otlp.ExportSpans(ctx, batch); err != nil {
			p.otlpErr = fmt.Errorf("otlp export: %w", err)
		}
	}
}

func (p *simProcessor) flushAll(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	names := make([]string, 0, len(p.pending))
	for n := range p.pending {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p.exportLocked(ctx, n)
	}
	return errors.Join(p.fileErr, p.otlpErr)
}

func (p *simProcessor) shutdown(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	if p.file != nil {
		errs = append(errs, p.file.Shutdown(ctx))
	}
	if p.otlp != nil {
		errs = append(errs, p.otlp.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// serviceProcessor is one service's provider's view of the shared
// simProcessor.
type serviceProcessor struct {
	service string
	p       *simProcessor
}

var _ sdktrace.SpanProcessor = (*serviceProcessor)(nil)

func (sp *serviceProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (sp *serviceProcessor) OnEnd(s sdktrace.ReadOnlySpan)                   { sp.p.onEnd(sp.service, s) }
func (sp *serviceProcessor) Shutdown(context.Context) error                  { return nil }
func (sp *serviceProcessor) ForceFlush(context.Context) error                { return nil }

// simSpan replaces a span's resource with the service's explicit one.
type simSpan struct {
	sdktrace.ReadOnlySpan
	res *resource.Resource
}

func (s simSpan) Resource() *resource.Resource { return s.res }

// nopCloser keeps the exporter from closing a writer the caller owns.
type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
