package observability

import (
	"bytes"
	"strings"
	"testing"

	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// TestTraceLineIsOTLPJSON: trace-file lines carry hex ids and numeric
// enums, as OTLP/JSON requires; lines of the old base64 form still read.
func TestTraceLineIsOTLPJSON(t *testing.T) {
	tid := []byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	sid := []byte{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	pid := []byte{0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07}
	req := &collectortracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
		TraceId: tid, SpanId: sid, ParentSpanId: pid, Name: "GET /v1/lookup/{service}", Kind: tracepb.Span_SPAN_KIND_SERVER,
		StartTimeUnixNano: 1700000000000000000, EndTimeUnixNano: 1700000000001000000,
		Links:  []*tracepb.Span_Link{{TraceId: tid, SpanId: pid}},
		Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR},
	}}}}}}}
	line, err := MarshalTraceLine(req)
	if err != nil {
		t.Fatal(err)
	}
	s := string(line)
	for _, want := range []string{`"traceId":"4bf92f3577b34da6a3ce929d0e0e4736"`, `"spanId":"00f067aa0ba902b7"`,
		`"parentSpanId":"ff01020304050607"`, `"kind":2`, `"code":2`, `"links":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"ff01020304050607"}]`} {
		if !strings.Contains(s, want) {
			t.Errorf("line lacks %s:\n%s", want, s)
		}
	}
	back := &collectortracepb.ExportTraceServiceRequest{}
	if err := UnmarshalTraceLine(line, back); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(req, back) {
		t.Errorf("round trip changed the request:\n%v\n%v", req, back)
	}
	// A line of an earlier version: base64 ids.
	old, err := protojson.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	reqs, err := ReadTraceFile(bytes.NewReader(append(old, '\n')))
	if err != nil || len(reqs) != 1 || !proto.Equal(reqs[0], req) {
		t.Fatalf("reading a base64 line: %v", err)
	}
	if err := UnmarshalTraceLine([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz000000000000000000000000000000"}]}]}]}`), back); err == nil {
		t.Error("a bad hex id was accepted")
	}
}
