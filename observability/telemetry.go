package observability

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Trace exporter names accepted in Config.TraceExporter (and the agent's
// --trace-exporter flag).
const (
	ExporterAuto = ""     // otlp when an OTLP endpoint is configured, else file when TraceFile is set, else none
	ExporterOTLP = "otlp" // OTLP over http/protobuf (default) or grpc, per OTEL_EXPORTER_OTLP_PROTOCOL
	ExporterFile = "file" // OTLP JSON lines in Config.TraceFile
	ExporterNone = "none" // no traces: a no-op tracer provider
)

// DefaultServiceName is the service.name used when neither Config.ServiceName
// nor OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) gives one.
const DefaultServiceName = "meridian"

// Resource attribute keys Meridian adds next to the semantic conventions.
const (
	AttrRegion = attribute.Key("meridian.region")
	AttrNode   = attribute.Key("meridian.node")
)

// Config says where a process's traces and metrics go. Fields set here win
// over the standard OTEL_* environment variables, which apply otherwise.
// Start from DefaultConfig: its SampleRate of -1 defers sampling to the
// environment, whereas the zero value 0 samples no new traces.
type Config struct {
	// ServiceName is the resource's service.name. Empty: OTEL_SERVICE_NAME
	// (or service.name in OTEL_RESOURCE_ATTRIBUTES), else "meridian".
	ServiceName string
	// Region is recorded as meridian.region and cloud.region.
	Region string
	// NodeName is recorded as service.instance.id and meridian.node.
	NodeName string
	// TraceExporter is "otlp", "file", "none" or "" (auto: otlp when
	// OTLPEndpoint, OTEL_EXPORTER_OTLP_ENDPOINT or
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, else file when TraceFile
	// is set, else none).
	TraceExporter string
	// TraceFile receives spans as OTLP JSON: one ExportTraceServiceRequest
	// (protojson, compacted) per line and per exported batch. The file is
	// appended to; the last batch is written by Shutdown.
	TraceFile string
	// OTLPEndpoint is the base URL of an OTLP receiver, such as
	// http://127.0.0.1:4318 (http/protobuf, signal paths /v1/traces and
	// /v1/metrics are appended) or http://127.0.0.1:4317 with
	// OTEL_EXPORTER_OTLP_PROTOCOL=grpc. It overrides
	// OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT.
	// An http:// scheme means no TLS.
	OTLPEndpoint string
	// SampleRate below 0 defers to OTEL_TRACES_SAMPLER and
	// OTEL_TRACES_SAMPLER_ARG (default parentbased_always_on); from 0 to 1
	// it is ParentBased(TraceIDRatioBased(SampleRate)).
	SampleRate float64
	// MetricsOTLP pushes metrics over OTLP as well as serving them on
	// MetricsHandler. Metrics are also pushed when an OTLP endpoint is
	// configured (flag or environment) unless OTEL_METRICS_EXPORTER is
	// "none" or "prometheus".
	MetricsOTLP bool
	// MetricsInterval is the OTLP metrics push period; 0 means
	// OTEL_METRIC_EXPORT_INTERVAL or the SDK default (60s).
	MetricsInterval time.Duration
}

// DefaultConfig returns the configuration the agent starts from: service
// "meridian", exporter chosen automatically, sampling from the environment.
func DefaultConfig() Config {
	return Config{ServiceName: "", TraceExporter: ExporterAuto, SampleRate: -1}
}

// Validate reports the first invalid field, naming it.
func (c Config) Validate() error {
	switch c.TraceExporter {
	case ExporterAuto, ExporterOTLP, ExporterFile, ExporterNone:
	default:
		return fmt.Errorf("trace-exporter: %q is not otlp, file or none", c.TraceExporter)
	}
	if c.TraceExporter == ExporterFile && c.TraceFile == "" {
		return errors.New("trace-file: the file trace exporter needs a file name")
	}
	if c.SampleRate > 1 {
		return fmt.Errorf("trace-sample-rate: %v is above 1 (use a fraction from 0 to 1, or a negative value for OTEL_TRACES_SAMPLER)", c.SampleRate)
	}
	if c.OTLPEndpoint != "" {
		if _, err := parseEndpoint(c.OTLPEndpoint); err != nil {
			return fmt.Errorf("otlp-endpoint: %w", err)
		}
	}
	if c.MetricsInterval < 0 {
		return fmt.Errorf("metrics-interval: %v is negative", c.MetricsInterval)
	}
	return nil
}

// Telemetry is what Setup built. Its providers are also installed as the
// OpenTelemetry globals.
type Telemetry struct {
	// TracerProvider is an SDK provider, or a no-op one when traces are off.
	TracerProvider trace.TracerProvider
	// MeterProvider is an SDK provider with a Prometheus reader on Registry
	// and, when configured, an OTLP periodic reader.
	MeterProvider metric.MeterProvider
	// Producers are read by both readers with the SDK's instruments: a
	// component adds the metrics it aggregates itself (the gateway's
	// histograms) there.
	Producers *Producers
	// Propagator is W3C tracecontext + baggage.
	Propagator propagation.TextMapPropagator
	// MetricsHandler serves Registry in the Prometheus text format.
	MetricsHandler http.Handler
	// Registry holds the OpenTelemetry metrics (plus Go runtime and process
	// collectors); gather it together with other registries if needed.
	Registry *prometheus.Registry
	// TraceExporter is the exporter Setup chose: "otlp", "file" or "none".
	TraceExporter string
	// Shutdown flushes pending spans and metrics and closes exporters and
	// the trace file. It is safe to call more than once; later calls return
	// the first call's error.
	Shutdown func(context.Context) error
}

// Setup builds tracing and metrics from cfg and installs them as the
// OpenTelemetry globals (tracer provider, meter provider, propagator).
// Call Shutdown before the process exits, or the last spans are lost.
func Setup(ctx context.Context, cfg Config) (*Telemetry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	res, err := liveResource(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("observability: building the resource: %w", err)
	}

	var closers []func(context.Context) error
	fail := func(err error) (*Telemetry, error) {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i](ctx)
		}
		return nil, err
	}

	exporterName := chooseTraceExporter(cfg)
	var tp trace.TracerProvider = noop.NewTracerProvider()
	if exporterName != ExporterNone {
		exp, err := newTraceExporter(ctx, cfg, exporterName)
		if err != nil {
			return fail(err)
		}
		opts := []sdktrace.TracerProviderOption{
			sdktrace.WithResource(res),
			sdktrace.WithBatcher(exp),
		}
		if cfg.SampleRate >= 0 {
			opts = append(opts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRate))))
		}
		sdkTP := sdktrace.NewTracerProvider(opts...)
		closers = append(closers, sdkTP.Shutdown)
		tp = sdkTP
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := registerBuildInfo(reg); err != nil {
		return fail(fmt.Errorf("observability: build info metric: %w", err))
	}
	producers := &Producers{}
	promReader, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithProducer(producers))
	if err != nil {
		return fail(fmt.Errorf("observability: prometheus metrics reader: %w", err))
	}
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(promReader)}
	if pushMetrics(cfg) {
		mexp, err := newMetricExporter(ctx, cfg)
		if err != nil {
			return fail(err)
		}
		var ropts []sdkmetric.PeriodicReaderOption
		if mexp.Temporality(sdkmetric.InstrumentKindHistogram) == metricdata.CumulativeTemporality {
			ropts = append(ropts, sdkmetric.WithProducer(producers))
		} else {
			// Producers export cumulative data whatever the reader
			// asks (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=
			// delta or lowmemory): then no producers at all, and
			// components record into the SDK's own instruments, which
			// honour the exporter's temporality on both readers.
			producers = nil
		}
		if cfg.MetricsInterval > 0 {
			ropts = append(ropts, sdkmetric.WithInterval(cfg.MetricsInterval))
		}
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, ropts...)))
	}
	mp := sdkmetric.NewMeterProvider(mopts...)
	closers = append(closers, mp.Shutdown)

	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	otel.SetTextMapPropagator(prop)

	var once sync.Once
	var shutdownErr error
	shutdown := func(ctx context.Context) error {
		once.Do(func() {
			var errs []error
			// Traces first: span processors may record metrics.
			for _, c := range closers {
				if err := c(ctx); err != nil {
					errs = append(errs, err)
				}
			}
			if len(errs) > 0 {
				shutdownErr = fmt.Errorf("observability: shutdown: %w", errors.Join(errs...))
			}
		})
		return shutdownErr
	}
	return &Telemetry{
		TracerProvider: tp,
		MeterProvider:  mp,
		Producers:      producers,
		Propagator:     prop,
		MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Registry:       reg,
		TraceExporter:  exporterName,
		Shutdown:       shutdown,
	}, nil
}

