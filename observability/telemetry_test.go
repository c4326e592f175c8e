package observability

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// clearOTELEnv unsets the OTEL_* variables these tests depend on, restoring
// them when the test ends.
func clearOTELEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
		"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_METRICS_EXPORTER",
		"OTEL_BSP_SCHEDULE_DELAY", "OTEL_METRIC_EXPORT_INTERVAL",
	} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func setup(t *testing.T, cfg Config) *Telemetry {
	t.Helper()
	tel, err := Setup(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Setup(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel
}

func readFile(t *testing.T, name string) []*collectortracepb.ExportTraceServiceRequest {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	reqs, err := ReadTraceFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return reqs
}

func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		v := kv.GetValue()
		switch {
		case v.GetStringValue() != "":
			m[kv.GetKey()] = v.GetStringValue()
		default:
			m[kv.GetKey()] = strings.Trim(protojson.Format(v), " \n")
		}
	}
	return m
}

func allSpans(reqs []*collectortracepb.ExportTraceServiceRequest) []*tracepb.Span {
	var out []*tracepb.Span
	for _, req := range reqs {
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				out = append(out, ss.GetSpans()...)
			}
		}
	}
	return out
}

func TestSetupFileExporter(t *testing.T) {
	clearOTELEnv(t)
	// Only Shutdown can write the batch: the schedule delay is a minute.
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test,meridian.region=from-env")
	file := filepath.Join(t.TempDir(), "traces.json")
	tel := setup(t, Config{
		ServiceName: "meridian-test", Region: "us-east-1", NodeName: "gw-1",
		TraceExporter: "file", TraceFile: file, SampleRate: -1,
	})
	if tel.TraceExporter != ExporterFile {
		t.Fatalf("TraceExporter = %q, want file", tel.TraceExporter)
	}
	if otel.GetTracerProvider() != tel.TracerProvider {
		t.Error("Setup did not install the global tracer provider")
	}
	if otel.GetMeterProvider() != tel.MeterProvider {
		t.Error("Setup did not install the global meter provider")
	}
	if got := otel.GetTextMapPropagator().Fields(); !strings.Contains(strings.Join(got, ","), "traceparent") || !strings.Contains(strings.Join(got, ","), "baggage") {
		t.Errorf("global propagator fields = %v, want traceparent and baggage", got)
	}

	tr := tel.TracerProvider.Tracer("test")
	ctx, parent := tr.Start(context.Background(), "lookup")
	_, child := tr.Start(ctx, "replica.read")
	child.End()
	parent.End()

	if st, err := os.Stat(file); err != nil || st.Size() != 0 {
		t.Fatalf("trace file before Shutdown: %v, size %d; want an empty file", err, st.Size())
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}

	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n"))
	if len(lines) != 1 {
		t.Fatalf("trace file has %d lines, want 1 batch:\n%s", len(lines), raw)
	}
	req := &collectortracepb.ExportTraceServiceRequest{}
	if err := UnmarshalTraceLine(lines[0], req); err != nil {
		t.Fatalf("line is not an ExportTraceServiceRequest: %v\n%s", err, lines[0])
	}
	// The line round-trips: re-encoding gives the same bytes.
	again, err := MarshalTraceLine(req)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, raw) {
		t.Errorf("round trip changed the line:\n got %s\nwant %s", again, raw)
	}

	if n := len(req.GetResourceSpans()); n != 1 {
		t.Fatalf("%d resource spans, want 1", n)
	}
	res := attrMap(req.ResourceSpans[0].GetResource().GetAttributes())
	for k, want := range map[string]string{
		"service.name":                "meridian-test",
		"service.instance.id":         "gw-1",
		"meridian.node":               "gw-1",
		"meridian.region":             "us-east-1", // the flag wins over OTEL_RESOURCE_ATTRIBUTES
		"cloud.region":                "us-east-1",
		"deployment.environment.name": "test",
		"telemetry.sdk.language":      "go",
	} {
		if res[k] != want {
			t.Errorf("resource %s = %q, want %q (all: %v)", k, res[k], want, res)
		}
	}
	spans := allSpans([]*collectortracepb.ExportTraceServiceRequest{req})
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	byName := map[string]*tracepb.Span{}
	for _, s := range spans {
		byName[s.GetName()] = s
	}
	p, c := byName["lookup"], byName["replica.read"]
	if p == nil || c == nil {
		t.Fatalf("spans %v, want lookup and replica.read", byName)
	}
	if !bytes.Equal(c.GetParentSpanId(), p.GetSpanId()) || !bytes.Equal(c.GetTraceId(), p.GetTraceId()) {
		t.Errorf("child parent=%x trace=%x, want parent=%x trace=%x", c.GetParentSpanId(), c.GetTraceId(), p.GetSpanId(), p.GetTraceId())
	}
	if len(p.GetParentSpanId()) != 0 {
		t.Errorf("root span has parent %x", p.GetParentSpanId())
	}
}

