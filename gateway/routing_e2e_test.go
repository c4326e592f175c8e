package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func endpointRegions(r response) []string {
	var out []string
	list, _ := r.body["endpoints"].([]any)
	for _, x := range list {
		out = append(out, x.(map[string]any)["region"].(string))
	}
	return out
}

// TestLookupFailsOverToNearestAndBack: three regions; ap-south is made far
// away (its gossip is delayed, so Serf's coordinates put it at ~40ms).
// When every web instance of us-east goes critical, lookups from us-east
// fail over to eu-west, the nearest, and come home when they recover.
func TestLookupFailsOverToNearestAndBack(t *testing.T) {
	skipShort(t, "three regions over real Serf; routing unit tests cover nearest-region failover")
	us := startFedNode(t, "us-east", "us-1", "")
	eu := startFedNode(t, "eu-west", "eu-1", "", us.serfAddr())
	ap := startFedNode(t, "ap-south", "ap-1", "", us.serfAddr(), eu.serfAddr())
	us.faults.Delay(ap.serfAddr(), 40*time.Millisecond)
	ap.faults.Delay(us.serfAddr(), 40*time.Millisecond)

	ttl := `{"address":"10.0.0.%d","port":80,"zone":"a","check":{"ttl":"1m"}}`
	for i, n := range []*fedNode{us, eu, ap} {
		for j := 1; j <= 2; j++ {
			inst := fmt.Sprintf("%s/v1/services/web/instances/%s-web-%d", n.URL(), n.region, j)
			call(t, "PUT", inst, fmt.Sprintf(ttl, i*10+j)).want(t, 200)
			call(t, "PUT", inst+"/heartbeat", "").want(t, 200)
		}
	}
	waitFor(t, 30*time.Second, "replicas of both other regions and RTTs that put eu-west nearest", func() bool {
		rs := regionsOf(t, us)
		e, a := rs["eu-west"], rs["ap-south"]
		if e == nil || a == nil || e["rtt_ms"] == nil || a["rtt_ms"] == nil {
			return false
		}
		return e["replica_version"].(float64) >= 4 && a["replica_version"].(float64) >= 4 &&
			e["rtt_ms"].(float64) < a["rtt_ms"].(float64)
	})

	r := call(t, "GET", us.URL()+"/v1/lookup/web?zone=a", "").want(t, 200)
	if r.body["failover"] != false || fmt.Sprint(endpointRegions(r)) != "[us-east us-east]" {
		t.Fatalf("healthy local instances: %s", r.raw)
	}
	for j := 1; j <= 2; j++ {
		call(t, "PUT", fmt.Sprintf("%s/v1/services/web/instances/us-east-web-%d/heartbeat", us.URL(), j), `{"status":"critical","output":"down for the test"}`).want(t, 200)
	}
	r = call(t, "GET", us.URL()+"/v1/lookup/web?zone=a", "").want(t, 200)
	if r.body["failover"] != true || !strings.HasPrefix(fmt.Sprint(endpointRegions(r)), "[eu-west eu-west") {
		t.Fatalf("after local instances went critical: %s", r.raw)
	}
	if ex := fmt.Sprint(r.body["explanation"]); !strings.Contains(ex, "us-east") || !strings.Contains(ex, "eu-west") {
		t.Fatalf("explanation does not say why: %q", ex)
	}
	for j := 1; j <= 2; j++ {
		call(t, "PUT", fmt.Sprintf("%s/v1/services/web/instances/us-east-web-%d/heartbeat", us.URL(), j), "").want(t, 200)
	}
	r = call(t, "GET", us.URL()+"/v1/lookup/web?zone=a", "").want(t, 200)
	if r.body["failover"] != false || fmt.Sprint(endpointRegions(r)) != "[us-east us-east]" {
		t.Fatalf("after recovery: %s", r.raw)
	}
}

// TestPickAndProxy: /v1/pick picks among real backends; /v1/proxy forwards
// to them, retries another endpoint when one refuses connections, and
// passes the W3C traceparent on.
func TestPickAndProxy(t *testing.T) {
	a := startAgent(t, AgentConfig{})
	var hits [2]atomic.Int32
	var sawTrace atomic.Value
	for i := range 2 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			if tp := r.Header.Get("traceparent"); tp != "" {
				sawTrace.Store(tp)
			}
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "backend %d %s %s %s", i, r.Method, r.URL.RequestURI(), b)
		}))
		defer srv.Close()
		host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
		call(t, "PUT", fmt.Sprintf("%s/v1/services/echo/instances/b%d", a.URL(), i), fmt.Sprintf(`{"address":%q,"port":%s}`, host, port)).want(t, 200)
	}
	// A registered endpoint that refuses connections.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	call(t, "PUT", a.URL()+"/v1/services/echo/instances/dead", fmt.Sprintf(`{"address":"127.0.0.1","port":%d}`, dead)).want(t, 200)

	seen := map[string]bool{}
	for range 6 {
		r := call(t, "GET", a.URL()+"/v1/pick/echo?lb=round_robin", "").want(t, 200)
		seen[r.body["endpoint"].(map[string]any)["id"].(string)] = true
	}
	if len(seen) != 3 {
		t.Fatalf("round robin over 3 endpoints picked %v", seen)
	}
	k1 := call(t, "GET", a.URL()+"/v1/pick/echo?lb=hash&key=user-42", "").body["endpoint"]
	k2 := call(t, "GET", a.URL()+"/v1/pick/echo?lb=hash&key=user-42", "").body["endpoint"]
	if fmt.Sprint(k1) != fmt.Sprint(k2) {
		t.Fatal("hash picks differ for the same key")
	}
	call(t, "GET", a.URL()+"/v1/pick/echo?lb=bogus", "").want(t, 400)

	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 30 {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/proxy/echo/hello/world?n=%d", a.URL(), i), nil)
		req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), fmt.Sprintf("GET /hello/world?n=%d", i)) {
			t.Fatalf("proxied GET %d: %d %s", i, resp.StatusCode, b)
		}
	}
	if hits[0].Load()+hits[1].Load() != 30 {
		t.Fatalf("backends saw %d+%d requests, want 30", hits[0].Load(), hits[1].Load())
	}
	if sawTrace.Load() != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Fatalf("traceparent not passed on: %v", sawTrace.Load())
	}
	// An idempotent PUT with a body is replayed to another endpoint.
	for range 5 {
		req, _ := http.NewRequest("PUT", a.URL()+"/v1/proxy/echo/x", strings.NewReader("payload"))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasSuffix(string(b), "PUT /x payload") {
			t.Fatalf("proxied PUT: %d %s", resp.StatusCode, b)
		}
	}
	// A service with no endpoints: 503 with a JSON error.
	call(t, "GET", a.URL()+"/v1/proxy/nothing/x", "").want(t, 503)
}
