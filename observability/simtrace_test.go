package observability

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

var simStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// simScript creates spans the way the simulator does: from one goroutine,
// with explicit simulated timestamps, across several services. It makes
// more than SimBatchSize spans for one service so batches fill up, and
// returns how many spans it ended.
func simScript(st *SimTracing) int {
	services := []string{"sim", "meridian-us-east-1", "meridian-eu-west-1"}
	n := 0
	now := simStart
	for i := range 300 {
		svc := services[i%len(services)]
		if i%2 == 0 {
			svc = "meridian-us-east-1" // over SimBatchSize spans for this one
		}
		tr := st.Tracer(svc)
		ctx, root := tr.Start(context.Background(), "sync.round",
			trace.WithTimestamp(now),
			trace.WithAttributes(attribute.Int("round", i)))
		now = now.Add(3 * time.Millisecond)
		// A child in another service, as a cross-gateway call is traced.
		_, child := st.Tracer("sim").Start(ctx, "net.deliver",
			trace.WithTimestamp(now), trace.WithSpanKind(trace.SpanKindClient))
		child.AddEvent("delivered", trace.WithTimestamp(now.Add(time.Millisecond)))
		if i%7 == 0 {
			child.SetStatus(codes.Error, "partitioned")
		}
		now = now.Add(2 * time.Millisecond)
		child.End(trace.WithTimestamp(now))
		root.End(trace.WithTimestamp(now.Add(time.Millisecond)))
		n += 2
		now = now.Add(10 * time.Millisecond)
	}
	return n
}

func runSim(t *testing.T, seed uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	st, err := NewSimTracing(SimTraceConfig{Seed: seed, Start: simStart, File: &buf})
	if err != nil {
		t.Fatal(err)
	}
	simScript(st)
	if err := st.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := st.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	return buf.Bytes()
}

func traceIDs(t *testing.T, file []byte) map[string]bool {
	t.Helper()
	reqs, err := ReadTraceFile(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, s := range allSpans(reqs) {
		ids[hex.EncodeToString(s.GetTraceId())] = true
	}
	return ids
}

func TestSimTracingDeterministic(t *testing.T) {
	clearOTELEnv(t)
	a := runSim(t, 7)
	// Environment variables the SDK reads must not change a byte.
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "host.name=elsewhere,deployment.environment.name=ci")
	t.Setenv("OTEL_SERVICE_NAME", "not-the-sim")
	t.Setenv("OTEL_TRACES_SAMPLER", "always_off")
	t.Setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "0")
	b := runSim(t, 7)
	if !bytes.Equal(a, b) {
		t.Fatalf("same seed, different trace files (%d vs %d bytes)\nfirst line a: %.300s\nfirst line b: %.300s", len(a), len(b), a, b)
	}
	if len(a) == 0 {
		t.Fatal("empty trace file")
	}
	c := runSim(t, 8)
	if bytes.Equal(a, c) {
		t.Fatal("seeds 7 and 8 wrote identical files")
	}
	ida, idc := traceIDs(t, a), traceIDs(t, c)
	if len(ida) != 300 || len(idc) != 300 {
		t.Fatalf("%d and %d distinct trace ids, want 300 each", len(ida), len(idc))
	}
	for id := range ida {
		if idc[id] {
			t.Errorf("trace id %s appears with seeds 7 and 8", id)
		}
	}
}

