package observability

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"

	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// OTLP/JSON differs from plain protojson in two ways that matter to the
// tools that read trace files (the OpenTelemetry Collector's otlpjson file
// receiver, Jaeger's OTLP/HTTP JSON endpoint): trace and span ids are hex
// strings, not base64, and enums are numbers. The file exporter and the
// simulator write that format; ReadTraceFile also reads the old base64
// files.

// idField matches an id field of a span or link and its string value.
var idField = regexp.MustCompile(`"(traceId|spanId|parentSpanId)":"([^"]*)"`)

var otlpMarshal = protojson.MarshalOptions{UseEnumNumbers: true}

// marshalOTLPJSON encodes req as OTLP/JSON (not yet compacted).
func marshalOTLPJSON(req *collectortracepb.ExportTraceServiceRequest) ([]byte, error) {
	raw, err := otlpMarshal.Marshal(req)
	if err != nil {
		return nil, err
	}
	var convErr error
	out := idField.ReplaceAllFunc(raw, func(m []byte) []byte {
		sub := idField.FindSubmatch(m)
		b, err := base64.StdEncoding.DecodeString(string(sub[2]))
		if err != nil {
			convErr = fmt.Errorf("%s %q is not base64: %w", sub[1], sub[2], err)
			return m
		}
		return []byte(`"` + string(sub[1]) + `":"` + hex.EncodeToString(b) + `"`)
	})
	return out, convErr
}

// UnmarshalTraceLine decodes one trace-file line: OTLP/JSON with hex ids,
// or protojson with base64 ids (trace files of earlier versions).
func UnmarshalTraceLine(line []byte, req *collectortracepb.ExportTraceServiceRequest) error {
	var convErr error
	in := idField.ReplaceAllFunc(line, func(m []byte) []byte {
		sub := idField.FindSubmatch(m)
		v := string(sub[2])
		// A hex id is 32 (trace) or 16 (span) characters; base64 of the
		// same ids is 24 or 12, so the length tells the two apart.
		if len(v) != 32 && len(v) != 16 {
			return m
		}
		b, err := hex.DecodeString(v)
		if err != nil {
			convErr = fmt.Errorf("%s %q is not hex: %w", sub[1], v, err)
			return m
		}
		return []byte(`"` + string(sub[1]) + `":"` + base64.StdEncoding.EncodeToString(b) + `"`)
	})
	if convErr != nil {
		return convErr
	}
	return protojson.Unmarshal(in, req)
}
