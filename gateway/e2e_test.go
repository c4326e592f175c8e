package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/internal/redistest"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startAgent starts a gateway on a free 127.0.0.1 port and stops it after
// the test.
func startAgent(t *testing.T, cfg AgentConfig) *Agent {
	t.Helper()
	if cfg.Region == "" {
		cfg.Region = "us-east"
	}
	cfg.HTTPAddr = "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	if cfg.CatchUp == 0 {
		cfg.CatchUp = 100 * time.Millisecond
	}
	a, err := StartAgent(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Shutdown(ctx)
	})
	waitFor(t, 5*time.Second, "the cache to load", func() bool { return a.Cache.Freshness().Loaded })
	return a
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type response struct {
	code   int
	header http.Header
	body   map[string]any
	raw    string
}

func call(t *testing.T, method, url, body string) response {
	t.Helper()
	return callWithHeader(t, method, url, body)
}

// callWithHeader is call with request headers, given as name, value pairs.
func callWithHeader(t *testing.T, method, url, body string, header ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{code: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" && !strings.HasPrefix(url[strings.LastIndex(url, "/"):], "/metrics") {
		t.Fatalf("%s %s: Content-Type %q, want application/json; body %s", method, url, ct, raw)
	}
	json.Unmarshal(raw, &r.body)
	return r
}

func (r response) want(t *testing.T, code int) response {
	t.Helper()
	if r.code != code {
		t.Fatalf("got HTTP %d, want %d; body %s", r.code, code, r.raw)
	}
	return r
}

func instanceIDs(r response) []string {
	var ids []string
	list, _ := r.body["instances"].([]any)
	for _, x := range list {
		ids = append(ids, x.(map[string]any)["id"].(string))
	}
	return ids
}

func TestTTLCheckLifecycle(t *testing.T) {
	a := startAgent(t, AgentConfig{})
	inst := a.URL() + "/v1/services/web/instances/web-1"
	r := call(t, "PUT", inst, `{"address":"10.0.0.5","port":8080,"check":{"ttl":"1s"}}`).want(t, 200)
	if r.body["status"] != "critical" {
		t.Fatalf("a new TTL-checked instance starts %v, want critical until its first heartbeat", r.body["status"])
	}
	if ids := instanceIDs(call(t, "GET", a.URL()+"/v1/services/web?passing=true", "")); len(ids) != 0 {
		t.Fatalf("passing before any heartbeat: %v", ids)
	}
	beat := time.Now()
	r = call(t, "PUT", inst+"/heartbeat", "").want(t, 200)
	if r.body["status"] != "passing" {
		t.Fatalf("after a heartbeat: status %v, want passing", r.body["status"])
	}
	if ids := instanceIDs(call(t, "GET", a.URL()+"/v1/services/web?passing=true", "")); fmt.Sprint(ids) != "[web-1]" {
		t.Fatalf("passing after heartbeat: %v, want [web-1]", ids)
	}
	// No heartbeat for TTL+1s: critical and gone from ?passing=true.
	waitFor(t, 3*time.Second, "the TTL to expire", func() bool {
		return call(t, "GET", inst, "").body["status"] == "critical"
	})
	if el := time.Since(beat); el < time.Second {
		t.Fatalf("went critical %s after the heartbeat, before the 1s TTL", el)
	}
	r = call(t, "GET", a.URL()+"/v1/services/web?passing=true", "")
	if ids := instanceIDs(r); len(ids) != 0 {
		t.Fatalf("?passing=true after TTL expiry: %v, want none", ids)
	}
	if got := call(t, "GET", inst, "").body["output"]; !strings.Contains(fmt.Sprint(got), "TTL expired") {
		t.Fatalf("output after expiry: %v", got)
	}
	call(t, "PUT", inst+"/heartbeat", `{"status":"passing","output":"back"}`).want(t, 200)
	if ids := instanceIDs(call(t, "GET", a.URL()+"/v1/services/web?passing=true", "")); fmt.Sprint(ids) != "[web-1]" {
		t.Fatalf("passing after a new heartbeat: %v, want [web-1]", ids)
	}
}

