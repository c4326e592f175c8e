package gateway

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-sd/meridian/failover"
	"github.com/meridian-sd/meridian/observability"
	"github.com/meridian-sd/meridian/region"
)

// instrumentationName names the gateway's tracer and meter.
const instrumentationName = "github.com/meridian-sd/meridian/gateway"

// Telemetry says where a gateway's spans and metrics go. The zero value
// traces to the OpenTelemetry globals and keeps metrics in a registry of
// the gateway's own, served on /metrics.
type Telemetry struct {
	// TracerProvider: nil means otel.GetTracerProvider() (a no-op until
	// observability.Setup or otel.SetTracerProvider installs one).
	TracerProvider trace.TracerProvider
	// Propagator carries trace context to backends (/v1/proxy), to other
	// gateways (syncs, forwarded heartbeats) and from callers. nil means
	// otel.GetTextMapPropagator().
	Propagator propagation.TextMapPropagator
	// MeterProvider receives the gateway's metrics; MetricsHandler serves
	// them on /metrics. When both are nil the gateway makes a meter
	// provider with a Prometheus reader on a registry of its own (with the
	// Go and process collectors) and serves that. A MeterProvider without
	// a MetricsHandler leaves /metrics unserved (404).
	MeterProvider  metric.MeterProvider
	MetricsHandler http.Handler
	// Producers, when set, is a producer the MeterProvider's readers read
	// (observability.Setup's): the gateway records its latency histograms
	// in atomics and adds them there (metrics_histograms.go). Without it
	// they are the MeterProvider's synchronous histograms.
	Producers *observability.Producers
}

// resolve fills the defaults.
func (t Telemetry) resolve() (Telemetry, error) {
	if t.TracerProvider == nil {
		t.TracerProvider = otel.GetTracerProvider()
	}
	if t.Propagator == nil {
		t.Propagator = otel.GetTextMapPropagator()
	}
	if t.MeterProvider == nil && t.MetricsHandler == nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		t.Producers = &observability.Producers{}
		exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo(),
			otelprom.WithProducer(t.Producers))
		if err != nil {
			return t, fmt.Errorf("metrics: building the Prometheus reader: %w", err)
		}
		t.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
		t.MetricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	}
	if t.MeterProvider == nil {
		t.MeterProvider = otel.GetMeterProvider()
	}
	return t, nil
}

// Span attributes of the gateway's own spans. The routing decision goes on
// the server span of /v1/lookup, /v1/pick and /v1/proxy.
const (
	attrRegion           = attribute.Key("meridian.region")
	attrNode             = attribute.Key("meridian.node")
	attrService          = attribute.Key("meridian.service")
	attrPolicy           = attribute.Key("meridian.route.policy")
	attrZone             = attribute.Key("meridian.route.zone")
	attrLocalHealthy     = attribute.Key("meridian.route.local_healthy_share")
	attrLocalShare       = attribute.Key("meridian.route.local_share")
	attrSpillShare       = attribute.Key("meridian.route.spill_share")
	attrShares           = attribute.Key("meridian.route.shares")
	attrShareRegions     = attribute.Key("meridian.route.share_regions")
	attrShareValues      = attribute.Key("meridian.route.share_values")
	attrRegionsConsulted = attribute.Key("meridian.route.regions_consulted")
	attrStaleRegions     = attribute.Key("meridian.route.stale_regions")
	attrFailover         = attribute.Key("meridian.route.failover")
	attrPanic            = attribute.Key("meridian.route.panic")
	attrEndpoints        = attribute.Key("meridian.route.endpoints")
	attrExplanation      = attribute.Key("meridian.route.explanation")
)