func TestServiceNameFromEnv(t *testing.T) {
	tests := []struct {
		name, flag, envName, envAttrs, want string
	}{
		{"default", "", "", "", "meridian"},
		{"OTEL_SERVICE_NAME", "", "from-env", "", "from-env"},
		{"OTEL_RESOURCE_ATTRIBUTES", "", "", "service.name=from-attrs", "from-attrs"},
		{"flag wins", "from-flag", "from-env", "service.name=from-attrs", "from-flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearOTELEnv(t)
			if tt.envName != "" {
				t.Setenv("OTEL_SERVICE_NAME", tt.envName)
			}
			if tt.envAttrs != "" {
				t.Setenv("OTEL_RESOURCE_ATTRIBUTES", tt.envAttrs)
			}
			file := filepath.Join(t.TempDir(), "t.json")
			tel := setup(t, Config{ServiceName: tt.flag, TraceFile: file, SampleRate: -1})
			_, s := tel.TracerProvider.Tracer("test").Start(context.Background(), "x")
			s.End()
			if err := tel.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			reqs := readFile(t, file)
			if len(reqs) != 1 {
				t.Fatalf("%d batches, want 1", len(reqs))
			}
			got := attrMap(reqs[0].ResourceSpans[0].GetResource().GetAttributes())["service.name"]
			if got != tt.want {
				t.Errorf("service.name = %q, want %q", got, tt.want)
			}
		})
	}
}

// countSampled starts n root spans and one child of a sampled remote
// parent, and returns how many root spans and whether the child reached
// the trace file.
func countSampled(t *testing.T, cfg Config, n int) (roots int, child bool) {
	t.Helper()
	cfg.TraceExporter, cfg.TraceFile = "file", filepath.Join(t.TempDir(), "t.json")
	tel := setup(t, cfg)
	tr := tel.TracerProvider.Tracer("test")
	for range n {
		_, s := tr.Start(context.Background(), "root")
		s.End()
	}
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3},
		SpanID:     trace.SpanID{4, 5, 6},
		TraceFlags: trace.FlagsSampled,
		Remote:     true,
	})
	_, s := tr.Start(trace.ContextWithRemoteSpanContext(context.Background(), remote), "child")
	s.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, sp := range allSpans(readFile(t, cfg.TraceFile)) {
		switch sp.GetName() {
		case "root":
			roots++
		case "child":
			child = true
		}
	}
	return roots, child
}