// liveResource describes a running process: the environment
// (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME), host and SDK, then the
// Config fields, which win.
func liveResource(ctx context.Context, cfg Config) (*resource.Resource, error) {
	envRes, err := resource.New(ctx, resource.WithFromEnv())
	if err != nil {
		return nil, err
	}
	name := cfg.ServiceName
	if name == "" {
		if v, ok := envRes.Set().Value(semconv.ServiceNameKey); ok && v.AsString() != "" {
			name = v.AsString()
		} else {
			name = DefaultServiceName
		}
	}
	attrs := []attribute.KeyValue{semconv.ServiceName(name)}
	if cfg.Region != "" {
		attrs = append(attrs, AttrRegion.String(cfg.Region), semconv.CloudRegion(cfg.Region))
	}
	if cfg.NodeName != "" {
		attrs = append(attrs, AttrNode.String(cfg.NodeName), semconv.ServiceInstanceID(cfg.NodeName))
	}
	return resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
		resource.WithFromEnv(),
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(attrs...),
	)
}

// otlpEndpointFromEnv reports whether the environment names an OTLP
// receiver for signal ("TRACES" or "METRICS").
func otlpEndpointFromEnv(signal string) bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" ||
		os.Getenv("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT") != ""
}

func chooseTraceExporter(cfg Config) string {
	if cfg.TraceExporter != ExporterAuto {
		return cfg.TraceExporter
	}
	switch {
	case cfg.OTLPEndpoint != "" || otlpEndpointFromEnv("TRACES"):
		return ExporterOTLP
	case cfg.TraceFile != "":
		return ExporterFile
	}
	return ExporterNone
}

