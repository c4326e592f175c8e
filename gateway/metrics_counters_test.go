package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// metricLines returns the lines of a Prometheus text exposition that
// belong to the named metric families (HELP, TYPE and samples), sorted.
func metricLines(body string, families ...string) []string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		for _, f := range families {
			if strings.HasPrefix(l, "# HELP "+f+" ") || strings.HasPrefix(l, "# TYPE "+f+" ") ||
				strings.HasPrefix(l, f+"{") || strings.HasPrefix(l, f+" ") {
				out = append(out, l)
			}
		}
	}
	slices.Sort(out)
	return out
}

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: HTTP %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// The request and lookup counters, counted in atomics and exported through
// observable counters, read on /metrics exactly as the synchronous
// OpenTelemetry counters they replace would: same HELP, TYPE, labels and
// values. The reference is an SDK meter provider with synchronous counters
// of the same names, given the measurements the requests should make.
func TestCountersExportAsSynchronousCounters(t *testing.T) {
	g := newLookupGateway(t, 3)
	type req struct {
		method, target string
		code           int
		route          string
		api, result    string // "" when the request counts no lookup
	}
	reqs := []req{
		{"GET", "/v1/lookup/web", 200, "lookup", "lookup", "ok"},
		{"GET", "/v1/lookup/web", 200, "lookup", "lookup", "ok"},
		{"GET", "/v1/lookup/web?limit=-1", 400, "lookup", "lookup", "error"},
		{"POST", "/v1/lookup/web", 405, "lookup", "", ""},
		{"GET", "/v1/services/web", 200, "service", "service", "ok"},
		{"GET", "/v1/services/web?passing=true", 200, "service", "service", "ok"},
		{"GET", "/v1/services/nosuch", 200, "service", "service", "empty"},
		{"GET", "/v1/pick/web", 200, "pick", "pick", "ok"},
		{"GET", "/v1/services/web", 200, "service", "service", "ok"},
	}
	// Concurrently, as a server would: the series are shared.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for _, q := range reqs {
				rec := httptest.NewRecorder()
				g.h.ServeHTTP(rec, httptest.NewRequest(q.method, q.target, nil))
				if rec.Code != q.code {
					t.Errorf("%s %s: HTTP %d, want %d; %s", q.method, q.target, rec.Code, q.code, rec.Body)
				}
			}
		})
	}
	wg.Wait()

	m, reg := referenceMeter(t)
	requests, _ := m.Int64Counter("meridian.http.requests", metric.WithUnit("{request}"),
		metric.WithDescription("HTTP requests by route, method and status code."))
	lookups, _ := m.Int64Counter("meridian.lookups", metric.WithUnit("{lookup}"),
		metric.WithDescription("Lookups by API (lookup, pick, proxy, service), result (ok, empty, error) and whether traffic left the region (failover)."))
	ctx := context.Background()
	rg := attribute.String("region", "us-east")
	for range 4 {
		for _, q := range reqs {
			requests.Add(ctx, 1, metric.WithAttributes(rg, attribute.String("route", q.route),
				attribute.String("method", q.method), attribute.String("code", strconv.Itoa(q.code))))
			if q.api != "" {
				lookups.Add(ctx, 1, metric.WithAttributes(rg, attribute.String("api", q.api),
					attribute.String("result", q.result), attribute.Bool("failover", false)))
			}
		}
	}

	families := []string{"meridian_http_requests_total", "meridian_lookups_total"}
	got := metricLines(scrape(t, g.h), families...)
	want := metricLines(scrape(t, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})), families...)
	if len(want) < 8 {
		t.Fatalf("the reference exposition has only %d lines: %q", len(want), want)
	}
	if !slices.Equal(got, want) {
		t.Errorf("/metrics:\n%s\nthe synchronous counters would read:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// referenceMeter returns a meter of the SDK's own synchronous instruments
// exported to a Prometheus registry, as the gateway's would be: what the
// gateway's atomics must read the same as.
func referenceMeter(t *testing.T) (metric.Meter, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	return mp.Meter(instrumentationName), reg
}

// A request's counters cost no allocation once its series exist, and the
// lookup and request latencies still reach their histograms.
func TestCountersNoAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts vary under the race detector")
	}
	v := newCounterVec(sdkmetric.NewMeterProvider().Meter("t"), "c")
	rc := &routeCounter{vec: v, region: attribute.String("region", "r"), route: "lookup"}
	lc := newLookupCounters(v, attribute.String("region", "r"))
	rc.add("GET", 200)
	lc.add("lookup", "ok", true)
	if n := testing.AllocsPerRun(1000, func() {
		rc.add("GET", 200)
		lc.add("lookup", "ok", true)
	}); n != 0 {
		t.Errorf("counting a request and a lookup: %v allocations, want 0", n)
	}
	if got := rc.last.Load().s.n.Load(); got != 1002 {
		t.Errorf("GET 200 counted %d times, want 1002", got)
	}
	// A different code or method finds (or makes) its own series.
	rc.add("GET", 404)
	rc.add("GET", 200)
	if got := v.get(optKey{a: "request", b: "lookup", c: "GET", n: 404}).n.Load(); got != 1 {
		t.Errorf("GET 404 counted %d times, want 1", got)
	}
	if got := v.get(optKey{a: "request", b: "lookup", c: "GET", n: 200}).n.Load(); got != 1003 {
		t.Errorf("GET 200 counted %d times, want 1003", got)
	}
}