func TestSampler(t *testing.T) {
	const n = 200
	tests := []struct {
		name             string
		rate             float64
		sampler, arg     string
		minRoots, maxRoo int
	}{
		{"rate 1", 1, "", "", n, n},
		{"rate 0", 0, "", "", 0, 0},
		{"rate 0.5", 0.5, "", "", 1, n - 1},
		{"env default is parentbased_always_on", -1, "", "", n, n},
		{"env always_off", -1, "parentbased_always_off", "", 0, 0},
		{"env ratio 0", -1, "parentbased_traceidratio", "0", 0, 0},
		{"flag wins over env", 1, "parentbased_always_off", "", n, n},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearOTELEnv(t)
			if tt.sampler != "" {
				t.Setenv("OTEL_TRACES_SAMPLER", tt.sampler)
			}
			if tt.arg != "" {
				t.Setenv("OTEL_TRACES_SAMPLER_ARG", tt.arg)
			}
			roots, child := countSampled(t, Config{SampleRate: tt.rate}, n)
			if roots < tt.minRoots || roots > tt.maxRoo {
				t.Errorf("%d of %d root spans sampled, want %d..%d", roots, n, tt.minRoots, tt.maxRoo)
			}
			if !child {
				t.Error("child of a sampled remote parent was dropped; want parent-based sampling")
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	clearOTELEnv(t)
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{TraceExporter: "jaeger"}, `trace-exporter: "jaeger" is not otlp, file or none`},
		{Config{TraceExporter: "file"}, "trace-file: the file trace exporter needs a file name"},
		{Config{SampleRate: 1.5}, "trace-sample-rate: 1.5 is above 1"},
		{Config{OTLPEndpoint: "127.0.0.1:4318"}, "otlp-endpoint:"},
		{Config{TraceExporter: "file", TraceFile: filepath.Join(t.TempDir(), "no", "such", "dir", "t.json")}, "trace-file:"},
	}
	for _, tt := range tests {
		tel, err := Setup(context.Background(), tt.cfg)
		if err == nil {
			_ = tel.Shutdown(context.Background())
			t.Errorf("Setup(%+v) succeeded, want error %q", tt.cfg, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Setup(%+v) error %q, want it to contain %q", tt.cfg, err, tt.want)
		}
	}
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
	if _, err := Setup(context.Background(), Config{TraceExporter: "otlp"}); err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_PROTOCOL") {
		t.Errorf("bad protocol: error %v, want one naming OTEL_EXPORTER_OTLP_PROTOCOL", err)
	}
}

func TestAutoExporter(t *testing.T) {
	tests := []struct {
		name, envEndpoint, envTraces, flag, file, want string
	}{
		{"nothing", "", "", "", "", "none"},
		{"file", "", "", "", "t.json", "file"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1", "", "", "t.json", "otlp"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "http://127.0.0.1:1/v1/traces", "", "", "otlp"},
		{"flag", "", "", "http://127.0.0.1:1", "", "otlp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearOTELEnv(t)
			t.Setenv("OTEL_METRICS_EXPORTER", "none")
			if tt.envEndpoint != "" {
				t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", tt.envEndpoint)
			}
			if tt.envTraces != "" {
				t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", tt.envTraces)
			}
			cfg := Config{OTLPEndpoint: tt.flag, SampleRate: -1}
			if tt.file != "" {
				cfg.TraceFile = filepath.Join(t.TempDir(), tt.file)
			}
			tel := setup(t, cfg)
			if tel.TraceExporter != tt.want {
				t.Errorf("exporter = %q, want %q", tel.TraceExporter, tt.want)
			}
			if tt.want == "none" {
				_, s := tel.TracerProvider.Tracer("t").Start(context.Background(), "x")
				if s.SpanContext().IsValid() {
					t.Error("span from the none exporter's provider is recording a valid context; want no-op")
				}
			}
		})
	}
}

