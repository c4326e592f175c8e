package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/meridian-sd/meridian/gateway"
	"github.com/meridian-sd/meridian/observability"
)

// jaegerEnv returns the OTLP/HTTP base URL and query API base URL of the
// Jaeger that make e2e-jaeger started, or skips the test.
func jaegerEnv(t *testing.T) (otlp, query string) {
	t.Helper()
	if os.Getenv("MERIDIAN_E2E_JAEGER") != "1" {
		t.Skip("opt-in: run `make e2e-jaeger` (or set MERIDIAN_E2E_JAEGER=1, MERIDIAN_JAEGER_OTLP_HTTP and MERIDIAN_JAEGER_QUERY for a running Jaeger)")
	}
	otlp, query = os.Getenv("MERIDIAN_JAEGER_OTLP_HTTP"), os.Getenv("MERIDIAN_JAEGER_QUERY")
	if otlp == "" || query == "" {
		t.Fatal("MERIDIAN_E2E_JAEGER=1 needs MERIDIAN_JAEGER_OTLP_HTTP (e.g. http://127.0.0.1:4318) and MERIDIAN_JAEGER_QUERY (e.g. http://127.0.0.1:16686)")
	}
	for _, u := range []string{otlp, query} {
		if p, err := url.Parse(u); err != nil || p.Hostname() != "127.0.0.1" {
			t.Fatalf("%q: the Jaeger endpoints must be http://127.0.0.1:PORT URLs", u)
		}
	}
	return otlp, query
}

// The /api/v3 responses: OTLP JSON with hex ids, wrapped in "result".
type (
	v3Services struct {
		Services []string `json:"services"`
	}
	v3Traces struct {
		Result struct {
			ResourceSpans []struct {
				Resource struct {
					Attributes []v3KeyValue `json:"attributes"`
				} `json:"resource"`
				ScopeSpans []struct {
					Spans []v3Span `json:"spans"`
				} `json:"scopeSpans"`
			} `json:"resourceSpans"`
		} `json:"result"`
	}
	v3KeyValue struct {
		Key   string `json:"key"`
		Value struct {
			StringValue string `json:"stringValue"`
		} `json:"value"`
	}
	v3Span struct {
		TraceID      string `json:"traceId"`
		SpanID       string `json:"spanId"`
		ParentSpanID string `json:"parentSpanId"`
		Name         string `json:"name"`
		Start        string `json:"startTimeUnixNano"`
		End          string `json:"endTimeUnixNano"`
		service      string
	}
)

// spans flattens a response, noting each span's service.name.
func (r v3Traces) spans() []v3Span {
	var out []v3Span
	for _, rs := range r.Result.ResourceSpans {
		svc := ""
		for _, kv := range rs.Resource.Attributes {
			if kv.Key == "service.name" {
				svc = kv.Value.StringValue
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				s.service = svc
				out = append(out, s)
			}
		}
	}
	return out
}

func getJSON(t *testing.T, u string, v any) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("GET %s: HTTP %d: %.500s", u, resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: decoding: %w: %.500s", u, err, raw)
	}
	return resp.StatusCode, nil
}

// tracesURL is the /api/v3/traces search for a service's traces that
// started within [from, to].
func tracesURL(query, service string, from, to time.Time) string {
	q := url.Values{}
	q.Set("query.service_name", service)
	q.Set("query.start_time_min", from.UTC().Format(time.RFC3339Nano))
	q.Set("query.start_time_max", to.UTC().Format(time.RFC3339Nano))
	q.Set("query.num_traces", "1000")
	return query + "/api/v3/traces?" + q.Encode()
}

// waitForTraces polls Jaeger (it stores spans asynchronously) until the
// services are listed and ok accepts a service's traces; bounded by 30s.
func waitForTraces(t *testing.T, query string, from, to time.Time, services []string, ok func(service string, spans []v3Span) error) map[string][]v3Span {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("Jaeger never showed the expected traces: %v", last)
			}
			time.Sleep(250 * time.Millisecond)
		}
		var svcs v3Services
		if _, err := getJSON(t, query+"/api/v3/services", &svcs); err != nil {
			last = err
			continue
		}
		missing := ""
		for _, s := range services {
			if !slices.Contains(svcs.Services, s) {
				missing = s
				break
			}
		}
		if missing != "" {
			last = fmt.Errorf("service %q not in /api/v3/services %v", missing, svcs.Services)
			continue
		}
		got := map[string][]v3Span{}
		last = nil
		for _, s := range services {
			var tr v3Traces
			if code, err := getJSON(t, tracesURL(query, s, from, to), &tr); err != nil {
				if code == http.StatusNotFound {
					err = fmt.Errorf("no traces yet for %s in [%s, %s]: %w", s, from, to, err)
				}
				last = err
				break
			}
			if err := ok(s, tr.spans()); err != nil {
				last = fmt.Errorf("service %s: %w", s, err)
				break
			}
			got[s] = tr.spans()
		}
		if last == nil {
			return got
		}
	}
}

