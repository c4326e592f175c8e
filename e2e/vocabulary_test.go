package e2e

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/federation/serfmember"
	"github.com/meridian-sd/meridian/gateway"
	"github.com/meridian-sd/meridian/scenarios"
	"github.com/meridian-sd/meridian/sim"
)

// TestOneTraceVocabulary: a simulation names its spans and their
// attributes as live gateways do, so one Jaeger query (a span name, a
// meridian.* attribute) finds both. Two live gateways in two regions (real
// Serf, real HTTP) serve a lookup and sync a catalog; a simulation of a
// built-in scenario runs; the simulation's lookup, sync and catalog spans
// must have live twins of the same name, and every meridian.* attribute
// they carry (meridian.sim.* apart) must be one the live twin carries too.
func TestOneTraceVocabulary(t *testing.T) {
	live := liveSpans(t)
	sc, err := scenarios.Builtin("region-cutoff")
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	if _, err := sim.Run(sc, sim.Options{Seed: 1, Tracer: func(service string) trace.Tracer { return tp.Tracer(service) }, TraceSampleRate: 0.05}); err != nil {
		t.Fatal(err)
	}
	simulated := keysByName(rec.Ended())
	for _, name := range []string{"GET /v1/lookup/{service}", "federation.sync", "GET " + federation.CatalogPath} {
		s, l := simulated[name], live[name]
		if s == nil {
			t.Errorf("the simulation has no %q span; it has %v", name, sortedKeys(simulated))
			continue
		}
		if l == nil {
			t.Errorf("the live gateways have no %q span; they have %v", name, sortedKeys(live))
			continue
		}
		for k := range s {
			if strings.HasPrefix(k, "meridian.") && !strings.HasPrefix(k, "meridian.sim.") && !l[k] {
				t.Errorf("%q: the simulation's attribute %s is not in the live span's %v", name, k, sortedKeys(l))
			}
		}
		for _, k := range []string{"meridian.region", "meridian.node"} {
			if k == "meridian.node" && name == "federation.sync" {
				continue // the live sync span has meridian.region only
			}
			if !s[k] || !l[k] {
				t.Errorf("%q: %s missing (simulation %v, live %v)", name, k, s[k], l[k])
			}
		}
	}
}

// liveSpans runs two federated gateways and returns the attribute keys
// of their spans by span name.
func liveSpans(t *testing.T) map[string]map[string]bool {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func(region string, join ...string) *gateway.Agent {
		a, err := gateway.StartAgent(gateway.AgentConfig{Region: region, NodeName: region + "-1", HTTPAddr: "127.0.0.1:0",
			SerfBind: "127.0.0.1:0", GossipProfile: "local", Join: join, Logger: quiet,
			Telemetry: gateway.Telemetry{TracerProvider: tp}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			a.Shutdown(ctx)
		})
		return a
	}
	us := start("us-east")
	eu := start("eu-west", us.Members.(*serfmember.SerfMembership).BindAddr())
	put := func(a *gateway.Agent, path, body string) {
		req, _ := http.NewRequest(http.MethodPut, a.URL()+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("PUT %s: %d", path, resp.StatusCode)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	put(eu, "/v1/services/web/instances/web-1", `{"address":"10.0.2.1","port":80}`)
	for {
		resp, err := http.Get(us.URL() + "/v1/lookup/web")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), `"web-1"`) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("us-east did not route web to eu-west within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	tp.ForceFlush(context.Background())
	return keysByName(rec.Ended())
}

func keysByName(spans []sdktrace.ReadOnlySpan) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, s := range spans {
		m := out[s.Name()]
		if m == nil {
			m = map[string]bool{}
			out[s.Name()] = m
		}
		for _, kv := range s.Attributes() {
			m[string(kv.Key)] = true
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
