package httpsync

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/meridian-sd/meridian/region"

	"github.com/meridian-sd/meridian/federation"
)

// TestFetchTracesAndCounts: a fetch is a "federation.sync" client span
// whose context the serving gateway receives as its traceparent, and it
// is counted in meridian.sync.* with the fetching region.
func TestFetchTracesAndCounts(t *testing.T) {
	var mu sync.Mutex
	var got []string
	body, _ := json.Marshal(federation.DeltaResponse{Region: "eu-west", Version: 7, Changes: []region.Change{
		{Version: 6, Op: region.OpDelete, Service: "web", ID: "w1"}, {Version: 7, Op: region.OpDelete, Service: "web", ID: "w2"}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("traceparent"))
		mu.Unlock()
		w.Write(body)
	}))
	defer srv.Close()

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	reader := sdkmetric.NewManualReader()
	tel := &SyncTelemetry{TracerProvider: tp, MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		Propagator: propagation.TraceContext{}, Region: "us-east"}
	ctx := WithSyncTelemetry(context.Background(), tel)
	addr := strings.TrimPrefix(srv.URL, "http://")
	res, err := Fetch(ctx, srv.Client(), addr, "eu-west", 5)
	if err != nil || res.Version != 7 || len(res.Changes) != 2 {
		t.Fatalf("Fetch: %+v, %v", res, err)
	}
	// A wrong region is an error, recorded on its span.
	if _, err := Fetch(ctx, srv.Client(), addr, "ap-south", 5); err == nil {
		t.Fatal("Fetch of ap-south from an eu-west gateway succeeded")
	}

	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	s := spans[0]
	attrs := map[string]string{}
	for _, kv := range s.Attributes {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	for k, want := range map[string]string{
		"meridian.sync.peer_region": "eu-west", "meridian.sync.peer_gateway": addr, "meridian.region": "us-east",
		"meridian.sync.version_from": "5", "meridian.sync.version_to": "7", "meridian.sync.full": "false",
		"meridian.sync.changes": "2", "meridian.sync.bytes": strconv.Itoa(len(body)),
	} {
		if attrs[k] != want {
			t.Errorf("%s = %q, want %q", k, attrs[k], want)
		}
	}
	if s.Name != "federation.sync" || s.SpanKind.String() != "client" {
		t.Errorf("span %q kind %v, want federation.sync, client", s.Name, s.SpanKind)
	}
	mu.Lock()
	tp2 := got[0]
	mu.Unlock()
	if want := "00-" + s.SpanContext.TraceID().String() + "-" + s.SpanContext.SpanID().String() + "-01"; tp2 != want {
		t.Errorf("server got traceparent %q, want %q", tp2, want)
	}
	if spans[1].Status.Code.String() != "Error" {
		t.Errorf("failed fetch span status %v, want Error", spans[1].Status)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	sums := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					r, _ := dp.Attributes.Value(attribute.Key("result"))
					reg, _ := dp.Attributes.Value(attribute.Key("region"))
					sums[m.Name+"/"+reg.AsString()+"/"+r.AsString()] += dp.Value
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					r, _ := dp.Attributes.Value(attribute.Key("result"))
					sums[m.Name+"/count/"+r.AsString()] += int64(dp.Count)
				}
			}
		}
	}
	for k, want := range map[string]int64{
		"meridian.sync.bytes/us-east/ok": int64(len(body)), "meridian.sync.changes/us-east/ok": 2,
		"meridian.sync.duration/count/ok": 1, "meridian.sync.duration/count/error": 1,
	} {
		if sums[k] != want {
			t.Errorf("%s = %d, want %d (all: %v)", k, sums[k], want, sums)
		}
	}
}
