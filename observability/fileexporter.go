package observability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// NewFileExporter returns a span exporter that writes each exported batch
// to w as one line: an OTLP ExportTraceServiceRequest in OTLP/JSON, with
// insignificant whitespace removed so that equal batches give equal bytes
// whatever binary wrote them. Shutdown closes w when it is an io.Closer.
// Writes are serialised; each line is written with a single Write call.
func NewFileExporter(w io.Writer) *otlptrace.Exporter {
	return otlptrace.NewUnstarted(&fileClient{w: w})
}

func openTraceFile(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("trace-file: %w", err)
	}
	return f, nil
}

// fileClient is an otlptrace.Client that writes instead of sending, so the
// OTLP exporter's own span-to-protobuf transform is reused.
type fileClient struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

var _ otlptrace.Client = (*fileClient)(nil)

func (c *fileClient) Start(context.Context) error { return nil }

func (c *fileClient) Stop(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if cl, ok := c.w.(io.Closer); ok {
		if err := cl.Close(); err != nil {
			return fmt.Errorf("trace file: close: %w", err)
		}
	}
	return nil
}

func (c *fileClient) UploadTraces(_ context.Context, rs []*tracepb.ResourceSpans) error {
	if len(rs) == 0 {
		return nil
	}
	sortResourceSpans(rs)
	line, err := MarshalTraceLine(&collectortracepb.ExportTraceServiceRequest{ResourceSpans: rs})
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("trace file: write after shutdown")
	}
	if _, err := c.w.Write(line); err != nil {
		return fmt.Errorf("trace file: write: %w", err)
	}
	return nil
}

// sortResourceSpans orders a batch's resources by their attributes: the
// exporter groups spans through a map, whose order is random.
func sortResourceSpans(rs []*tracepb.ResourceSpans) {
	if len(rs) < 2 {
		return
	}
	keys := make(map[*tracepb.ResourceSpans]string, len(rs))
	for _, r := range rs {
		var b strings.Builder
		for _, kv := range r.GetResource().GetAttributes() {
			b.WriteString(kv.GetKey())
			b.WriteByte('=')
			b.WriteString(kv.GetValue().String())
			b.WriteByte(0)
		}
		keys[r] = b.String()
	}
	sort.SliceStable(rs, func(i, j int) bool { return keys[rs[i]] < keys[rs[j]] })
}

// MarshalTraceLine encodes req as one trace-file line: compact OTLP/JSON
// (hex ids, enum numbers; otlpjson.go) followed by a newline.
func MarshalTraceLine(req *collectortracepb.ExportTraceServiceRequest) ([]byte, error) {
	raw, err := marshalOTLPJSON(req)
	if err != nil {
		return nil, fmt.Errorf("trace file: encode: %w", err)
	}
	// protojson deliberately varies its whitespace between builds; compact
	// it so the bytes depend on the spans alone.
	var buf bytes.Buffer
	buf.Grow(len(raw) + 1)
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("trace file: compact: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// ReadTraceFile decodes a trace file written by the file exporter or by
// SimTracing: one ExportTraceServiceRequest per non-empty line.
func ReadTraceFile(r io.Reader) ([]*collectortracepb.ExportTraceServiceRequest, error) {
	var out []*collectortracepb.ExportTraceServiceRequest
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<30)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		req := &collectortracepb.ExportTraceServiceRequest{}
		if err := UnmarshalTraceLine(line, req); err != nil {
			return nil, fmt.Errorf("trace file: line %d: %w", n, err)
		}
		out = append(out, req)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("trace file: read: %w", err)
	}
	return out, nil
}