func TestSetupOTLP(t *testing.T) {
	tests := []struct {
		name      string
		grpc      bool
		viaEnv    bool
		withPath  bool
		wantPaths []string
	}{
		{name: "http flag", wantPaths: []string{"/v1/traces"}},
		{name: "http env", viaEnv: true, wantPaths: []string{"/v1/traces"}},
		{name: "http flag with path prefix", withPath: true, wantPaths: []string{"/prefix/v1/traces"}},
		{name: "grpc flag", grpc: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearOTELEnv(t)
			t.Setenv("OTEL_METRICS_EXPORTER", "none")
			var rcv *otlpReceiver
			var url string
			if tt.grpc {
				rcv, url = startGRPCReceiver(t)
				t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
			} else {
				rcv, url = startHTTPReceiver(t)
			}
			if tt.withPath {
				url += "/prefix/"
			}
			cfg := Config{ServiceName: "otlp-test", SampleRate: -1}
			if tt.viaEnv {
				t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
			} else {
				// The flag wins over a wrong endpoint in the environment.
				t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
				cfg.OTLPEndpoint = url
			}
			tel := setup(t, cfg)
			if tel.TraceExporter != "otlp" {
				t.Fatalf("exporter %q, want otlp", tel.TraceExporter)
			}
			_, s := tel.TracerProvider.Tracer("t").Start(context.Background(), "sent")
			s.End()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := tel.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			spans := rcv.spans()
			if len(spans) != 1 || spans[0].GetName() != "sent" {
				t.Fatalf("receiver got %v, want one span named sent", spans)
			}
			if tt.wantPaths != nil {
				rcv.mu.Lock()
				got := strings.Join(rcv.paths, ",")
				rcv.mu.Unlock()
				if got != strings.Join(tt.wantPaths, ",") {
					t.Errorf("paths %s, want %v", got, tt.wantPaths)
				}
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	clearOTELEnv(t)
	rcv, url := startHTTPReceiver(t)
	tel := setup(t, Config{OTLPEndpoint: url, TraceExporter: "none", MetricsInterval: time.Hour, SampleRate: -1})
	c, err := tel.MeterProvider.Meter("test").Int64Counter("meridian.test.lookups")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 3)

	rec := httptest.NewRecorder()
	tel.MetricsHandler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	if !strings.Contains(body, "meridian_test_lookups_total") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics lacks meridian_test_lookups_total or go_goroutines:\n%.2000s", body)
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "meridian_test_lookups_total{") && !strings.HasSuffix(line, " 3") {
			t.Errorf("counter line %q, want value 3", line)
		}
	}

	// Shutdown pushes the last collection over OTLP.
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	found := false
	for _, m := range rcv.metrics {
		for _, rm := range m.GetResourceMetrics() {
			for _, sm := range rm.GetScopeMetrics() {
				for _, mt := range sm.GetMetrics() {
					found = found || mt.GetName() == "meridian.test.lookups"
				}
			}
		}
	}
	if !found {
		t.Errorf("OTLP metrics receiver did not get meridian.test.lookups (paths %v)", rcv.paths)
	}
}

func TestReadTraceFileErrors(t *testing.T) {
	_, err := ReadTraceFile(strings.NewReader("{\"resourceSpans\":[]}\nnot json\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("error %v, want one naming line 2", err)
	}
	reqs, err := ReadTraceFile(strings.NewReader("\n{\"resourceSpans\":[]}\n\n"))
	if err != nil || len(reqs) != 1 {
		t.Errorf("got %d requests, %v; want 1, nil", len(reqs), err)
	}
}

// Producers export cumulative data whatever a reader asks, so Setup hands
// out none when the OTLP exporter wants delta histograms: components then
// record into the SDK's instruments, which follow the exporter.
func TestProducersOnlyForCumulativeHistograms(t *testing.T) {
	for _, tt := range []struct {
		pref string
		want bool
	}{{"", true}, {"cumulative", true}, {"delta", false}, {"lowmemory", false}} {
		t.Run("pref="+tt.pref, func(t *testing.T) {
			clearOTELEnv(t)
			t.Setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", tt.pref)
			tel := setup(t, Config{OTLPEndpoint: "http://127.0.0.1:1", MetricsOTLP: true, SampleRate: -1})
			if got := tel.Producers != nil; got != tt.want {
				t.Errorf("Producers set = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("prometheus only", func(t *testing.T) {
		clearOTELEnv(t)
		t.Setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta")
		t.Setenv("OTEL_METRICS_EXPORTER", "none")
		if tel := setup(t, Config{SampleRate: -1}); tel.Producers == nil {
			t.Error("no Producers without an OTLP metrics exporter; want them (Prometheus is cumulative)")
		}
	})
}
