package gateway

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/meridian-sd/meridian/observability"
	"github.com/meridian-sd/meridian/region"
)

// histSamples are the values the histogram tests record: every bound of
// both histograms exactly (bounds are inclusive above), values between,
// below the first and above the last bound, and zero.
func histSamples() []float64 {
	var xs []float64
	for _, bs := range [][]float64{latencyBuckets, lookupLatencyBuckets} {
		for i, b := range bs {
			xs = append(xs, b, b*1.5, b*0.999)
			if i == len(bs)-1 {
				xs = append(xs, b*3)
			}
		}
	}
	return append(xs, 0, 1e-9, 0.000123, 0.0421)
}

// The request and lookup latency histograms, counted in atomics and
// exported through the gateway's producer, read on /metrics exactly as
// the synchronous OpenTelemetry histograms they replace would: same HELP,
// TYPE, labels, buckets, sum and count. The reference is an SDK meter
// provider with synchronous histograms of the same names, descriptions
// and bounds, given the same measurements.
func TestHistogramsExportAsSynchronousHistograms(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	store := region.NewMemStore(0)
	cache := region.NewCache(store, region.CacheOptions{Logger: log, Now: func() time.Time { return benchNow }})
	if err := cache.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := New(Config{Region: "us-east", Store: store, Cache: cache, Logger: log})
	if s.tel.Producers == nil || s.metrics.latency.sdk != nil {
		t.Fatal("the gateway's default telemetry does not record its histograms in atomics")
	}

	m, reg := referenceMeter(t)
	latency, _ := m.Float64Histogram("meridian.http.request.duration", metric.WithUnit("s"),
		metric.WithDescription("HTTP request latency by route (blocking queries included)."),
		metric.WithExplicitBucketBoundaries(latencyBuckets...))
	lookups, _ := m.Float64Histogram("meridian.lookup.duration", metric.WithUnit("s"),
		metric.WithDescription("Time to answer a lookup, after any blocking wait (proxy: the routing decision only)."),
		metric.WithExplicitBucketBoundaries(lookupLatencyBuckets...))

	ctx := context.Background()
	rg := attribute.String("region", "us-east")
	gm := s.metrics
	route := gm.latency.get(optKey{a: "request-latency", b: "synthetic"}, rg, attribute.String("route", "synthetic"))
	for _, x := range histSamples() {
		route.record(ctx, x)
		latency.Record(ctx, x, metric.WithAttributes(rg, attribute.String("route", "synthetic")))
		// A known API (its series found by index) and an unknown one
		// (through the vector's map).
		for _, api := range []string{"pick", "synthetic"} {
			d := time.Duration(x * 1e9)
			gm.lookup(ctx, api, "ok", false, d)
			lookups.Record(ctx, d.Seconds(), metric.WithAttributes(rg, attribute.String("api", api)))
		}
	}

	// Only the synthetic series: the gateway itself measures nothing
	// else here, but keep the comparison to what the test recorded.
	only := func(lines []string) []string {
		return slices.DeleteFunc(lines, func(l string) bool {
			return !strings.HasPrefix(l, "#") && !strings.Contains(l, `="synthetic"`) && !strings.Contains(l, `api="pick"`)
		})
	}
	families := []string{"meridian_http_request_duration_seconds_bucket", "meridian_http_request_duration_seconds_sum",
		"meridian_http_request_duration_seconds_count", "meridian_http_request_duration_seconds",
		"meridian_lookup_duration_seconds_bucket", "meridian_lookup_duration_seconds_sum",
		"meridian_lookup_duration_seconds_count", "meridian_lookup_duration_seconds"}
	got := only(metricLines(scrape(t, s.Handler()), families...))
	want := only(metricLines(scrape(t, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})), families...))
	if len(want) < 4+len(latencyBuckets)+2*len(lookupLatencyBuckets) {
		t.Fatalf("the reference exposition has only %d lines: %q", len(want), want)
	}
	if !slices.Equal(got, want) {
		t.Errorf("/metrics:\n%s\nthe synchronous histograms would read:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Through a reader as OTLP would export them, the atomic histograms are
// the SDK's cumulative histograms: same data points with the same counts,
// buckets, sum, min and max (times and exemplars aside), also when
// recorded from many goroutines, and two gateways' vectors of the same
// name added to one Producers read as one histogram.
func TestHistogramsCollectAsSynchronousHistograms(t *testing.T) {
	ctx := context.Background()
	producers := &observability.Producers{}
	reader := sdkmetric.NewManualReader(sdkmetric.WithProducer(producers))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)
	refReader := sdkmetric.NewManualReader()
	ref := sdkmetric.NewMeterProvider(sdkmetric.WithReader(refReader))
	defer ref.Shutdown(ctx)

	const name, desc = "meridian.http.request.duration", "HTTP request latency by route (blocking queries included)."
	// Two gateways (regions) of one process: two vectors, one producer.
	vecs := []*histVec{
		newHistVec(mp.Meter(instrumentationName), producers, name, "s", desc, latencyBuckets),
		newHistVec(mp.Meter(instrumentationName), producers, name, "s", desc, latencyBuckets),
	}
	h, _ := ref.Meter(instrumentationName).Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
		metric.WithExplicitBucketBoundaries(latencyBuckets...))

	xs := histSamples()
	// Integral values in 1/1024ths, so the sum does not depend on the order
	// the goroutines add in.
	for i := range xs {
		xs[i] = math.Round(xs[i]*1024) / 1024
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i, x := range xs {
				v := vecs[(g+i)%2]
				rg := attribute.String("region", []string{"us-east", "eu-west"}[(g+i)%2])
				v.get(optKey{a: "request-latency", b: "service"}, rg, attribute.String("route", "service")).record(ctx, x)
				h.Record(ctx, x, metric.WithAttributes(rg, attribute.String("route", "service")))
			}
		})
	}
	wg.Wait()

	var got, want metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if err := refReader.Collect(ctx, &want); err != nil {
		t.Fatal(err)
	}
	if len(got.ScopeMetrics) != 1 || len(want.ScopeMetrics) != 1 {
		t.Fatalf("got %d scopes, want 1; the reference has %d", len(got.ScopeMetrics), len(want.ScopeMetrics))
	}
	if n := len(want.ScopeMetrics[0].Metrics[0].Data.(metricdata.Histogram[float64]).DataPoints); n != 2 {
		t.Fatalf("the reference has %d series, want 2", n)
	}
	metricdatatest.AssertEqual(t, want.ScopeMetrics[0], got.ScopeMetrics[0],
		metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// A measurement in the atomic histograms allocates nothing.
func TestHistogramRecordDoesNotAllocate(t *testing.T) {
	s := New(Config{Region: "us-east", Logger: slog.New(slog.DiscardHandler)})
	series := s.metrics.latency.get(optKey{a: "request-latency", b: "x"}, s.metrics.region, attribute.String("route", "x"))
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { series.record(ctx, 0.0003) }); n != 0 {
		t.Errorf("record allocates %v times, want 0", n)
	}
}

// BenchmarkLatencyRecord compares one latency measurement in the atomic
// histogram with the SDK's synchronous Record of the same series.
func BenchmarkLatencyRecord(b *testing.B) {
	ctx := context.Background()
	for _, atomic := range []bool{true, false} {
		name := "sdk"
		var producers *observability.Producers
		if atomic {
			name, producers = "atomic", &observability.Producers{}
		}
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader(sdkmetric.WithProducer(&observability.Producers{}))))
		v := newHistVec(mp.Meter(instrumentationName), producers, "meridian.http.request.duration", "s", "d", latencyBuckets)
		s := v.get(optKey{a: "r"}, attribute.String("region", "us-east"), attribute.String("route", "service"))
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					s.record(ctx, 0.00042)
				}
			})
		})
		mp.Shutdown(ctx)
	}
}