func TestBadInput(t *testing.T) {
	a := startAgent(t, AgentConfig{})
	u := a.URL()
	call(t, "PUT", u+"/v1/services/web/instances/plain", `{"address":"10.0.0.5","port":80}`).want(t, 200)
	for _, tc := range []struct {
		method, path, body string
		code               int
		field              string
	}{
		{"PUT", "/v1/services/web/instances/x", `{"address":`, 400, "body"},
		{"PUT", "/v1/services/web/instances/x", `not json`, 400, "body"},
		{"PUT", "/v1/services/Bad_Name!/instances/x", `{"address":"10.0.0.5","port":80}`, 400, "service"},
		{"PUT", "/v1/services/web/instances/x", `{"address":"10.0.0.5","port":0}`, 400, "port"},
		{"PUT", "/v1/services/web/instances/x", `{"address":"10.0.0.5","port":80,"check":{"ttl":"1s","http":"http://a/"}}`, 400, "check"},
		{"PUT", "/v1/services/web/instances/x", `{"address":"10.0.0.5","port":80,"weight":5000}`, 400, "weight"},
		{"PUT", "/v1/services/web/instances/x", `{"address":"10.0.0.5","port":80,"color":"red"}`, 400, "color"},
		{"PUT", "/v1/services/web/instances/x", `{"address":"10.0.0.5","port":80,"pad":"` + strings.Repeat("a", 100<<10) + `"}`, 413, "body"},
		{"DELETE", "/v1/services/web/instances/nobody", "", 404, "id"},
		{"PUT", "/v1/services/web/instances/nobody/heartbeat", "", 404, "id"},
		{"PUT", "/v1/services/web/instances/plain/heartbeat", "", 400, "check"},
		{"PUT", "/v1/services/web/instances/plain/heartbeat", `{"status":"great"}`, 400, "status"},
		{"GET", "/v1/services/web/instances/nobody", "", 404, "id"},
		{"GET", "/v1/services/web?index=abc", "", 400, "index"},
		{"GET", "/v1/services/web?wait=forever", "", 400, "wait"},
		{"GET", "/v1/services/web?passing=maybe", "", 400, "passing"},
		{"POST", "/v1/services/web", "{}", 405, ""},
		{"POST", "/v1/services/web/instances/x", "{}", 405, ""},
		{"GET", "/v1/nothing-here", "", 404, ""},
	} {
		r := call(t, tc.method, u+tc.path, tc.body)
		if r.code != tc.code || r.body["error"] == nil || fmt.Sprint(r.body["field"]) != tc.field && tc.field != "" {
			t.Errorf("%s %s: got %d %s; want %d with an error naming field %q", tc.method, tc.path, r.code, r.raw, tc.code, tc.field)
		}
		if tc.code == 405 && r.header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tc.method, tc.path)
		}
	}
	// Nothing above changed the catalog.
	r := call(t, "GET", u+"/v1/services", "").want(t, 200)
	if fmt.Sprint(r.body["version"]) != "1" {
		t.Fatalf("bad input changed the catalog: version %v, want 1", r.body["version"])
	}
}

func TestRegisterReplaceDeregister(t *testing.T) {
	a := startAgent(t, AgentConfig{})
	inst := a.URL() + "/v1/services/web/instances/web-1"
	body := `{"address":"10.0.0.5","port":8080,"zone":"a","tags":["v2"],"meta":{"k":"v"},"weight":50}`
	first := call(t, "PUT", inst, body).want(t, 200)
	time.Sleep(5 * time.Millisecond)
	second := call(t, "PUT", inst, body).want(t, 200) // idempotent
	if first.body["registered_at"] != second.body["registered_at"] {
		t.Fatalf("re-registration changed registered_at: %v -> %v", first.body["registered_at"], second.body["registered_at"])
	}
	if second.header.Get("X-Meridian-Index") != "2" {
		t.Fatalf("X-Meridian-Index %q, want 2", second.header.Get("X-Meridian-Index"))
	}
	call(t, "PUT", a.URL()+"/v1/services/web/instances/web-2", `{"address":"10.0.0.6","port":8080,"zone":"b"}`).want(t, 200)
	r := call(t, "GET", a.URL()+"/v1/services/web?tag=v2&zone=a", "").want(t, 200)
	if ids := instanceIDs(r); fmt.Sprint(ids) != "[web-1]" || r.body["region"] != "us-east" || r.body["stale"] != false {
		t.Fatalf("filtered lookup: %s", r.raw)
	}
	if r.header.Get("X-Meridian-Index") != "3" || fmt.Sprint(r.body["version"]) != "3" {
		t.Fatalf("lookup index: header %q body %v, want 3", r.header.Get("X-Meridian-Index"), r.body["version"])
	}
	svcs := call(t, "GET", a.URL()+"/v1/services", "").want(t, 200)
	if !strings.Contains(svcs.raw, `{"name":"web","instances":2,"passing":2,"warning":0,"critical":0,"regions":{"us-east":{"instances":2,"passing":2,"warning":0,"critical":0}}}`) {
		t.Fatalf("services: %s", svcs.raw)
	}
	call(t, "DELETE", inst, "").want(t, 200)
	call(t, "DELETE", inst, "").want(t, 404)
	if ids := instanceIDs(call(t, "GET", a.URL()+"/v1/services/web", "")); fmt.Sprint(ids) != "[web-2]" {
		t.Fatalf("after deregister: %v", ids)
	}
	m := call(t, "GET", a.URL()+"/metrics", "")
	for _, want := range []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"meridian_catalog_version", map[string]string{"region": "us-east"}, 4},
		{"meridian_instances", map[string]string{"region": "us-east", "service": "web", "status": "passing"}, 1},
		{"meridian_http_requests_total", map[string]string{"code": "200", "method": "PUT", "route": "instance"}, 3},
		{"meridian_store_writes_total", map[string]string{"op": "deregister", "result": "not_found"}, 1},
	} {
		if got, ok := promValue(m.raw, want.name, want.labels); !ok || got != want.value {
			t.Errorf("/metrics: %s%v = %v (found %v), want %v", want.name, want.labels, got, ok, want.value)
		}
	}
}

