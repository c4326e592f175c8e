package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// otlpLine is the part of an OTLP JSON ExportTraceServiceRequest the test
// reads.
type otlpLine struct {
	ResourceSpans []struct {
		Resource struct {
			Attributes []otlpAttr `json:"attributes"`
		} `json:"resource"`
		ScopeSpans []struct {
			Spans []struct {
				TraceID      string     `json:"traceId"`
				SpanID       string     `json:"spanId"`
				ParentSpanID string     `json:"parentSpanId"`
				Name         string     `json:"name"`
				Attributes   []otlpAttr `json:"attributes"`
			} `json:"spans"`
		} `json:"scopeSpans"`
	} `json:"resourceSpans"`
}

type otlpAttr struct {
	Key   string         `json:"key"`
	Value map[string]any `json:"value"` // {"stringValue": ...} | {"intValue": "3"} | {"boolValue": true} | ...
}

// otlpSpan is a span read back from a trace file, attributes flattened
// to strings.
type otlpSpan struct {
	name, traceID, parentID string
	attrs, resource         map[string]string
}

func flatten(as []otlpAttr) map[string]string {
	m := map[string]string{}
	for _, a := range as {
		for _, v := range a.Value {
			b, _ := json.Marshal(v)
			m[a.Key] = strings.Trim(string(b), `"`)
		}
	}
	return m
}

func readTraceFile(t *testing.T, name string) []otlpSpan {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatalf("trace file: %v", err)
	}
	defer f.Close()
	var out []otlpSpan
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var l otlpLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("trace file line is not OTLP JSON: %v: %.200s", err, sc.Bytes())
		}
		for _, rs := range l.ResourceSpans {
			res := flatten(rs.Resource.Attributes)
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					out = append(out, otlpSpan{name: s.Name, traceID: s.TraceID, parentID: s.ParentSpanID, attrs: flatten(s.Attributes), resource: res})
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func httpDo(t *testing.T, method, url, body string) string {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: HTTP %d %s", method, url, resp.StatusCode, b)
	}
	return string(b)
}

// runTracedAgent starts an agent writing spans to a file, registers an
// instance, looks it up, scrapes /metrics and stops the agent with
// SIGTERM. It returns the spans in the file and the /metrics text.
func runTracedAgent(t *testing.T, bin string, env []string, args ...string) ([]otlpSpan, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "spans.jsonl")
	addr := freeAddr(t)
	p := startAgentProc(t, bin, addr, env, append([]string{"--region", "us-east", "--trace-file", file,
		"--serf-bind", freeAddr(t), "--gossip-profile", "local"}, args...)...)
	httpDo(t, "PUT", "http://"+addr+"/v1/services/web/instances/web-1", `{"address":"10.0.0.5","port":8080,"zone":"a"}`)
	httpDo(t, "PUT", "http://"+addr+"/v1/services/web/instances/web-2", `{"address":"10.0.0.6","port":8080,"zone":"b"}`)
	httpDo(t, "GET", "http://"+addr+"/v1/lookup/web", "")
	metrics := httpDo(t, "GET", "http://"+addr+"/metrics", "")

	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agent exit after SIGTERM: %v; log:\n%s", err, p.logText())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("agent still running 15s after SIGTERM; log:\n%s", p.logText())
	}
	return readTraceFile(t, file), metrics
}

// TestAgentTraceFile: `meridian agent --trace-file F`, a lookup, SIGTERM:
// F holds the lookup's server span with the routing decision, written on
// the graceful shutdown; the Redis command of a registration is in its
// request's trace; /metrics serves the gateway's metrics. With
// MERIDIAN_TRACE_SAMPLE_RATE=0 no request is traced.
func TestAgentTraceFile(t *testing.T) {
	bin := buildBinary(t)
	spans, metrics := runTracedAgent(t, bin, []string{"MERIDIAN_TRACE_SAMPLE_RATE=1"})
	var lookup *otlpSpan
	byID := map[string]bool{}
	for i, s := range spans {
		if s.name == "GET /v1/lookup/{service}" {
			lookup = &spans[i]
		}
		byID[s.traceID] = true
	}
	if lookup == nil {
		names := []string{}
		for _, s := range spans {
			names = append(names, s.name)
		}
		t.Fatalf("no GET /v1/lookup/{service} span in the trace file; spans: %v", names)
	}
	for k, want := range map[string]string{
		"meridian.region":                    "us-east",
		"meridian.service":                   "web",
		"meridian.route.policy":              "local",
		"meridian.route.zone":                "",
		"meridian.route.local_healthy_share": "1",
		"meridian.route.local_share":         "1",
		"meridian.route.spill_share":         "0",
		"meridian.route.failover":            "false",
		"meridian.route.panic":               "false",
		"meridian.route.endpoints":           "2",
		"meridian.route.shares":              "us-east=1",
		"http.route":                         "/v1/lookup/{service}",
	} {
		if got := lookup.attrs[k]; got != want {
			t.Errorf("lookup span %s = %q, want %q", k, got, want)
		}
	}
	if lookup.resource["service.name"] != "meridian" || lookup.resource["meridian.region"] != "us-east" {
		t.Errorf("resource %v: want service.name meridian, meridian.region us-east", lookup.resource)
	}
	// A registration's Redis command is a child in the request's trace.
	var put *otlpSpan
	for i, s := range spans {
		if s.name == "PUT /v1/services/{service}/instances/{id}" {
			put = &spans[i]
		}
	}
	if put == nil {
		t.Fatal("no registration span in the trace file")
	}
	redisInTrace := false
	for _, s := range spans {
		if s.attrs["db.system"] == "redis" && s.traceID == put.traceID && s.parentID != "" {
			redisInTrace = true
		}
	}
	if !redisInTrace {
		t.Error("no Redis span in a registration's trace")
	}
	for _, fam := range []string{"meridian_lookups_total{", "meridian_lookup_duration_seconds_bucket{", "meridian_registry_instances{",
		"meridian_http_requests_total{", "meridian_gossip_members{", "go_goroutines"} {
		if !strings.Contains(metrics, fam) {
			t.Errorf("/metrics lacks %s", fam)
		}
	}

	// Sampling from the environment, MERIDIAN_TRACE_SAMPLE_RATE=0: the
	// same traffic leaves no request span.
	spans, _ = runTracedAgent(t, bin, []string{"MERIDIAN_TRACE_SAMPLE_RATE=0"})
	for _, s := range spans {
		if strings.HasPrefix(s.name, "GET ") || strings.HasPrefix(s.name, "PUT ") {
			t.Fatalf("span %q traced at sample rate 0", s.name)
		}
	}
}
