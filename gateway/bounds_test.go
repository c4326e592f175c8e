package gateway

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPickUniqueNamesKeepNoState: picks of names that do not exist must not
// leave state behind (1.15 M unique names took the heap from 16 MB to
// 321 MB), and the picker map stays under its cap whatever is asked.
func TestPickUniqueNamesKeepNoState(t *testing.T) {
	a := startAgent(t, AgentConfig{})
	call(t, "PUT", a.URL()+"/v1/services/web/instances/w1", `{"address":"10.0.0.5","port":80}`).want(t, 200)
	h := a.Server.Handler()
	for i := range 5000 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, fmt.Sprintf("/v1/pick/nosuch-%d", i), nil))
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("pick of an unknown service: HTTP %d %s", rec.Code, rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/pick/web", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("pick of web: HTTP %d %s", rec.Code, rec.Body)
	}
	a.Server.pickers.mu.Lock()
	n := len(a.Server.pickers.m)
	a.Server.pickers.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d pickers after 5000 unknown names and one known, want 1", n)
	}
	for i := range maxPickers + 10 {
		if _, err := a.Server.pickers.get(fmt.Sprintf("svc-%d", i), "round_robin"); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(a.Server.pickers.m); n > maxPickers {
		t.Fatalf("%d pickers, want at most %d", n, maxPickers)
	}
}

// TestDrainedInstance: weight 0 drains an instance: it stays registered and
// listed, but is never picked or routed to ("weight": 0 used to become 100).
func TestDrainedInstance(t *testing.T) {
	a := startAgent(t, AgentConfig{})
	u := a.URL()
	call(t, "PUT", u+"/v1/services/web/instances/live", `{"address":"10.0.0.5","port":80}`).want(t, 200)
	r := call(t, "PUT", u+"/v1/services/web/instances/drained", `{"address":"10.0.0.6","port":80,"weight":0}`).want(t, 200)
	if w, ok := r.body["weight"].(float64); !ok || w != 0 {
		t.Fatalf("registered weight: %s, want 0", r.raw)
	}
	if ids := instanceIDs(call(t, "GET", u+"/v1/services/web", "").want(t, 200)); len(ids) != 2 {
		t.Fatalf("listed: %v, want both instances", ids)
	}
	for range 20 {
		p := call(t, "GET", u+"/v1/pick/web?lb=weighted", "").want(t, 200)
		if ep, _ := p.body["endpoint"].(map[string]any); ep["id"] != "live" {
			t.Fatalf("picked %s, want only the live instance", p.raw)
		}
	}
	l := call(t, "GET", u+"/v1/lookup/web", "").want(t, 200)
	if strings.Contains(l.raw, `"drained"`) {
		t.Fatalf("lookup routes to the drained instance: %s", l.raw)
	}
}

// TestInstanceCaps: a client with write access cannot grow the registry
// without bound: past the per-service and per-region caps a new instance
// gets 507; re-registering an existing one still works.
func TestInstanceCaps(t *testing.T) {
	a := startAgent(t, AgentConfig{Limits: Limits{MaxInstances: 5, MaxInstancesPerService: 3}})
	u := a.URL()
	reg := func(svc, id string) response {
		return call(t, "PUT", u+"/v1/services/"+svc+"/instances/"+id, `{"address":"10.0.0.5","port":80}`)
	}
	for i := range 3 {
		reg("web", fmt.Sprint("w", i)).want(t, 200)
	}
	if r := reg("web", "w3").want(t, 507); !strings.Contains(r.raw, "--max-instances-per-service") {
		t.Fatalf("507 without the flag's name: %s", r.raw)
	}
	reg("web", "w0").want(t, 200) // an existing instance may be replaced
	reg("api", "a0").want(t, 200)
	reg("api", "a1").want(t, 200)
	if r := reg("db", "d0").want(t, 507); !strings.Contains(r.raw, "--max-instances)") {
		t.Fatalf("507 without the flag's name: %s", r.raw)
	}
}