func TestBlockingQuery(t *testing.T) {
	a := startAgent(t, AgentConfig{})
	call(t, "PUT", a.URL()+"/v1/services/web/instances/a", `{"address":"10.0.0.5","port":80}`).want(t, 200)

	start := time.Now()
	r := call(t, "GET", a.URL()+"/v1/services/web?index=1&wait=300ms", "").want(t, 200)
	if el := time.Since(start); el < 300*time.Millisecond || fmt.Sprint(r.body["version"]) != "1" {
		t.Fatalf("no change: returned after %s at version %v, want >= 300ms at 1", el, r.body["version"])
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		call(t, "PUT", a.URL()+"/v1/services/web/instances/b", `{"address":"10.0.0.6","port":80}`)
	}()
	start = time.Now()
	r = call(t, "GET", a.URL()+"/v1/services/web?index=1&wait=30s", "").want(t, 200)
	if el := time.Since(start); el > 10*time.Second || r.header.Get("X-Meridian-Index") != "2" || len(instanceIDs(r)) != 2 {
		t.Fatalf("change: returned after %s with index %s and %v", el, r.header.Get("X-Meridian-Index"), instanceIDs(r))
	}
}

func TestHTTPCheckDamping(t *testing.T) {
	var code atomic.Int32
	code.Store(200)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(int(code.Load())) }))
	defer svc.Close()
	a := startAgent(t, AgentConfig{})
	inst := a.URL() + "/v1/services/web/instances/w"
	call(t, "PUT", inst, fmt.Sprintf(`{"address":"127.0.0.1","port":80,"check":{"http":%q,"interval":"1s","timeout":"500ms","failures_before_critical":2}}`, svc.URL+"/health")).want(t, 200)
	waitFor(t, 5*time.Second, "the first probe to pass", func() bool { return call(t, "GET", inst, "").body["status"] == "passing" })
	code.Store(429)
	waitFor(t, 5*time.Second, "429 to turn warning", func() bool { return call(t, "GET", inst, "").body["status"] == "warning" })
	code.Store(500)
	failingSince := time.Now()
	waitFor(t, 6*time.Second, "two failures to turn critical", func() bool { return call(t, "GET", inst, "").body["status"] == "critical" })
	if el := time.Since(failingSince); el < 900*time.Millisecond {
		t.Fatalf("critical after %s: one failure must not be enough with failures_before_critical=2", el)
	}
	out := fmt.Sprint(call(t, "GET", inst, "").body["output"])
	if !strings.Contains(out, "500") {
		t.Fatalf("output %q does not name the status", out)
	}
}

func TestDeregisterCriticalAfter(t *testing.T) {
	a := startAgent(t, AgentConfig{})
	inst := a.URL() + "/v1/services/web/instances/w"
	call(t, "PUT", inst, `{"address":"127.0.0.1","port":80,"check":{"ttl":"1s","deregister_critical_after":"1s"}}`).want(t, 200)
	waitFor(t, 5*time.Second, "the critical instance to be removed", func() bool { return call(t, "GET", inst, "").code == 404 })
}