func pushMetrics(cfg Config) bool {
	if cfg.MetricsOTLP {
		return true
	}
	switch strings.TrimSpace(strings.ToLower(os.Getenv("OTEL_METRICS_EXPORTER"))) {
	case "none", "prometheus":
		return false
	}
	return cfg.OTLPEndpoint != "" || otlpEndpointFromEnv("METRICS")
}

// otlpProtocol returns "grpc" or "http/protobuf" (or "http/json") for a
// signal, from OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL or
// OTEL_EXPORTER_OTLP_PROTOCOL.
func otlpProtocol(signal string) (string, error) {
	p := os.Getenv("OTEL_EXPORTER_OTLP_" + signal + "_PROTOCOL")
	if p == "" {
		p = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch p = strings.ToLower(strings.TrimSpace(p)); p {
	case "", "http/protobuf":
		return "http/protobuf", nil
	case "grpc", "http/json":
		return p, nil
	}
	return "", fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: %q is not grpc, http/protobuf or http/json", p)
}

func newTraceExporter(ctx context.Context, cfg Config, name string) (sdktrace.SpanExporter, error) {
	switch name {
	case ExporterFile:
		w, err := openTraceFile(cfg.TraceFile)
		if err != nil {
			return nil, err
		}
		return NewFileExporter(w), nil
	case ExporterOTLP:
		exp, err := newOTLPTraceExporter(ctx, cfg.OTLPEndpoint)
		if err != nil {
			return nil, fmt.Errorf("observability: otlp trace exporter: %w", err)
		}
		return exp, nil
	}
	return nil, fmt.Errorf("trace-exporter: %q is not otlp, file or none", name)
}

// newOTLPTraceExporter builds an OTLP trace exporter; endpoint (a base URL)
// overrides the environment when set.
func newOTLPTraceExporter(ctx context.Context, endpoint string) (*otlptrace.Exporter, error) {
	proto, err := otlpProtocol("TRACES")
	if err != nil {
		return nil, err
	}
	var ep *endpointURL
	if endpoint != "" {
		if ep, err = parseEndpoint(endpoint); err != nil {
			return nil, err
		}
	}
	if proto == "grpc" {
		var opts []otlptracegrpc.Option
		if ep != nil {
			opts = append(opts, otlptracegrpc.WithEndpoint(ep.host))
			if ep.insecure {
				opts = append(opts, otlptracegrpc.WithInsecure())
			}
		}
		return otlptracegrpc.New(ctx, opts...)
	}
	var opts []otlptracehttp.Option
	if proto == "http/json" {
		opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
	}
	if ep != nil {
		opts = append(opts, otlptracehttp.WithEndpointURL(ep.signalURL("/v1/traces")))
	}
	return otlptracehttp.New(ctx, opts...)
}

func newMetricExporter(ctx context.Context, cfg Config) (sdkmetric.Exporter, error) {
	proto, err := otlpProtocol("METRICS")
	if err != nil {
		return nil, err
	}
	var ep *endpointURL
	if cfg.OTLPEndpoint != "" {
		if ep, err = parseEndpoint(cfg.OTLPEndpoint); err != nil {
			return nil, fmt.Errorf("otlp-endpoint: %w", err)
		}
	}
	var exp sdkmetric.Exporter
	if proto == "grpc" {
		var opts []otlpmetricgrpc.Option
		if ep != nil {
			opts = append(opts, otlpmetricgrpc.WithEndpoint(ep.host))
			if ep.insecure {
				opts = append(opts, otlpmetricgrpc.WithInsecure())
			}
		}
		exp, err = otlpmetricgrpc.New(ctx, opts...)
	} else {
		var opts []otlpmetrichttp.Option
		if ep != nil {
			opts = append(opts, otlpmetrichttp.WithEndpointURL(ep.signalURL("/v1/metrics")))
		}
		exp, err = otlpmetrichttp.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("observability: otlp metric exporter: %w", err)
	}
	return exp, nil
}

// SetErrorHandler routes OpenTelemetry's internal errors (failed exports,
// for instance) to logger at WARN instead of the SDK's default stderr logger.
func SetErrorHandler(logger *slog.Logger) {
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("opentelemetry", "err", err)
	}))
}
