package client

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/failover"
	"github.com/meridian-sd/meridian/gateway"
	"github.com/meridian-sd/meridian/region"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testConfig is a config for fast tests: short backoffs and a seeded
// generator.
func testConfig(gateways ...string) Config {
	return Config{
		Gateways: gateways, Logger: quietLogger(), Rand: rand.New(rand.NewPCG(1, 2)),
		BackoffBase: time.Millisecond, BackoffMax: 20 * time.Millisecond,
		RequestTimeout: 2 * time.Second, WatchWait: 2 * time.Second,
	}
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
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

// startGateway starts a real region gateway (embedded store, no
// federation) on a free 127.0.0.1 port.
func startGateway(t *testing.T) *gateway.Agent {
	t.Helper()
	a, err := gateway.StartAgent(gateway.AgentConfig{Region: "us-east", HTTPAddr: "127.0.0.1:0",
		Logger: quietLogger(), CatchUp: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Kill)
	waitFor(t, 5*time.Second, "the gateway's cache to load", func() bool { return a.Cache.Freshness().Loaded })
	return a
}

// gatewayInstance reads one instance from a gateway; ok is false on 404.
func gatewayInstance(t *testing.T, base, service, id string) (region.Instance, bool) {
	t.Helper()
	resp, err := http.Get(base + "/v1/services/" + service + "/instances/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return region.Instance{}, false
	}
	var in region.Instance
	if err := json.NewDecoder(resp.Body).Decode(&in); err != nil {
		t.Fatal(err)
	}
	return in, true
}

// closedPort returns a 127.0.0.1 port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// backend is an httptest server that counts requests and answers with
// status (200 by default) and its name.
type backend struct {
	name   string
	srv    *httptest.Server
	hits   atomic.Int64
	status atomic.Int64
	delay  atomic.Int64 // nanoseconds before answering
	mu     sync.Mutex
	bodies []string
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{name: name}
	b.status.Store(http.StatusOK)
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		time.Sleep(time.Duration(b.delay.Load()))
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.bodies = append(b.bodies, string(body))
		b.mu.Unlock()
		w.WriteHeader(int(b.status.Load()))
		io.WriteString(w, b.name+" "+r.Method+" "+r.URL.RequestURI())
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) gotBodies() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.bodies)
}

func (b *backend) port() int { return b.srv.Listener.Addr().(*net.TCPAddr).Port }

// fakeState is an in-memory region behind fake gateways: registrations,
// heartbeats and GET /v1/lookup with blocking queries, like the real
// gateway's API.
type fakeState struct {
	mu      sync.Mutex
	version uint64
	changed chan struct{} // closed on every change
	insts   map[region.Key]region.Instance
	calls   map[string]int // "heartbeat", "lookup", "register", "deregister"
}

func newFakeState() *fakeState {
	return &fakeState{changed: make(chan struct{}), insts: map[region.Key]region.Instance{}, calls: map[string]int{}}
}

func (s *fakeState) bump() {
	s.version++
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *fakeState) count(call string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[call]
}

// add puts a passing instance.
func (s *fakeState) add(service, id string, port int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.insts[region.Key{Service: service, ID: id}] = region.Instance{Service: service, ID: id,
		Address: "127.0.0.1", Port: port, Weight: 100, Status: region.StatusPassing}
	s.bump()
}

func (s *fakeState) remove(service, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := region.Key{Service: service, ID: id}
	if _, ok := s.insts[k]; !ok {
		return false
	}
	delete(s.insts, k)
	s.bump()
	return true
}

func (s *fakeState) has(service, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.insts[region.Key{Service: service, ID: id}]
	return ok
}

// fakeGateway serves a fakeState. kill stops it the way a crash would:
// blocking queries end and the port refuses connections.
type fakeGateway struct {
	st   *fakeState
	srv  *httptest.Server
	dead chan struct{}
	once sync.Once
}

func (s *fakeState) serve(t *testing.T) *fakeGateway {
	t.Helper()
	g := &fakeGateway{st: s, dead: make(chan struct{})}
	mux := http.NewServeMux()
	apiErr := func(w http.ResponseWriter, code int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"error": msg})
	}
	key := func(r *http.Request) region.Key {
		return region.Key{Service: r.PathValue("service"), ID: r.PathValue("id")}
	}
	mux.HandleFunc("PUT /v1/services/{service}/instances/{id}", func(w http.ResponseWriter, r *http.Request) {
		var reg region.Registration
		if err := json.NewDecoder(r.Body).Decode(&reg); err != nil {
			apiErr(w, 400, err.Error())
			return
		}
		k := key(r)
		weight := region.DefaultWeight
		if reg.Weight != nil {
			weight = *reg.Weight
		}
		in := region.Instance{Service: k.Service, ID: k.ID, Address: reg.Address, Port: reg.Port, Zone: reg.Zone,
			Tags: reg.Tags, Meta: reg.Meta, Weight: weight, Status: reg.Status, Check: reg.Check}
		s.mu.Lock()
		s.calls["register"]++
		s.insts[k] = in
		s.bump()
		s.mu.Unlock()
		json.NewEncoder(w).Encode(in)
	})
	mux.HandleFunc("DELETE /v1/services/{service}/instances/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls["deregister"]++
		s.mu.Unlock()
		if !s.remove(key(r).Service, key(r).ID) {
			apiErr(w, 404, "not registered")
			return
		}
		io.WriteString(w, "{}")
	})
	mux.HandleFunc("PUT /v1/services/{service}/instances/{id}/heartbeat", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls["heartbeat"]++
		in, ok := s.insts[key(r)]
		s.mu.Unlock()
		if !ok {
			apiErr(w, 404, "not registered")
			return
		}
		json.NewEncoder(w).Encode(in)
	})
	mux.HandleFunc("GET /v1/lookup/{service}", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		s.mu.Lock()
		s.calls["lookup"]++
		ch, version := s.changed, s.version
		s.mu.Unlock()
		if q.Has("index") {
			index, _ := strconv.ParseUint(q.Get("index"), 10, 64)
			wait, _ := time.ParseDuration(q.Get("wait"))
			if version <= index {
				t := time.NewTimer(wait)
				select {
				case <-ch:
				case <-t.C:
				case <-r.Context().Done():
				case <-g.dead:
				}
				t.Stop()
			}
		}
		s.mu.Lock()
		var eps []failover.Endpoint
		for _, in := range s.insts {
			if in.Service == r.PathValue("service") && in.Status == region.StatusPassing {
				eps = append(eps, failover.Endpoint{Instance: in, Region: "us-east"})
			}
		}
		version = s.version
		s.mu.Unlock()
		slices.SortFunc(eps, func(a, b failover.Endpoint) int { return strings.Compare(a.ID, b.ID) })
		w.Header().Set("X-Meridian-Index", strconv.FormatUint(version, 10))
		json.NewEncoder(w).Encode(map[string]any{
			"service": r.PathValue("service"), "from_region": "us-east", "endpoints": eps,
			"shares": map[string]float64{"us-east": 1}, "priority_shares": []float64{1},
			"failover": false, "panic": false, "explanation": "fake", "stale_regions": []string{},
		})
	})
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.kill)
	return g
}

func (g *fakeGateway) kill() {
	g.once.Do(func() {
		close(g.dead)
		g.srv.CloseClientConnections()
		g.srv.Close()
	})
}

func (g *fakeGateway) URL() string { return g.srv.URL }

// testCtx is a context that ends after 5s or with the test.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}