// TestRedisOutage stops a real redis-server under a gateway: reads keep
// answering from the cache, marked stale; writes get 503 with Retry-After;
// when Redis is back, writes work again and nothing acknowledged is lost.
func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	a := startAgent(t, AgentConfig{RedisURL: srv.URL()})
	u := a.URL()
	for i := range 3 {
		call(t, "PUT", fmt.Sprintf("%s/v1/services/web/instances/w%d", u, i), `{"address":"10.0.0.5","port":80}`).want(t, 200)
	}
	srv.Stop(t)

	waitFor(t, 5*time.Second, "reads to be marked stale", func() bool {
		r := call(t, "GET", u+"/v1/services/web", "")
		return r.code == 200 && r.body["stale"] == true
	})
	r := call(t, "GET", u+"/v1/services/web", "").want(t, 200)
	if ids := instanceIDs(r); len(ids) != 3 {
		t.Fatalf("stale read: %v, want the 3 cached instances", ids)
	}
	if _, ok := r.body["age_ms"]; !ok {
		t.Fatalf("stale read without age_ms: %s", r.raw)
	}
	w := call(t, "PUT", u+"/v1/services/web/instances/w9", `{"address":"10.0.0.5","port":80}`).want(t, 503)
	if w.header.Get("Retry-After") == "" || w.body["error"] == nil {
		t.Fatalf("503 without Retry-After or error: %v %s", w.header, w.raw)
	}
	h := call(t, "GET", u+"/v1/health", "").want(t, 200)
	if h.body["status"] != "degraded" {
		t.Fatalf("health during outage: %s, want degraded", h.raw)
	}
	// /v1/health is open to anyone: it says what failed, not where.
	if port := strconv.Itoa(srv.Port()); strings.Contains(h.raw, port) || strings.Contains(w.raw, port) {
		t.Fatalf("an answer names the store's address (port %s): %s / %s", port, h.raw, w.raw)
	}

	srv.Restart(t)
	waitFor(t, 10*time.Second, "writes to work again", func() bool {
		return call(t, "PUT", u+"/v1/services/web/instances/w9", `{"address":"10.0.0.5","port":80}`).code == 200
	})
	waitFor(t, 5*time.Second, "reads to be fresh", func() bool {
		return call(t, "GET", u+"/v1/services/web", "").body["stale"] == false
	})
	if ids := instanceIDs(call(t, "GET", u+"/v1/services/web", "")); fmt.Sprint(ids) != "[w0 w1 w2 w9]" {
		t.Fatalf("after the outage: %v, want [w0 w1 w2 w9]", ids)
	}
	if h := call(t, "GET", u+"/v1/health", ""); h.body["status"] != "healthy" {
		t.Fatalf("health after the outage: %s", h.raw)
	}
}

// TestTwoGatewaysShareRedis: a write through one gateway reaches the other
// gateway's cache through the change log and its notification.
func TestTwoGatewaysShareRedis(t *testing.T) {
	url := redistest.FromEnv(t)
	region := fmt.Sprintf("r%08x", rand.Uint32())
	a := startAgent(t, AgentConfig{Region: region, RedisURL: url, CatchUp: time.Hour})
	b := startAgent(t, AgentConfig{Region: region, RedisURL: url, CatchUp: time.Hour})
	idx := call(t, "GET", b.URL()+"/v1/services/web", "").header.Get("X-Meridian-Index")
	done := make(chan response, 1)
	go func() { done <- call(t, "GET", b.URL()+"/v1/services/web?index="+idx+"&wait=10s", "") }()
	time.Sleep(50 * time.Millisecond)
	call(t, "PUT", a.URL()+"/v1/services/web/instances/x", `{"address":"10.0.0.5","port":80}`).want(t, 200)
	r := <-done
	if ids := instanceIDs(r); fmt.Sprint(ids) != "[x]" {
		t.Fatalf("gateway b after a write through a: %s", r.raw)
	}
}

// TestNotLoadedAnswers503: a gateway whose Redis never answered has not
// loaded its catalog: it says "loading" and answers reads 503 with
// Retry-After, never 200 with an empty list at version 0 (a client polling
// with X-Meridian-Index would see the version go backwards).
func TestNotLoadedAnswers503(t *testing.T) {
	a, err := StartAgent(AgentConfig{Region: "us-east", HTTPAddr: "127.0.0.1:0", RedisURL: "redis://127.0.0.1:1/0", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	r := call(t, "GET", a.URL()+"/v1/health", "").want(t, 503)
	if r.body["status"] != "loading" || r.header.Get("Retry-After") == "" {
		t.Fatalf("health with no store: %s", r.raw)
	}
	for _, path := range []string{"/v1/services", "/v1/services/web", "/v1/services/web/instances/x", "/v1/lookup/web", "/v1/pick/web", "/v1/proxy/web/"} {
		r = call(t, "GET", a.URL()+path, "").want(t, 503)
		if r.header.Get("Retry-After") == "" || r.header.Get("X-Meridian-Index") != "" || !strings.Contains(r.raw, "loading") {
			t.Fatalf("GET %s before the catalog loaded: %v %s", path, r.header, r.raw)
		}
	}
	call(t, "PUT", a.URL()+"/v1/services/web/instances/x", `{"address":"10.0.0.5","port":80}`).want(t, 503)
}

var _ = bytes.NewReader