// routeAttributes describes a routing decision for a span.
//
//	meridian.route.policy               local | ordered | nearest
//	meridian.route.local_healthy_share  healthy/total of the caller's region's matching instances (-1: none)
//	meridian.route.local_share          the share of traffic kept in the caller's region
//	meridian.route.spill_share          the share sent to other regions
//	meridian.route.shares               "eu-west=0.3,us-east=0.7"; also as share_regions/share_values
//	meridian.route.regions_consulted    the regions the router looked at
//	meridian.route.stale_regions        those whose data was stale
//	meridian.route.failover, .panic     the decision's flags
//	meridian.route.endpoints            how many endpoints were returned
func routeAttributes(views []failover.RegionView, req failover.Request, d failover.Decision) []attribute.KeyValue {
	consulted := make([]string, len(views))
	for i, v := range views {
		consulted[i] = v.Name
	}
	healthy := -1.0
	if len(views) > 0 {
		total, ok := 0, 0
		for i := range views[0].Instances {
			in := &views[0].Instances[i]
			if !hasTags(in.Tags, req.Tags) {
				continue
			}
			total++
			if in.Status == region.StatusPassing || in.Status == region.StatusWarning {
				ok++
			}
		}
		if total > 0 {
			healthy = float64(ok) / float64(total)
		}
	}
	names := make([]string, 0, len(d.Shares))
	for n := range d.Shares {
		names = append(names, n)
	}
	slices.Sort(names)
	values := make([]float64, len(names))
	var b strings.Builder
	for i, n := range names {
		values[i] = d.Shares[n]
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteByte('=')
		b.WriteString(strconv.FormatFloat(values[i], 'g', 6, 64))
	}
	local := d.Shares[req.FromRegion]
	spill := 0.0
	if len(d.Endpoints) > 0 {
		spill = max(1-local, 0)
	}
	stale := d.StaleRegions
	if stale == nil {
		stale = []string{}
	}
	return []attribute.KeyValue{
		attrService.String(req.Service),
		attrPolicy.String(string(req.Policy.Mode)),
		attrZone.String(req.FromZone),
		attrLocalHealthy.Float64(healthy),
		attrLocalShare.Float64(local),
		attrSpillShare.Float64(spill),
		attrShares.String(b.String()),
		attrShareRegions.StringSlice(names),
		attrShareValues.Float64Slice(values),
		attrRegionsConsulted.StringSlice(consulted),
		attrStaleRegions.StringSlice(stale),
		attrFailover.Bool(d.Failover),
		attrPanic.Bool(d.Panic),
		attrEndpoints.Int(len(d.Endpoints)),
		attrExplanation.String(d.Explanation),
	}
}

func hasTags(have, want []string) bool {
	for _, t := range want {
		if !slices.Contains(have, t) {
			return false
		}
	}
	return true
}

// serverSpan starts the server span of a request to route names.pattern,
// continuing the caller's W3C trace context: named "METHOD pattern" (e.g.
// "GET /v1/lookup/{service}") and of kind server. The HTTP semantic-
// convention attributes and the gateway's region and node are set only
// when the span is recorded: as start options (which is what otelhttp's
// handler does) they would cost every request an attribute copy, sampled
// or not, about 0.4µs; see BenchmarkLookupTracing. endServerSpan finishes
// it with the response's status code.
func (s *Server) serverSpan(r *http.Request, names spanNames) (*http.Request, trace.Span) {
	if s.tracesOff && len(r.Header["Traceparent"]) == 0 {
		// Nothing would be recorded and there is no caller context to
		// carry on (to a proxied backend): skip the no-op span. (The
		// header by its canonical key, as net/http stores it: Get would
		// canonicalize "traceparent" into a new string every request.)
		return r, trace.SpanFromContext(r.Context())
	}
	ctx := s.tel.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := s.tracer.Start(ctx, names.of(r.Method), trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() {
		pattern := names.pattern
		attrs := append(s.spanAttrs[:len(s.spanAttrs):len(s.spanAttrs)],
			semconv.HTTPRequestMethodKey.String(spanMethod(r.Method)),
			semconv.HTTPRoute(pattern),
			semconv.URLPath(r.URL.Path),
			semconv.URLScheme("http"),
			semconv.NetworkProtocolVersion(strings.TrimPrefix(r.Proto, "HTTP/")),
		)
		if host, port, err := net.SplitHostPort(r.Host); err == nil {
			attrs = append(attrs, semconv.ServerAddress(host))
			if p, err := strconv.Atoi(port); err == nil {
				attrs = append(attrs, semconv.ServerPort(p))
			}
		} else if r.Host != "" {
			attrs = append(attrs, semconv.ServerAddress(r.Host))
		}
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			attrs = append(attrs, semconv.NetworkPeerAddress(host), semconv.ClientAddress(host))
		}
		if ua := r.UserAgent(); ua != "" {
			attrs = append(attrs, semconv.UserAgentOriginal(ua))
		}
		span.SetAttributes(attrs...)
	}
	return r.WithContext(ctx), span
}

func endServerSpan(span trace.Span, code int) {
	if span.IsRecording() {
		span.SetAttributes(semconv.HTTPResponseStatusCode(code))
		if code >= 500 {
			span.SetStatus(codes.Error, "")
		}
	}
	span.End()
}

// spanMethod keeps span names to the standard methods (anything else is
// "HTTP"), so a client cannot mint span names.
func spanMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "HTTP"
}

// tracedClient returns an HTTP client for gateway-to-gateway requests: a
// client span per request, its context injected into the headers.
func (s *Server) tracedClient(base http.RoundTripper, name string) *http.Client {
	return &http.Client{Transport: otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(s.tel.TracerProvider),
		otelhttp.WithPropagators(s.tel.Propagator),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(string, *http.Request) string { return name }),
		otelhttp.WithSpanOptions(trace.WithAttributes(s.spanAttrs...)),
	)}
}
