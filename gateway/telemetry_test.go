package gateway

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// tracing is one gateway's tracer provider, recording every span in
// memory (as a separate process would export its own).
type tracing struct {
	exp *tracetest.InMemoryExporter
	tp  *sdktrace.TracerProvider
}

func newTracing(t *testing.T) *tracing {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return &tracing{exp: exp, tp: tp}
}

func (tr *tracing) telemetry() Telemetry {
	return Telemetry{TracerProvider: tr.tp, Propagator: propagation.TraceContext{}}
}

// waitSpan waits up to 10s for an ended span that satisfies match (server
// spans end just after the response is written).
func (tr *tracing) waitSpan(t *testing.T, what string, match func(tracetest.SpanStub) bool) tracetest.SpanStub {
	t.Helper()
	var found tracetest.SpanStub
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, s := range tr.exp.GetSpans() {
			if match(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range tr.exp.GetSpans() {
				names = append(names, s.Name)
			}
			t.Fatalf("no span %s within 10s; spans: %s", what, strings.Join(names, ", "))
			return found
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func attr(s tracetest.SpanStub, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// attrString renders an attribute for comparison ("" when missing).
func attrString(s tracetest.SpanStub, key string) string {
	v, ok := attr(s, key)
	if !ok {
		return ""
	}
	return v.Emit()
}

func named(name string) func(tracetest.SpanStub) bool {
	return func(s tracetest.SpanStub) bool { return s.Name == name }
}

// traceparentRE parses a W3C traceparent header.
var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$`)

// traceRecorder is a backend that records the traceparent of every
// request.
type traceRecorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []string
}

func newTraceRecorder(t *testing.T) *traceRecorder {
	rec := &traceRecorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.seen = append(rec.seen, r.Header.Get("traceparent"))
		rec.mu.Unlock()
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *traceRecorder) hostPort() (string, string) {
	h, p, _ := net.SplitHostPort(rec.srv.Listener.Addr().String())
	return h, p
}

func (rec *traceRecorder) last(t *testing.T) (traceID, parentID string) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.seen) == 0 {
		t.Fatal("the backend saw no request")
	}
	m := traceparentRE.FindStringSubmatch(rec.seen[len(rec.seen)-1])
	if m == nil {
		t.Fatalf("the backend got traceparent %q, want a W3C traceparent", rec.seen[len(rec.seen)-1])
	}
	return m[1], m[2]
}

// promValue sums the samples of name whose labels include want, in the
// Prometheus text format; false when there is none.
func promValue(text, name string, want map[string]string) (float64, bool) {
	sum, found := 0.0, false
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		labels := map[string]string{}
		rest := strings.TrimPrefix(line, name)
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndex(rest, "}")
			for _, m := range promLabelRE.FindAllStringSubmatch(rest[1:end], -1) {
				labels[m[1]] = m[2]
			}
			rest = rest[end+1:]
		}
		ok := true
		for k, v := range want {
			ok = ok && labels[k] == v
		}
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err != nil {
			continue
		}
		sum, found = sum+f, true
	}
	return sum, found
}

var promLabelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// TestTelemetryAcrossGateways runs two federated gateways (us-east,
// eu-west), each with its own tracer provider, as two processes would
// have, and checks the spans and metrics of a lookup that fails over, a
// sync, health checks, Redis commands and proxied requests.
func TestTelemetryAcrossGateways(t *testing.T) {
	skipShort(t, "two gateways over real Serf; single-gateway telemetry tests cover spans")
	usT, euT := newTracing(t), newTracing(t)
	us := startFedNodeWith(t, func(c *AgentConfig) { c.Telemetry = usT.telemetry() }, "us-east", "us-1", "")
	eu := startFedNodeWith(t, func(c *AgentConfig) { c.Telemetry = euT.telemetry() }, "eu-west", "eu-1", "", us.serfAddr())

	// us-east: two web instances that go critical; eu-west: three healthy.
	ttl := `{"address":"10.0.0.%d","port":80,"zone":"a","check":{"ttl":"1m"}}`
	for j := 1; j <= 2; j++ {
		inst := fmt.Sprintf("%s/v1/services/web/instances/us-web-%d", us.URL(), j)
		call(t, "PUT", inst, fmt.Sprintf(ttl, j)).want(t, 200)
		call(t, "PUT", inst+"/heartbeat", `{"status":"critical","output":"down for the test"}`).want(t, 200)
	}
	for j := 1; j <= 3; j++ {
		call(t, "PUT", fmt.Sprintf("%s/v1/services/web/instances/eu-web-%d", eu.URL(), j), fmt.Sprintf(`{"address":"10.1.0.%d","port":80}`, j)).want(t, 200)
	}
	// A backend of "echo" only in eu-west, and eu-west's gateway
	// registered as a service in us-east, to proxy to across gateways (a
	// gateway refuses its own address: egress policy).
	echo := newTraceRecorder(t)
	host, port := echo.hostPort()
	call(t, "PUT", eu.URL()+"/v1/services/echo/instances/echo-1", fmt.Sprintf(`{"address":%q,"port":%s}`, host, port)).want(t, 200)
	euHost, euPort, _ := net.SplitHostPort(eu.Addr())
	call(t, "PUT", us.URL()+"/v1/services/eu-gateway/instances/eu-1", fmt.Sprintf(`{"address":%q,"port":%s}`, euHost, euPort)).want(t, 200)
	// A TCP-checked instance whose port is closed: a failing probe.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	call(t, "PUT", us.URL()+"/v1/services/db/instances/db-1", fmt.Sprintf(`{"address":"127.0.0.1","port":1,"check":{"tcp":%q,"interval":"1s"}}`, dead)).want(t, 200)

	waitFor(t, 30*time.Second, "us-east's replica of eu-west to hold its 4 instances", func() bool {
		rs := regionsOf(t, us)
		e := rs["eu-west"]
		return e != nil && e["replica_version"].(float64) >= 4
	})

	t.Run("lookup", func(t *testing.T) {
		r := call(t, "GET", us.URL()+"/v1/lookup/web?zone=a", "").want(t, 200)
		if r.body["failover"] != true {
			t.Fatalf("lookup with every local instance critical: %s", r.raw)
		}
		s := usT.waitSpan(t, "GET /v1/lookup/{service}", named("GET /v1/lookup/{service}"))
		if s.SpanKind != trace.SpanKindServer {
			t.Errorf("span kind %v, want server", s.SpanKind)
		}
		eps, _ := r.body["endpoints"].([]any)
		for key, want := range map[string]string{
			"meridian.region":                     "us-east",
			"meridian.node":                       "us-1",
			"meridian.service":                    "web",
			"meridian.route.policy":               "local",
			"meridian.route.zone":                 "a",
			"meridian.route.local_healthy_share":  "0",
			"meridian.route.local_share":          "0",
			"meridian.route.spill_share":          "1",
			"meridian.route.shares":               "eu-west=1",
			"meridian.route.share_regions":        `["eu-west"]`,
			"meridian.route.regions_consulted":    `["us-east","eu-west"]`,
			"meridian.route.stale_regions":        `[]`,
			"meridian.route.failover":             "true",
			"meridian.route.panic":                "false",
			"meridian.route.endpoints":            strconv.Itoa(len(eps)),
			"http.route":                          "/v1/lookup/{service}",
			"http.response.status_code":           "200",
			"meridian.route.explanation_contains": "",
		} {
			if key == "meridian.route.explanation_contains" {
				if ex := attrString(s, "meridian.route.explanation"); !strings.Contains(ex, "eu-west") {
					t.Errorf("meridian.route.explanation = %q, want it to name eu-west", ex)
				}
				continue
			}
			if got := attrString(s, key); got != want {
				t.Errorf("%s = %q, want %q", key, got, want)
			}
		}
		if len(eps) == 0 {
			t.Fatalf("no endpoints: %s", r.raw)
		}
	})

	t.Run("sync", func(t *testing.T) {
		// A new registration in eu-west reaches us-east by a delta: the
		// answer of us-east's watch (the push path), or a pull.
		call(t, "PUT", eu.URL()+"/v1/services/web/instances/eu-web-9", `{"address":"10.1.0.9","port":80}`).want(t, 200)
		var target float64
		waitFor(t, 10*time.Second, "the registration to reach us-east", func() bool {
			e := regionsOf(t, us)["eu-west"]
			target = e["replica_version"].(float64)
			return strings.Contains(lookup(t, us, "web", "eu-west").raw, "eu-web-9")
		})
		client := usT.waitSpan(t, "federation.sync bringing eu-west's new version", func(s tracetest.SpanStub) bool {
			v, _ := attr(s, "meridian.sync.version_to")
			return (s.Name == "federation.sync" || s.Name == "federation.watch") && attrString(s, "meridian.sync.peer_region") == "eu-west" &&
				float64(v.AsInt64()) == target
		})
		if client.SpanKind != trace.SpanKindClient {
			t.Errorf("sync span kind %v, want client", client.SpanKind)
		}
		if b, _ := attr(client, "meridian.sync.bytes"); b.AsInt64() <= 0 {
			t.Errorf("meridian.sync.bytes = %d, want > 0", b.AsInt64())
		}
		if attrString(client, "meridian.sync.peer_gateway") != eu.Addr() {
			t.Errorf("meridian.sync.peer_gateway = %q, want %s", attrString(client, "meridian.sync.peer_gateway"), eu.Addr())
		}
		for _, k := range []string{"meridian.sync.version_from", "meridian.sync.full", "meridian.sync.changes"} {
			if _, ok := attr(client, k); !ok {
				t.Errorf("sync span lacks %s", k)
			}
		}
		// eu-west's own provider has the server span: same trace, child
		// of us-east's client span.
		server := euT.waitSpan(t, "GET /v1/federation/catalog continuing the sync's trace", func(s tracetest.SpanStub) bool {
			return s.Name == "GET /v1/federation/catalog" && s.SpanContext.TraceID() == client.SpanContext.TraceID()
		})
		if server.Parent.SpanID() != client.SpanContext.SpanID() || !server.Parent.IsRemote() {
			t.Errorf("server span's parent %s (remote %v), want us-east's sync span %s", server.Parent.SpanID(), server.Parent.IsRemote(), client.SpanContext.SpanID())
		}
		if attrString(server, "meridian.region") != "eu-west" || attrString(server, "meridian.sync.version_to") != attrString(client, "meridian.sync.version_to") {
			t.Errorf("server span: region %q version_to %q; client version_to %q", attrString(server, "meridian.region"),
				attrString(server, "meridian.sync.version_to"), attrString(client, "meridian.sync.version_to"))
		}
	})

	t.Run("proxy to a backend in another region", func(t *testing.T) {
		resp, err := http.Get(us.URL() + "/v1/proxy/echo/hello")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok /hello" {
			t.Fatalf("proxied GET: %d %s", resp.StatusCode, b)
		}
		traceID, parentID := echo.last(t)
		attempt := usT.waitSpan(t, "proxy.attempt", func(s tracetest.SpanStub) bool {
			return s.Name == "proxy.attempt" && s.SpanContext.TraceID().String() == traceID
		})
		if attempt.SpanContext.SpanID().String() != parentID {
			t.Errorf("backend's parent span %s, want the proxy attempt's %s", parentID, attempt.SpanContext.SpanID())
		}
		srv := usT.waitSpan(t, "the proxy's server span", func(s tracetest.SpanStub) bool {
			return s.Name == "GET /v1/proxy/{service}/{path...}" && s.SpanContext.TraceID().String() == traceID
		})
		if attempt.Parent.SpanID() != srv.SpanContext.SpanID() {
			t.Errorf("proxy attempt's parent %s, want the server span %s", attempt.Parent.SpanID(), srv.SpanContext.SpanID())
		}
		if attrString(srv, "meridian.route.failover") != "true" || attrString(attempt, "meridian.proxy.endpoint_region") != "eu-west" {
			t.Errorf("proxy spans: failover %q, endpoint region %q", attrString(srv, "meridian.route.failover"), attrString(attempt, "meridian.proxy.endpoint_region"))
		}
	})

	t.Run("proxy to the other gateway", func(t *testing.T) {
		resp, err := http.Get(us.URL() + "/v1/proxy/eu-gateway/v1/health")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"region":"eu-west"`) {
			t.Fatalf("proxied GET /v1/health of eu-west: %d %s", resp.StatusCode, b)
		}
		attempt := usT.waitSpan(t, "proxy.attempt to eu-gateway", func(s tracetest.SpanStub) bool {
			return s.Name == "proxy.attempt" && attrString(s, "meridian.service") == "eu-gateway"
		})
		health := euT.waitSpan(t, "eu-west's GET /v1/health in the proxy's trace", func(s tracetest.SpanStub) bool {
			return s.Name == "GET /v1/health" && s.SpanContext.TraceID() == attempt.SpanContext.TraceID()
		})
		if health.Parent.SpanID() != attempt.SpanContext.SpanID() {
			t.Errorf("eu-west's span parent %s, want us-east's proxy attempt %s", health.Parent.SpanID(), attempt.SpanContext.SpanID())
		}
	})

	t.Run("redis commands under the request", func(t *testing.T) {
		put := usT.waitSpan(t, "a registration's server span", named("PUT /v1/services/{service}/instances/{id}"))
		red := usT.waitSpan(t, "a Redis command under the registration", func(s tracetest.SpanStub) bool {
			return s.Parent.SpanID() == put.SpanContext.SpanID() && attrString(s, "db.system") == "redis"
		})
		if red.SpanKind != trace.SpanKindClient || red.SpanContext.TraceID() != put.SpanContext.TraceID() {
			t.Errorf("redis span %q: kind %v trace %s, want client in %s", red.Name, red.SpanKind, red.SpanContext.TraceID(), put.SpanContext.TraceID())
		}
		for _, s := range usT.exp.GetSpans() {
			if attrString(s, "db.system") == "redis" && !s.Parent.IsValid() {
				t.Fatalf("redis span %q without a parent: background commands must not start traces", s.Name)
			}
		}
	})

	t.Run("failing health check", func(t *testing.T) {
		s := usT.waitSpan(t, "health.check of db-1", func(s tracetest.SpanStub) bool {
			return s.Name == "health.check" && attrString(s, "meridian.instance") == "db/db-1"
		})
		if attrString(s, "meridian.check.status") != "critical" || attrString(s, "meridian.check.kind") != "tcp" || s.Status.Code.String() != "Error" {
			t.Errorf("health.check span: status %q kind %q span status %v", attrString(s, "meridian.check.status"), attrString(s, "meridian.check.kind"), s.Status)
		}
		if !s.EndTime.After(s.StartTime) {
			t.Errorf("health.check span from %v to %v: want the probe's duration", s.StartTime, s.EndTime)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		call(t, "GET", us.URL()+"/v1/pick/web", "").want(t, 200)
		call(t, "GET", us.URL()+"/v1/services/web", "").want(t, 200)
		m := call(t, "GET", us.URL()+"/metrics", "").want(t, 200).raw
		for _, c := range []struct {
			name   string
			labels map[string]string
			min    float64
		}{
			{"meridian_lookups_total", map[string]string{"region": "us-east", "api": "lookup", "result": "ok", "failover": "true"}, 1},
			{"meridian_lookups_total", map[string]string{"region": "us-east", "api": "pick", "failover": "true"}, 1},
			{"meridian_lookups_total", map[string]string{"region": "us-east", "api": "proxy", "result": "ok"}, 2},
			{"meridian_lookups_total", map[string]string{"region": "us-east", "api": "service", "result": "ok", "failover": "false"}, 1},
			{"meridian_lookup_duration_seconds_count", map[string]string{"region": "us-east", "api": "lookup"}, 1},
			{"meridian_http_requests_total", map[string]string{"region": "us-east", "route": "lookup", "method": "GET", "code": "200"}, 1},
			{"meridian_http_request_duration_seconds_count", map[string]string{"route": "instance"}, 3},
			{"meridian_store_writes_total", map[string]string{"op": "register", "result": "ok"}, 3},
			{"meridian_instances", map[string]string{"region": "us-east", "service": "web", "status": "critical"}, 2},
			{"meridian_catalog_version", map[string]string{"region": "us-east"}, 5},
			{"meridian_registry_instances", map[string]string{"region": "us-east", "catalog_region": "us-east"}, 3},
			{"meridian_registry_instances", map[string]string{"region": "us-east", "catalog_region": "eu-west"}, 5},
			{"meridian_replica_staleness_seconds", map[string]string{"catalog_region": "eu-west"}, 0},
			{"meridian_replica_version", map[string]string{"catalog_region": "eu-west"}, 5},
			{"meridian_replica_stale", map[string]string{"catalog_region": "eu-west"}, 0},
			{"meridian_sync_bytes_total", map[string]string{"region": "us-east", "peer_region": "eu-west", "result": "ok"}, 1},
			{"meridian_sync_duration_seconds_count", map[string]string{"region": "us-east", "peer_region": "eu-west", "result": "ok"}, 1},
			{"meridian_sync_changes_total", map[string]string{"region": "us-east", "peer_region": "eu-west"}, 5},
			{"meridian_gossip_members", map[string]string{"region": "us-east", "member_region": "eu-west", "status": "alive"}, 1},
			{"meridian_gossip_members", map[string]string{"region": "us-east", "member_region": "us-east", "status": "alive"}, 1},
			{"meridian_health_checks_total", map[string]string{"region": "us-east", "kind": "tcp", "result": "critical"}, 1},
			{"meridian_health_check_duration_seconds_count", map[string]string{"region": "us-east", "kind": "tcp"}, 1},
			{"meridian_federation_watches", map[string]string{"region": "us-east"}, 0}, // 1 but for the moment between two watches
			{"meridian_federation_watch_requests_total", map[string]string{"region": "us-east"}, 1},
			{"go_goroutines", nil, 1},
		} {
			v, ok := promValue(m, c.name, c.labels)
			if !ok || v < c.min {
				t.Errorf("/metrics: %s%v = %v (found %v), want >= %v", c.name, c.labels, v, ok, c.min)
			}
		}
		if t.Failed() {
			t.Logf("/metrics:\n%s", m)
		}
	})
}

// TestProxyCarriesItsSpanContext: a caller's traceparent is continued by
// the proxy's server span, and the backend receives the proxy attempt's
// span as its parent (not the caller's span).
func TestProxyCarriesItsSpanContext(t *testing.T) {
	tr := newTracing(t)
	a := startAgent(t, AgentConfig{Telemetry: tr.telemetry()})
	echo := newTraceRecorder(t)
	host, port := echo.hostPort()
	call(t, "PUT", a.URL()+"/v1/services/echo/instances/e1", fmt.Sprintf(`{"address":%q,"port":%s}`, host, port)).want(t, 200)

	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest("GET", a.URL()+"/v1/proxy/echo/x?y=1", nil)
	req.Header.Set("traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("proxied GET: HTTP %d", resp.StatusCode)
	}
	traceID, parentID := echo.last(t)
	if traceID != callerTrace {
		t.Fatalf("backend trace id %s, want the caller's %s", traceID, callerTrace)
	}
	srv := tr.waitSpan(t, "GET /v1/proxy/{service}/{path...}", named("GET /v1/proxy/{service}/{path...}"))
	attempt := tr.waitSpan(t, "proxy.attempt", named("proxy.attempt"))
	if srv.SpanContext.TraceID().String() != callerTrace || srv.Parent.SpanID().String() != callerSpan {
		t.Errorf("server span in trace %s under %s, want the caller's %s under %s", srv.SpanContext.TraceID(), srv.Parent.SpanID(), callerTrace, callerSpan)
	}
	if parentID != attempt.SpanContext.SpanID().String() || attempt.Parent.SpanID() != srv.SpanContext.SpanID() {
		t.Errorf("backend's parent %s, proxy attempt %s under %s, server span %s", parentID, attempt.SpanContext.SpanID(), attempt.Parent.SpanID(), srv.SpanContext.SpanID())
	}
	if got := attrString(srv, "meridian.route.endpoints"); got != "1" {
		t.Errorf("meridian.route.endpoints = %q, want 1", got)
	}
	if got := attrString(attempt, "server.address"); got != host {
		t.Errorf("attempt server.address = %q, want %s", got, host)
	}
}

// TestHeartbeatForwardCarriesTraceContext: a heartbeat sent to the gateway
// that does not check the instance is forwarded to the one that does, in
// the same trace.
func TestHeartbeatForwardCarriesTraceContext(t *testing.T) {
	skipShort(t, "two gateways over real Serf; TestProxyCarriesItsSpanContext covers propagation on one gateway")
	mini := miniredis.RunT(t)
	url := "redis://" + mini.Addr() + "/0"
	t1, t2 := newTracing(t), newTracing(t)
	g1 := startFedNodeWith(t, func(c *AgentConfig) { c.Telemetry = t1.telemetry() }, "fwd", "fwd-1", url)
	g2 := startFedNodeWith(t, func(c *AgentConfig) { c.Telemetry = t2.telemetry() }, "fwd", "fwd-2", url, g1.serfAddr())
	waitFor(t, 10*time.Second, "both gateways to see each other", func() bool {
		return len(g1.Fed.LocalGateways()) == 2 && len(g2.Fed.LocalGateways()) == 2
	})
	id := ""
	for i := range 40 {
		k := regionKey("svc", fmt.Sprint("i", i))
		if !g1.Health.Owns(k) {
			id = k.ID
			break
		}
	}
	if id == "" {
		t.Fatal("gateway 2 owns none of 40 instances")
	}
	call(t, "PUT", g1.URL()+"/v1/services/svc/instances/"+id, `{"address":"10.0.0.9","port":80,"check":{"ttl":"30s"}}`).want(t, 200)
	waitFor(t, 5*time.Second, "gateway 2 to see the instance", func() bool {
		return strings.Contains(call(t, "GET", g2.URL()+"/v1/services/svc", "").raw, id)
	})
	r := call(t, "PUT", g1.URL()+"/v1/services/svc/instances/"+id+"/heartbeat", "")
	if r.code != 200 || r.body["status"] != "passing" {
		t.Fatalf("heartbeat via the non-owner: %s", r.raw)
	}
	fwd := t1.waitSpan(t, "heartbeat.forward", named("heartbeat.forward"))
	owner := t2.waitSpan(t, "the owner's heartbeat span in the same trace", func(s tracetest.SpanStub) bool {
		return s.Name == "PUT /v1/services/{service}/instances/{id}/heartbeat" && s.SpanContext.TraceID() == fwd.SpanContext.TraceID()
	})
	if owner.Parent.SpanID() != fwd.SpanContext.SpanID() {
		t.Errorf("owner's span parent %s, want the forward span %s", owner.Parent.SpanID(), fwd.SpanContext.SpanID())
	}
	first := t1.waitSpan(t, "the first gateway's heartbeat span", func(s tracetest.SpanStub) bool {
		return s.Name == "PUT /v1/services/{service}/instances/{id}/heartbeat" && s.SpanContext.TraceID() == fwd.SpanContext.TraceID()
	})
	if fwd.Parent.SpanID() != first.SpanContext.SpanID() {
		t.Errorf("forward span parent %s, want the first gateway's server span %s", fwd.Parent.SpanID(), first.SpanContext.SpanID())
	}
	if !slices.ContainsFunc(owner.Attributes, func(kv attribute.KeyValue) bool { return kv.Key == "meridian.node" && kv.Value.AsString() == "fwd-2" }) {
		t.Errorf("owner span attributes %v lack meridian.node=fwd-2", owner.Attributes)
	}
}