// linked checks that some span has a parent, and every parent a span
// names is in the same response, within the same trace.
func linked(spans []v3Span) error {
	byID := map[string]v3Span{}
	for _, s := range spans {
		byID[s.TraceID+"/"+s.SpanID] = s
	}
	children := 0
	for _, s := range spans {
		if s.ParentSpanID == "" {
			continue
		}
		children++
		if _, ok := byID[s.TraceID+"/"+s.ParentSpanID]; !ok {
			return fmt.Errorf("span %s (%s) names parent %s, which is not in its trace %s", s.Name, s.SpanID, s.ParentSpanID, s.TraceID)
		}
	}
	if children == 0 {
		return fmt.Errorf("none of %d spans has a parent", len(spans))
	}
	return nil
}

func TestJaegerLiveGateway(t *testing.T) {
	otlpURL, query := jaegerEnv(t)
	from := time.Now().Add(-time.Minute)
	service := "meridian-e2e-us-east"

	tel, err := observability.Setup(context.Background(), observability.Config{
		ServiceName: service, Region: "us-east", NodeName: "us-east-gw1",
		TraceExporter: "otlp", OTLPEndpoint: otlpURL, SampleRate: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })

	a, err := gateway.StartAgent(gateway.AgentConfig{
		Region: "us-east", HTTPAddr: "127.0.0.1:0", NodeName: "us-east-gw1", CatchUp: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Telemetry: gateway.Telemetry{TracerProvider: tel.TracerProvider, MeterProvider: tel.MeterProvider,
			Propagator: tel.Propagator, MetricsHandler: tel.MetricsHandler},
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("gateway shutdown: %v", err)
		}
	}
	t.Cleanup(stop)
	for i := 0; !a.Cache.Freshness().Loaded; i++ {
		if i > 500 {
			t.Fatal("gateway cache did not load in 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The test is the gateway's caller: its client spans carry a
	// traceparent, so the gateway's server spans must be their children.
	client := &http.Client{Timeout: 10 * time.Second, Transport: otelhttp.NewTransport(http.DefaultTransport,
		otelhttp.WithTracerProvider(tel.TracerProvider), otelhttp.WithPropagators(tel.Propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "e2e " + r.Method + " " + r.URL.Path }))}
	do := func(method, path, body string) string {
		req, err := http.NewRequest(method, a.URL()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, raw)
		}
		return string(raw)
	}
	do("PUT", "/v1/services/web/instances/web-1", `{"address":"10.0.0.5","port":8080}`)
	for i := 0; !strings.Contains(do("GET", "/v1/lookup/web", ""), "web-1"); i++ {
		if i > 100 {
			t.Fatal("lookup never returned the registered instance")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	// Shutdown flushes spans and metrics; Jaeger's config accepts (and
	// drops) OTLP metrics, so this must succeed.
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatalf("telemetry shutdown: %v", err)
	}
	to := time.Now().Add(time.Minute)

	got := waitForTraces(t, query, from, to, []string{service}, func(_ string, spans []v3Span) error {
		var lookup *v3Span
		for i := range spans {
			if spans[i].Name == "GET /v1/lookup/{service}" {
				lookup = &spans[i]
			}
		}
		if lookup == nil {
			names := map[string]bool{}
			for _, s := range spans {
				names[s.Name] = true
			}
			return fmt.Errorf("no GET /v1/lookup/{service} span among %v", names)
		}
		if lookup.ParentSpanID == "" {
			return fmt.Errorf("the gateway's lookup span has no parent; want the test's client span")
		}
		return linked(spans)
	})
	spans := got[service]
	byID := map[string]v3Span{}
	for _, s := range spans {
		byID[s.SpanID] = s
	}
	for _, s := range spans {
		if s.Name == "GET /v1/lookup/{service}" {
			p := byID[s.ParentSpanID]
			if !strings.HasPrefix(p.Name, "e2e GET /v1/lookup/web") {
				t.Errorf("lookup span's parent is %q, want the test's client span", p.Name)
			}
		}
	}
	names := map[string]int{}
	for _, s := range spans {
		names[s.Name]++
	}
	t.Logf("Jaeger holds %d spans of %s: %v", len(spans), service, names)
}