func TestSimTracingContent(t *testing.T) {
	clearOTELEnv(t)
	var buf bytes.Buffer
	st, err := NewSimTracing(SimTraceConfig{Seed: 42, Start: simStart, File: &buf})
	if err != nil {
		t.Fatal(err)
	}
	want := simScript(st)
	// The first full batch (of sim) is written before Shutdown.
	if before := bytes.Count(buf.Bytes(), []byte("\n")); before != 1 {
		t.Errorf("%d lines before Shutdown, want 1 full batch", before)
	}
	// A span not ended by Shutdown is dropped; one ended after is ignored.
	_, open := st.Tracer("sim").Start(context.Background(), "never-ended", trace.WithTimestamp(simStart))
	if err := st.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	open.End(trace.WithTimestamp(simStart))

	reqs, err := ReadTraceFile(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	spans := map[string]*tracepb.Span{}
	var order []string // service per line
	perService := map[string]int{}
	for _, req := range reqs {
		if len(req.GetResourceSpans()) != 1 {
			t.Fatalf("a line holds %d resources, want 1", len(req.GetResourceSpans()))
		}
		rs := req.ResourceSpans[0]
		res := attrMap(rs.GetResource().GetAttributes())
		wantRes := map[string]string{
			"service.name":       res["service.name"],
			"meridian.sim.seed":  "42",
			"meridian.sim.start": "2026-01-01T00:00:00Z",
		}
		if fmt.Sprint(res) != fmt.Sprint(wantRes) {
			t.Errorf("resource %v, want exactly %v", res, wantRes)
		}
		order = append(order, res["service.name"])
		for _, ss := range rs.GetScopeSpans() {
			if ss.GetScope().GetName() != SimTracerName {
				t.Errorf("scope %q, want %q", ss.GetScope().GetName(), SimTracerName)
			}
			if len(ss.GetSpans()) > SimBatchSize {
				t.Errorf("batch of %d spans, want at most %d", len(ss.GetSpans()), SimBatchSize)
			}
			for _, s := range ss.GetSpans() {
				perService[res["service.name"]]++
				spans[hex.EncodeToString(s.GetSpanId())] = s
			}
		}
	}
	if len(spans) != want {
		t.Fatalf("%d distinct spans in the file, want %d", len(spans), want)
	}
	// sim fills a batch first; the rest
	// follows by service name.
	if got := strings.Join(order, ","); got != "sim,meridian-eu-west-1,meridian-us-east-1,sim" {
		t.Errorf("line order %s", got)
	}
	if perService["meridian-us-east-1"] != 200 || perService["meridian-eu-west-1"] != 50 || perService["sim"] != 350 {
		t.Errorf("spans per service %v", perService)
	}
	// Timestamps are the simulated ones; ids are non-zero; children point
	// at parents in the same trace.
	earliest, latest := uint64(simStart.UnixNano()), uint64(simStart.Add(time.Hour).UnixNano())
	children := 0
	for id, s := range spans {
		if strings.Trim(id, "0") == "" || strings.Trim(hex.EncodeToString(s.GetTraceId()), "0") == "" {
			t.Fatalf("zero id in span %v", s)
		}
		if s.GetStartTimeUnixNano() < earliest || s.GetEndTimeUnixNano() > latest || s.GetEndTimeUnixNano() < s.GetStartTimeUnixNano() {
			t.Fatalf("span %s times %d..%d outside the simulated window", s.GetName(), s.GetStartTimeUnixNano(), s.GetEndTimeUnixNano())
		}
		if s.GetName() == "net.deliver" {
			children++
			p := spans[hex.EncodeToString(s.GetParentSpanId())]
			if p == nil || p.GetName() != "sync.round" || !bytes.Equal(p.GetTraceId(), s.GetTraceId()) {
				t.Fatalf("net.deliver's parent %x not found as sync.round in the same trace", s.GetParentSpanId())
			}
			if got, want := s.GetStartTimeUnixNano()-p.GetStartTimeUnixNano(), uint64(3*time.Millisecond); got != want {
				t.Errorf("child starts %d ns after its parent, want %d", got, want)
			}
			if len(s.GetEvents()) != 1 || s.GetEvents()[0].GetTimeUnixNano() != s.GetStartTimeUnixNano()+uint64(time.Millisecond) {
				t.Errorf("event %v, want one at start+1ms", s.GetEvents())
			}
		}
	}
	if children != 300 {
		t.Errorf("%d child spans, want 300", children)
	}
	var firstRoot *tracepb.Span
	for _, s := range spans {
		if s.GetName() == "sync.round" && len(s.GetAttributes()) == 1 && s.GetAttributes()[0].GetValue().GetIntValue() == 0 {
			firstRoot = s
		}
	}
	if firstRoot == nil || firstRoot.GetStartTimeUnixNano() != uint64(simStart.UnixNano()) {
		t.Errorf("round 0 span %v, want it to start at %v", firstRoot, simStart)
	}
}

func TestSeededIDsNonZero(t *testing.T) {
	// Seed 0 is a valid seed; ids drawn from it must still be valid.
	for seed := range uint64(50) {
		g := newSeededIDs(seed)
		for range 200 {
			tid, sid := g.NewIDs(context.Background())
			if !tid.IsValid() || !sid.IsValid() || !g.NewSpanID(context.Background(), tid).IsValid() {
				t.Fatalf("seed %d: invalid id %s/%s", seed, tid, sid)
			}
		}
	}
	a, b := newSeededIDs(3), newSeededIDs(3)
	for range 100 {
		ta, sa := a.NewIDs(context.Background())
		tb, sb := b.NewIDs(context.Background())
		if ta != tb || sa != sb {
			t.Fatalf("same seed, different ids: %s/%s vs %s/%s", ta, sa, tb, sb)
		}
	}
}

func TestSimTracingOTLP(t *testing.T) {
	clearOTELEnv(t)
	rcv, url := startHTTPReceiver(t)
	var buf bytes.Buffer
	st, err := NewSimTracing(SimTraceConfig{Seed: 9, Start: simStart, File: &buf, OTLPEndpoint: url})
	if err != nil {
		t.Fatal(err)
	}
	want := simScript(st)
	if err := st.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := rcv.spans()
	if len(got) != want {
		t.Fatalf("OTLP receiver got %d spans, want %d", len(got), want)
	}
	fileSpans := allSpans(mustRead(t, buf.Bytes()))
	for i := range got {
		if !bytes.Equal(got[i].GetSpanId(), fileSpans[i].GetSpanId()) {
			t.Fatalf("span %d: OTLP %x, file %x; want the same order", i, got[i].GetSpanId(), fileSpans[i].GetSpanId())
		}
	}
	rcv.mu.Lock()
	n := len(rcv.traces)
	rcv.mu.Unlock()
	if lines := bytes.Count(buf.Bytes(), []byte("\n")); n != lines {
		t.Errorf("%d OTLP requests, %d file lines; want one request per batch", n, lines)
	}
}

func TestSimTracingOTLPFailure(t *testing.T) {
	clearOTELEnv(t)
	// Nothing listens on port 1 of 127.0.0.1: the export fails, and
	// Shutdown says so after the bounded retries.
	st, err := NewSimTracing(SimTraceConfig{Seed: 1, OTLPEndpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	_, s := st.Tracer("sim").Start(context.Background(), "x", trace.WithTimestamp(simStart))
	s.End(trace.WithTimestamp(simStart))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.Shutdown(ctx); err == nil || !strings.Contains(err.Error(), "otlp export") {
		t.Errorf("Shutdown error %v, want an otlp export error", err)
	}
	if _, err := NewSimTracing(SimTraceConfig{OTLPEndpoint: "127.0.0.1:4318"}); err == nil || !strings.Contains(err.Error(), "otlp-endpoint") {
		t.Errorf("bad endpoint: error %v, want one naming otlp-endpoint", err)
	}
}

func mustRead(t *testing.T, b []byte) []*collectortracepb.ExportTraceServiceRequest {
	t.Helper()
	reqs, err := ReadTraceFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return reqs
}
